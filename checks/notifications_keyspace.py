"""notifications.keyspace: keyspace notifications are enabled and maybe subscribed to."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context


class NotificationsKeyspace(Check):
    id = "notifications.keyspace"
    title = "Keyspace notifications in use"
    why = ("Clients subscribed to __keyspace@/__keyevent@ channels (expiry handlers, cache "
           "invalidation) receive nothing from a target where notify-keyspace-events is not "
           "set the same way; the setting is configuration, not data, so a copy does not "
           "carry it.")
    evidence = ("CONFIG GET notify-keyspace-events of the source and of a live target; "
                "PUBSUB NUMPAT and PUBSUB CHANNELS __key*@*__:* of the source.")
    remedy = ("Set notify-keyspace-events on the target to the source's value before clients "
              "switch (Dragonfly supports only Ex: see config.unsupported).")
    source = f"{COMPAT} 'Commands Dragonfly lacks' (notify-keyspace-events)"

    def run(self, ctx: Context) -> Iterator[Finding]:
        flags = ctx.source.config.get("notify-keyspace-events", "")
        channels = ctx.source.keyspace_channels
        if not flags:
            return
        evidence = {"notify_keyspace_events": flags, "keyspace_channels": channels[:10],
                    "pattern_subscriptions": ctx.source.keyspace_pattern_subscribers}
        if ctx.target.live:
            target_flags = ctx.target.config.get("notify-keyspace-events", "")
            evidence["target_notify_keyspace_events"] = target_flags
            if set(flags) - set(target_flags):
                yield self.finding(Severity.WARNING, f"Keyspace notifications {flags!r} on the "
                                   f"source, {target_flags!r} on the target",
                                   evidence=evidence)
                return
        severity = Severity.WARNING if channels or ctx.source.keyspace_pattern_subscribers \
            else Severity.INFO
        yield self.finding(severity, f"Keyspace notifications are enabled ({flags})",
                           "Subscribers were seen." if severity is Severity.WARNING else
                           "No subscriber was seen at preflight time.", evidence=evidence)
