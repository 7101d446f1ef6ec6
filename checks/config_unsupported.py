"""config.unsupported: source settings in use that the target cannot honour."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

DRAGONFLY_DEFAULT_DBNUM = 16


class ConfigUnsupported(Check):
    id = "config.unsupported"
    title = "Source settings the target cannot honour"
    why = ("A setting the application relies on (AOF durability, keyspace notification "
           "classes, an eviction policy, the number of databases, ...) silently changes "
           "meaning when the target has no equivalent: data that survived a crash, events "
           "subscribers waited for, or keys in high-numbered databases are gone.")
    evidence = ("CONFIG GET * of the source (secrets masked), INFO keyspace, and CONFIG GET * "
                "of a live target; the catalogue's unsupported and unknown directives for the "
                "target version.")
    remedy = ("Convert the configuration with `kvmigrate convert-config` and review each "
              "setting named here; change the application where the target cannot honour it.")
    source = f"{COMPAT} 'Config directives'; checks/data/targets.yaml"

    def run(self, ctx: Context) -> Iterator[Finding]:
        config = ctx.source.config
        for entry in ctx.profile.data.get("unsupported_directives") or []:
            value = config.get(entry["directive"])
            if value is None:
                continue
            hit = ("when_in" in entry and value in entry["when_in"]) or \
                ("when_not_in" in entry and value not in entry["when_not_in"])
            if hit:
                yield self.finding(Severity(entry.get("severity", "warning")),
                                   f"{entry['directive']} {value}: {entry['note']}",
                                   evidence={"directive": entry["directive"], "value": value,
                                             "target": ctx.target_name},
                                   source=str(entry.get("source", self.source)))
        yield from self._notifications(ctx)
        yield from self._unknown(ctx)
        yield from self._databases(ctx)

    def _notifications(self, ctx: Context) -> Iterator[Finding]:
        flags = ctx.source.config.get("notify-keyspace-events", "")
        entry = ctx.profile.entry("notify_keyspace_events")
        allowed = str(entry.get("value", "all"))
        if not flags or allowed == "all":
            return
        extra = sorted(set(flags) - set(allowed))
        if extra:
            yield self.finding(Severity.WARNING, f"notify-keyspace-events {flags}: "
                               f"{ctx.target_name} supports only {allowed}",
                               f"Subscribers waiting for the classes {''.join(extra)} get "
                               "nothing.",
                               evidence={"directive": "notify-keyspace-events", "value": flags,
                                         "unsupported_flags": "".join(extra)},
                               source=str(entry.get("source", self.source)))

    def _unknown(self, ctx: Context) -> Iterator[Finding]:
        config = ctx.source.config
        live = set(ctx.target.config) if ctx.target.live and ctx.target.config else None
        for entry in ctx.profile.entries("unknown_directives"):
            name = entry["directive"]
            value = config.get(name)
            if value is None or value == str(entry.get("default")):
                continue
            if live is not None and name in live:
                continue
            yield self.finding(Severity.WARNING, f"{name} {value}: unknown to "
                               f"{ctx.target_name}",
                               f"The source changed it from its default "
                               f"({entry.get('default')!r}); the target has no such setting.",
                               evidence={"directive": name, "value": value,
                                         "default": entry.get("default")},
                               source=str(entry.get("source", self.source)))

    def _databases(self, ctx: Context) -> Iterator[Finding]:
        used = sorted(db for db, counts in ctx.source.keyspace.items() if counts.get("keys"))
        if not used:
            return
        if ctx.target.live:
            limit = int(ctx.target.config.get("databases", "16") or 16)
            how = f"the target's databases setting is {limit}"
        elif ctx.target.flavor == "dragonfly":
            limit, how = DRAGONFLY_DEFAULT_DBNUM, "Dragonfly's dbnum defaults to 16"
        else:
            limit, how = 16, "the default databases setting is 16"
        if used[-1] >= limit:
            yield self.finding(Severity.BLOCKER, f"Data in database {used[-1]}, beyond the "
                               f"target's limit", f"{how}.",
                               remediation="Raise databases (dbnum on Dragonfly) on the target "
                                           f"to at least {used[-1] + 1}.",
                               evidence={"databases_used": used, "target_limit": limit})
