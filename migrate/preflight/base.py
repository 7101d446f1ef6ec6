"""A check: a stable id, its documentation, and one pure method from facts to findings.

Subclassing :class:`Check` registers the check; the registry refuses a duplicate id, a
malformed id, a missing doc section, a check without ``run``, and (for the catalogue) a
module not named after its id (``rdb.version-gap`` lives in ``checks/rdb_version_gap.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from migrate.model import Finding, Severity

if TYPE_CHECKING:
    from migrate.preflight.context import Context

ID_PATTERN = re.compile(r"^[a-z]+\.[a-z0-9]+(-[a-z0-9]+)*$")
DOC_SECTIONS = ("why", "evidence", "remedy", "source")
CATALOGUE_PACKAGE = "checks"


class CheckDefinitionError(TypeError):
    """A check class is malformed; raised when the class is defined."""


REGISTRY: dict[str, type[Check]] = {}


def module_for(check_id: str) -> str:
    return check_id.replace(".", "_").replace("-", "_")


class Check:
    """Subclass, set the class attributes, implement :meth:`run`."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    why: ClassVar[str] = ""  # what breaks, and why
    evidence: ClassVar[str] = ""  # which facts it reads
    remedy: ClassVar[str] = ""  # what the operator does about it
    source: ClassVar[str] = ""  # where the compatibility fact comes from

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _validate(cls)
        existing = REGISTRY.get(cls.id)
        if existing is not None and (existing.__module__, existing.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise CheckDefinitionError(
                f"duplicate check id {cls.id!r}: {existing.__module__}.{existing.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}")
        REGISTRY[cls.id] = cls

    def run(self, ctx: Context) -> Iterable[Finding]:
        raise NotImplementedError

    def finding(self, severity: Severity, title: str, detail: str = "", *,
                remediation: str | None = None, evidence: dict[str, Any] | None = None,
                source: str | None = None) -> Finding:
        return Finding(id=self.id, severity=severity, title=title, detail=detail,
                       remediation=self.remedy if remediation is None else remediation,
                       evidence=evidence or {}, source=self.source if source is None else source)


def _validate(cls: type[Check]) -> None:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls.id, str) or not ID_PATTERN.match(cls.id):
        raise CheckDefinitionError(f"{name}: id {cls.id!r} must look like 'area.some-name'")
    for section in ("title", *DOC_SECTIONS):
        value = getattr(cls, section, "")
        if not isinstance(value, str) or not value.strip():
            raise CheckDefinitionError(f"{name} ({cls.id}): missing doc section {section!r}")
    if cls.run is Check.run:
        raise CheckDefinitionError(f"{name} ({cls.id}): no run() method")
    package, _, module = cls.__module__.rpartition(".")
    if package == CATALOGUE_PACKAGE and module != module_for(cls.id):
        raise CheckDefinitionError(
            f"{name}: check {cls.id!r} must live in {CATALOGUE_PACKAGE}/{module_for(cls.id)}.py")
