"""tls.in-use: the source serves TLS; the target must too."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class TlsInUse(Check):
    id = "tls.in-use"
    title = "The source serves TLS"
    why = ("Clients connecting with TLS (rediss://, tls-port) fail against a target that "
           "serves plain TCP only; Dragonfly takes TLS as flags (tls, tls_cert_file, "
           "tls_key_file, tls_ca_cert_file), not tls-* directives.")
    evidence = ("The --source URL scheme (rediss://) and CONFIG GET tls-port of the source; "
                "tls-port of a live target.")
    remedy = ("Configure TLS on the target with the same CA and client-certificate policy "
              "before clients switch; `kvmigrate convert-config` maps the tls-* settings.")
    source = f"{COMPAT} 'Config directives' (tls-*)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        port = int(ctx.source.config.get("tls-port", "0") or 0)
        if not ctx.source.tls and not port:
            return
        evidence = {"source_tls_url": ctx.source.tls, "source_tls_port": port}
        if ctx.target.live:
            target_port = int(ctx.target.config.get("tls-port", "0") or 0)
            evidence["target_tls_port"] = target_port
            if not target_port and not ctx.target.endpoint.startswith("rediss://"):
                yield self.finding(Severity.WARNING, "The source serves TLS, the target does "
                                   "not", evidence=evidence)
                return
        yield self.finding(Severity.INFO, "The source serves TLS: configure it on the target",
                           evidence=evidence)
