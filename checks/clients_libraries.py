"""clients.libraries: client libraries connected to the source, and known victims."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class ClientsLibraries(Check):
    id = "clients.libraries"
    title = "Client libraries connected to the source"
    why = ("Some libraries rely on behaviour a target lacks: BullMQ, Sidekiq and "
           "sidekiq-unique-jobs build keys inside Lua scripts, which Dragonfly rejects unless "
           "told otherwise. Knowing who is connected tells you whom to test.")
    evidence = ("CLIENT LIST of the source: lib-name of each connection (Redis 7.2+ clients "
                "send it with CLIENT SETINFO); the catalogue's known_victims for the target.")
    remedy = ("Test each named library against the target; for the known victims on Dragonfly "
              "use the library's Dragonfly mode or the --!df flags (see lua.undeclared-keys).")
    source = f"{COMPAT} 'Lua and functions on Dragonfly' (known victims)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        libs = {k: v for k, v in ctx.source.client_libraries.items() if k != "(unnamed)"}
        if not libs:
            return
        victims = [str(v).lower() for v in ctx.profile.data.get("known_victims") or []]
        hit = sorted(name for name in libs if any(v in name.lower() for v in victims))
        evidence = {"connections_per_library": libs, "target": ctx.target_name}
        if hit:
            yield self.finding(Severity.WARNING, f"Connected libraries known to break on "
                               f"{ctx.target_name}: {', '.join(hit)}", evidence=evidence)
        else:
            yield self.finding(Severity.INFO, f"{sum(libs.values())} connection(s) from "
                               f"{len(libs)} named librar(ies)", remediation="",
                               evidence=evidence)
