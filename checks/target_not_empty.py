"""target.not-empty: the live target already holds keys."""

from __future__ import annotations

from collections.abc import Iterator

from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class TargetNotEmpty(Check):
    id = "target.not-empty"
    title = "The target already holds keys"
    why = ("Copying into a non-empty target mixes old and new data: keys with the same name "
           "are overwritten and stale keys survive, so verification cannot prove the copy. "
           "kvmigrate's copy and sync refuse a non-empty target unless told explicitly.")
    evidence = "INFO keyspace of the live target (--target)."
    remedy = ("Point the migration at an empty target, or empty it yourself after checking "
              "that nothing there is needed.")
    source = "kvmigrate rule: never write to a non-empty target without an explicit flag"

    def run(self, ctx: Context) -> Iterator[Finding]:
        if ctx.target.live and ctx.target.keys:
            yield self.finding(Severity.WARNING, f"The target holds {ctx.target.keys:,} key(s)",
                               evidence={"target_keys": ctx.target.keys,
                                         "target": ctx.target.endpoint})
