"""One preflight run, as a library call: parse input, gather facts, run the checks.

Input is validated before any server is contacted; every server access is read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from migrate.endpoint import NO_TLS, Endpoint, TlsSettings
from migrate.errors import UsageError
from migrate.inspect.facts import TargetFacts
from migrate.inspect.gather import gather_source, gather_target
from migrate.preflight.context import Context
from migrate.preflight.profile import FLAVORS, profile_for
from migrate.preflight.runner import Report, preflight
from migrate.preflight.scripts import analyse_all, read_scripts

DEFAULT_SAMPLE = 10_000


@dataclass
class PreflightRequest:
    source: str
    to: str
    target: str | None = None
    target_version: str | None = None
    scripts: list[Path] = field(default_factory=list)
    sample: int = DEFAULT_SAMPLE
    source_tls: TlsSettings = NO_TLS  # --source-tls-* (for a rediss:// URL)
    target_tls: TlsSettings = NO_TLS


def run(request: PreflightRequest) -> Report:
    if request.to not in FLAVORS:
        raise UsageError(f"unknown --to {request.to!r}", "use --to valkey or --to dragonfly")
    if request.target and request.target_version:
        raise UsageError("give --target or --target-version, not both",
                         "--target reads the live server's version")
    if request.sample < 0:
        raise UsageError("--sample must be 0 or more")
    source = Endpoint.parse(request.source).with_tls(request.source_tls, "--source-tls")
    target = Endpoint.parse(request.target).with_tls(request.target_tls, "--target-tls") \
        if request.target else None
    profile = profile_for(request.to, request.target_version)  # validates the version
    scripts = read_scripts(request.scripts)
    if target is not None:
        target_facts = gather_target(target)
        if target_facts.flavor != request.to:
            raise UsageError(f"--target {target.display()} is {target_facts.flavor} "
                             f"{target_facts.version}, not {request.to}",
                             f"use --to {target_facts.flavor}")
        profile = profile_for(request.to, target_facts.version)
    else:
        target_facts = TargetFacts(flavor=profile.flavor, version=profile.version)
    source_facts = gather_source(source, sample=request.sample)
    analyses = analyse_all(scripts, source_facts.functions)
    return preflight(Context(source=source_facts, target=target_facts, profile=profile,
                             scripts=analyses))
