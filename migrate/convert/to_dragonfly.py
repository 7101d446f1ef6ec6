"""redis.conf -> a Dragonfly flagfile (``--name=value`` per line, for ``dragonfly --flagfile``).

Works on the effective settings (:mod:`.effective`): Dragonfly has no notion of a repeated
directive, so what is written is what Redis would have ended up with. Every directive gets a
fate; every one without an equivalent gets a finding with its line and a remedy
(:mod:`.dragonfly_rules` is the table).
"""

from __future__ import annotations

import os

from migrate.compat.versions import validity
from migrate.convert import dragonfly_rules
from migrate.convert.document import ConfigDocument, Directive
from migrate.convert.dragonfly_flags import ALL_FLAGS
from migrate.convert.effective import Setting, entries, resolve
from migrate.convert.grammar import parse_size
from migrate.convert.known import REDIS_FORCED_DEFAULTS
from migrate.convert.redis_rules import ACCUMULATE, known_to_redis
from migrate.convert.result import Conversion, DirectiveFate, Fate, finding
from migrate.model import Severity

RULES = dragonfly_rules.RULES
MIB = 1024 * 1024


class _Writer:
    def __init__(self, doc: ConfigDocument, version: str):
        self.doc = doc
        self.result = Conversion(source=doc.origin, target="dragonfly",
                                 target_version=version,
                                 valid_for=validity("dragonfly", version or None))
        self.settings = resolve(doc)
        self.lines = [f"# Dragonfly flagfile converted from {doc.origin} by kvmigrate "
                      "convert-config.", "# Use: dragonfly --flagfile=THIS_FILE", ""]

    # -- output helpers -------------------------------------------------------------------
    def emit(self, flag: str, value: str, d: Directive) -> None:
        if flag not in ALL_FLAGS:
            raise AssertionError(f"{flag} is not a known Dragonfly flag")  # a bug in the rules
        if "\n" in value or "\r" in value:
            self.finding("dragonfly.multiline-value", Severity.WARNING,
                         f"{d.name}: a value with a line break cannot go in a flagfile", d)
            return
        if value != value.strip():
            self.finding("dragonfly.flag-whitespace", Severity.WARNING,
                         f"{d.name}: the value starts or ends with a space", d,
                         detail="A flagfile line may lose surrounding spaces when it is read.",
                         remediation=f"pass it as the environment variable DFLY_{flag} "
                                     "instead, or change the value")
        where = d.where if d.line else "not set: Redis's default"
        self.lines.append(f"# {where} {d.name}")
        self.lines.append(f"--{flag}={value}")

    def fate(self, d: Directive, fate: Fate, target: str = "", note: str = "") -> None:
        self.result.fates.append(DirectiveFate(d, fate, target, note))

    def finding(self, id_: str, severity: Severity, title: str, d: Directive | None,
                detail: str = "", remediation: str = "", source: str = "") -> None:
        self.result.findings.append(finding(id_, severity, title, d, detail=detail,
                                            remediation=remediation, source=source))

    # -- the walk -------------------------------------------------------------------------
    def run(self) -> Conversion:
        for setting in self.settings.values():
            for d in setting.overridden:
                self.fate(d, Fate.OVERRIDDEN, note=f"{setting.last.where} wins")
            self.convert(setting)
        if "save" not in self.settings:
            self.default_save()
        if self.doc.from_server:
            self.finding("convert.not-in-config-get", Severity.INFO,
                         "ACL users, renamed commands and loaded modules are not part of "
                         "CONFIG GET and were not converted", None,
                         remediation="check ACL LIST and MODULE LIST on the source, or "
                                     "convert its redis.conf file instead")
        order = {id(d): i for i, d in enumerate(self.doc.directives())}
        self.result.fates.sort(key=lambda f: order.get(id(f.directive), -1))
        self.result.text = "\n".join(self.lines) + "\n"
        return self.result

    def convert(self, s: Setting) -> None:
        name = s.name
        rule = RULES.get(name)
        handler = getattr(self, "on_" + name.replace("-", "_"), None)
        if rule is not None and rule.kind == "custom" and handler is not None:
            handler(s, rule)
        elif rule is None:
            self.no_rule(s)
        elif rule.kind == "none":
            self.none(s, rule)
        else:
            self.simple(s, rule)

    def simple(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, value = s.last, s.args[0] if s.args else ""
        if name_is(s, "port") and self.tls_only():
            self.fate(d, Fate.CHANGED, "port", "port 0 with tls-port: the TLS port is used")
            return
        out = value
        if rule.kind == "bool":
            out = {"yes": "true", "no": "false"}.get(value.lower(), value)
        elif rule.kind == "size":
            out = str(parse_size(value))
        self.emit(rule.flag, out, d)
        if out != value:
            fate = Fate.CHANGED
        else:
            fate = Fate.MAPPED if rule.flag == name_of(s) else Fate.RENAMED
        self.fate(d, fate, rule.flag, rule.how)
        if name_is(s, "maxmemory"):
            self.check_maxmemory(d, int(out))
        elif name_is(s, "acllog-max-len"):
            self.finding("dragonfly.acllog-per-thread", Severity.INFO,
                         "acllog_max_len counts entries per thread in Dragonfly", d,
                         source=rule.source)

    def none(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d = s.last
        value = (s.args[0] if s.args else "").lower()
        severity = rule.severity
        # These are blockers only when the feature is on.
        if (s.name == "appendonly" and value != "yes") or \
                (s.name == "cluster-enabled" and value != "yes") or \
                (s.name in ("min-replicas-to-write", "min-slaves-to-write") and value == "0"):
            severity = Severity.INFO
        fate = Fate.UNSUPPORTED if severity is not Severity.INFO else Fate.DROPPED
        for src in s.sources:
            self.fate(src, fate, "", rule.how)
        # Queued directives (user, loadmodule ...): one finding per line.
        for src in s.sources if s.name in ACCUMULATE else [d]:
            title = (f"{s.name}: no Dragonfly equivalent" if severity is Severity.INFO
                     else f"{s.name} {' '.join(src.masked_args())}: not supported by "
                          "Dragonfly")
            self.finding(f"dragonfly.{s.name}", severity, title, src, detail=rule.how,
                         remediation="" if severity is Severity.INFO else rule.how,
                         source=rule.source)

    def no_rule(self, s: Setting) -> None:
        known = known_to_redis(s.name)
        how = dragonfly_rules.DEFAULT_HOW if known else \
            "unknown to Redis 7.0/8.0 (a module's setting, or a typo?): not written"
        for src in s.sources:
            self.fate(src, Fate.DROPPED, "", how)
        self.finding("dragonfly.no-equivalent" if known else "dragonfly.unknown-directive",
                     Severity.INFO if known else Severity.WARNING,
                     f"{s.name}: {how}", s.last)

    # -- custom conversions ---------------------------------------------------------------
    def on_maxmemory_policy(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, policy = s.last, s.args[0].lower()
        if policy.startswith("allkeys-"):
            self.emit("cache_mode", "true", d)
            self.fate(d, Fate.CHANGED, "cache_mode", "cache_mode=true")
            if policy != "allkeys-lru":
                self.finding("dragonfly.eviction-policy", Severity.INFO,
                             f"{policy}: Dragonfly evicts with its own policy", d,
                             detail="Dragonfly has one eviction policy (a 2Q-like cache); "
                                    "LFU or random selection is not available.",
                             source=rule.source)
        elif policy == "noeviction":
            self.emit("cache_mode", "false", d)
            self.fate(d, Fate.CHANGED, "cache_mode", "cache_mode=false")
        else:
            self.emit("cache_mode", "false", d)
            self.fate(d, Fate.CHANGED, "cache_mode", "cache_mode=false (no eviction)")
            self.finding("dragonfly.volatile-eviction", Severity.WARNING,
                         f"{policy}: Dragonfly cannot evict only keys with a TTL", d,
                         detail="cache_mode=true would evict any key, including keys without "
                                "a TTL; cache_mode=false was written, so writes fail with OOM "
                                "at maxmemory instead of evicting.",
                         remediation="set cache_mode=true only if every key may be evicted",
                         source=rule.source)

    def on_save(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d = s.last
        if not s.args:
            for src in s.sources:
                self.fate(src, Fate.CHANGED, "snapshot_cron", "snapshots disabled: no schedule")
            self.finding("dragonfly.save-disabled", Severity.INFO,
                         "save \"\": no snapshot schedule written", d,
                         detail="Dragonfly still saves a snapshot at shutdown and loads it at "
                                "start while dbfilename is set.",
                         remediation="pass --dbfilename= (empty) to turn that off too",
                         source=rule.source)
            return
        self.write_cron(s.args, d, s.sources, rule)

    def default_save(self) -> None:
        rule = RULES["save"]
        default = REDIS_FORCED_DEFAULTS["7.0"]["save"].split()
        anchor = Directive("save", default, self.doc.origin, 0)
        self.finding("dragonfly.save-default", Severity.INFO,
                     f"no 'save' line: Redis's default ({' '.join(default)}) applies", None,
                     detail="converted like an explicit save line", source=rule.source)
        self.write_cron(default, anchor, [], rule)

    def write_cron(self, args: list[str], d: Directive, sources: list[Directive],
                   rule: dragonfly_rules.Rule) -> None:
        points = [(int(args[i]), int(args[i + 1])) for i in range(0, len(args), 2)]
        cron, every = save_to_cron(points)
        self.emit("snapshot_cron", cron, d)
        for src in sources:
            self.fate(src, Fate.CHANGED, "snapshot_cron", f"{cron} ({every})")
        self.finding("dragonfly.snapshot-schedule", Severity.WARNING,
                     f"save points {' '.join(args)} -> snapshot_cron '{cron}' ({every})",
                     d if sources else None,
                     detail="Redis snapshots after N changes within S seconds; Dragonfly "
                            "snapshots on a fixed schedule whether or not anything changed. "
                            "The schedule uses the shortest save interval, so no more writes "
                            "are at risk than with Redis under heavy load.",
                     remediation="adjust snapshot_cron to the loss window you accept",
                     source=rule.source)

    def on_dbfilename(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, name = s.last, s.args[0]
        stem = name[:-4] if name.lower().endswith(".rdb") else name
        self.emit("dbfilename", stem, d)
        self.fate(d, Fate.CHANGED if stem != name else Fate.MAPPED, "dbfilename", rule.how)
        self.finding("dragonfly.snapshot-format", Severity.INFO,
                     f"dbfilename {name} -> {stem}: Dragonfly writes its own snapshot files", d,
                     detail="With df_snapshot_format=true (default) Dragonfly writes "
                            f"{stem}-summary.dfs and per-shard .dfs files, not an RDB file; "
                            "it also saves at shutdown.",
                     remediation="pass --df_snapshot_format=false to write an RDB file",
                     source=rule.source)

    def on_notify_keyspace_events(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, value = s.last, s.args[0]
        if not value:
            self.fate(d, Fate.MAPPED, "notify_keyspace_events", "disabled, as by default")
            return
        has_e = "E" in value
        has_x = "x" in value or "A" in value
        lost = sorted(set(value) - {"E", "x"})
        if has_e and has_x:
            self.emit("notify_keyspace_events", "Ex", d)
            self.fate(d, Fate.CHANGED if value != "Ex" else Fate.MAPPED,
                      "notify_keyspace_events", "only Ex is kept")
            if lost:
                self.finding("dragonfly.keyspace-events", Severity.WARNING,
                             f"notify-keyspace-events {value}: only 'Ex' survives", d,
                             detail=f"Classes lost: {''.join(lost)}. Dragonfly publishes only "
                                    "expired-key events on __keyevent@*__:expired.",
                             remediation="clients that rely on the other events must poll "
                                         "or be changed",
                             source=rule.source)
            return
        self.fate(d, Fate.UNSUPPORTED, "", "no event class Dragonfly supports")
        self.finding("dragonfly.keyspace-events", Severity.BLOCKER,
                     f"notify-keyspace-events {value}: Dragonfly supports none of these", d,
                     detail="Dragonfly publishes only keyevent notifications for expired keys "
                            "('Ex').",
                     remediation="clients subscribed to these notifications would receive "
                                 "nothing: change them before moving to Dragonfly",
                     source=rule.source)

    def on_bind(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d = s.last
        addresses = [a.lstrip("-") for a in s.args]
        first = addresses[0] if addresses else ""
        if first in ("*", "::*", "0.0.0.0", ""):
            self.fate(d, Fate.CHANGED, "bind", "all interfaces: Dragonfly's default")
        else:
            self.emit("bind", first, d)
            self.fate(d, Fate.MAPPED if len(addresses) == 1 else Fate.CHANGED, "bind",
                      rule.how)
        if len(addresses) > 1:
            self.finding("dragonfly.bind-one-address", Severity.WARNING,
                         f"bind {' '.join(s.args)}: Dragonfly listens on one address "
                         f"({first or 'all'})", d,
                         detail=f"Not listened on: {', '.join(addresses[1:])}.",
                         remediation="clients connecting to the other addresses must move",
                         source=rule.source)

    def on_rename_command(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        final: dict[str, str] = {}  # original command -> its last name ("" = disabled)
        origin: dict[str, str] = {}  # current name -> original command (for chains a->b->c)
        for (old, new), src in zip(entries(s), s.sources, strict=True):
            original = origin.pop(old.lower(), old.lower())
            final[original] = new
            if new:
                origin[new.lower()] = original
                self.fate(src, Fate.UNSUPPORTED,
                          note="Dragonfly 1.40 has no rename (rename_command is an unknown "
                               "flag there)")
            else:
                self.fate(src, Fate.CHANGED, "restricted_commands",
                          "disabled -> restricted to the admin port")
        renames = [old for old, new in final.items() if new]  # the new names are secrets
        disabled = [old for old, new in final.items() if not new]
        if renames:  # seen on Dragonfly 1.40.1: --rename_command is refused at start
            self.finding("dragonfly.rename-command", Severity.BLOCKER,
                         f"rename-command has no Dragonfly equivalent (renamed: "
                         f"{', '.join(renames)})",
                         s.last,
                         detail="Dragonfly 1.40.1 refuses --rename_command at start. Its "
                                "--command_alias adds a name but keeps the original one "
                                "callable, and an alias needs its own ACL permissions, so "
                                "neither hiding a command nor the clients' renamed names "
                                "carry over.",
                         remediation="make clients call the original names, and restrict "
                                     "dangerous commands with ACLs or restricted_commands "
                                     "(admin port only)",
                         source="seen on Dragonfly 1.40.1; dragonfly "
                                "src/server/command_registry.cc (command_alias)")
        if disabled:
            self.emit("restricted_commands", ",".join(disabled), s.last)
            self.finding("dragonfly.disabled-commands", Severity.INFO,
                         f"commands disabled with rename-command: {', '.join(disabled)}",
                         s.last,
                         detail="written as restricted_commands: only connections to the "
                                "admin port (admin_port) may run them; without an admin port "
                                "nobody can.",
                         source=rule.source)

    def on_replicaof(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d = s.last
        host, port = s.args[0], s.args[1]
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.emit("replicaof", target, d)
        self.fate(d, Fate.CHANGED, "replicaof", rule.how)
        self.finding("dragonfly.replica-of-redis", Severity.WARNING,
                     "Dragonfly as a replica of Redis can lose keys without an error", d,
                     detail="RDB 13+ fails; hashes with field TTLs stop the sync part way; "
                            "vector sets are skipped (docs/compatibility.md).",
                     remediation="run kvmigrate preflight and verify after the sync",
                     source="docs/compatibility.md 'Dragonfly as a replica of Redis'")

    on_slaveof = on_replicaof

    def on_loglevel(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, level = s.last, s.args[0].lower()
        value = {"debug": "0", "verbose": "0", "notice": "0", "warning": "1",
                 "nothing": "3"}.get(level)
        if value is None:
            self.no_rule(s)
            return
        self.emit("minloglevel", value, d)
        self.fate(d, Fate.CHANGED, "minloglevel", rule.how)

    def on_logfile(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, path = s.last, s.args[0]
        if not path:
            self.emit("logtostdout", "true", d)
            self.fate(d, Fate.CHANGED, "logtostdout", "stdout")
            return
        directory = os.path.dirname(path) or "."
        self.emit("log_dir", directory, d)
        self.fate(d, Fate.CHANGED, "log_dir", rule.how)
        self.finding("dragonfly.log-files", Severity.INFO,
                     f"logfile {path} -> log_dir {directory}", d,
                     detail="Dragonfly (glog) names its own files (dragonfly.INFO, ...) in "
                            "that directory.", source=rule.source)

    def on_tls_port(self, s: Setting, rule: dragonfly_rules.Rule) -> None:
        d, tls_port = s.last, s.args[0]
        if tls_port == "0":
            self.fate(d, Fate.DROPPED, "", "TLS port disabled")
            return
        if self.tls_only():
            self.emit("port", tls_port, d)
            self.emit("tls", "true", d)
            self.fate(d, Fate.CHANGED, "tls", "tls=true on port " + tls_port)
            return
        self.fate(d, Fate.UNSUPPORTED, "", "plain and TLS ports at once")
        self.finding("dragonfly.tls-and-plain", Severity.BLOCKER,
                     f"tls-port {tls_port} beside a plain port: Dragonfly serves one or the "
                     "other", d,
                     remediation="move every client to TLS and set port 0 (then tls=true is "
                                 "written), or keep Dragonfly plain and drop tls-port",
                     source=rule.source)

    def tls_only(self) -> bool:
        tls = self.settings.get("tls-port")
        port = self.settings.get("port")
        port_value = port.args[0] if port else "6379"
        return bool(tls and tls.args and tls.args[0] != "0" and port_value == "0")

    def check_maxmemory(self, d: Directive, value: int) -> None:
        source = RULES["maxmemory"].source
        if value == 0:
            self.finding("dragonfly.maxmemory-zero", Severity.INFO,
                         "maxmemory 0: Redis has no limit; Dragonfly uses the machine's memory",
                         d, source=source)
        elif value < 256 * MIB:
            self.finding("dragonfly.maxmemory-small", Severity.WARNING,
                         f"maxmemory {value} bytes: Dragonfly needs 256 MB per thread", d,
                         detail="Dragonfly exits at start when maxmemory < threads x 256 MB.",
                         remediation="raise maxmemory, or set proactor_threads so that "
                                     "threads x 256 MB fits",
                         source="dragonflydb/dragonfly src/server/dfly_main.cc (RunEngine)")


def name_of(s: Setting) -> str:
    return s.name.replace("-", "_")


def name_is(s: Setting, name: str) -> bool:
    return s.name == name


def save_to_cron(points: list[tuple[int, int]]) -> tuple[str, str]:
    """The cron schedule for Redis save points: the shortest interval, rounded down to a
    step that divides the hour or the day evenly."""
    shortest = min(secs for secs, _ in points)
    minutes = shortest // 60
    if minutes < 1:
        return "* * * * *", "every minute"
    if minutes < 60:
        step = max(x for x in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if x <= minutes)
        return (f"*/{step} * * * *" if step > 1 else "* * * * *",
                f"every {step} minutes" if step > 1 else "every minute")
    hours = minutes // 60
    if hours < 24:
        step = max(x for x in (1, 2, 3, 4, 6, 8, 12) if x <= hours)
        return (f"0 */{step} * * *" if step > 1 else "0 * * * *",
                f"every {step} hour{'s' if step > 1 else ''}")
    return "0 0 * * *", "every day"


def convert(doc: ConfigDocument, target_version: str | None = None) -> Conversion:
    return _Writer(doc, target_version or "").run()
