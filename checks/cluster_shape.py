"""cluster.shape: a target shaped differently from the source (cluster vs single node, or a
different number of shards) and what it means for clients, multi-key commands and scripts."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context
from migrate.protocol.cluster.slots import key_slot

# commands whose every call names two keys or more (or may: MGET, MSET): on a cluster they
# need all their keys in one slot; EVAL/EVALSHA/FCALL with several KEYS too
MULTI_KEY = frozenset({
    "mget", "mset", "msetnx", "rename", "renamenx", "copy", "smove", "rpoplpush", "brpoplpush",
    "lmove", "blmove", "sinter", "sunion", "sdiff", "sinterstore", "sunionstore", "sdiffstore",
    "sintercard", "zunion", "zinter", "zdiff", "zunionstore", "zinterstore", "zdiffstore",
    "zintercard", "zrangestore", "pfmerge", "bitop", "lmpop", "blmpop", "zmpop", "bzmpop",
    "georadius", "georadiusbymember", "geosearchstore", "lcs",
    "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro",
})
SHOWN = 8


class ClusterShape(Check):
    id = "cluster.shape"
    title = "A target of another shape: clients, multi-key commands and scripts"
    why = ("Every cluster uses the same slot function (CRC16 of the key or its {hash tag} mod "
           "16,384), so a command or script whose keys share a slot on the source cluster "
           "shares it on any cluster target, whatever its number of shards. A standalone "
           "source has no such rule: on a cluster target, a multi-key command (MGET, RENAME, "
           "SUNIONSTORE ...) or a script whose keys hash to different slots fails with "
           "CROSSSLOT. A cluster source moved onto one node needs its clients switched from "
           "cluster to standalone mode; Dragonfly answers cluster clients only with "
           "--cluster_mode=emulated. (A live standalone Valkey target for a cluster source is "
           "reported by cluster.protocol; keys outside database 0 by cluster.databases and "
           "databases.multiple; scripts' undeclared keys by lua.undeclared-keys.)")
    evidence = ("Cluster mode and shards of the source and of a live target; the catalogue's "
                "cluster_protocol; INFO commandstats (summed over every source primary) for "
                "multi-key commands; the key names that the Lua analysis of --scripts and the "
                "source's function libraries finds as literals, hashed with the cluster's slot "
                "function.")
    remedy = ("Standalone source to a cluster: give keys used together a shared hash tag "
              "({user42}:cart, {user42}:orders) and pass every key of a script in KEYS. "
              "Cluster source to one node: switch clients to standalone mode, or run Dragonfly "
              "with --cluster_mode=emulated for clients that stay in cluster mode.")
    source = (f"{COMPAT} 'Cluster', 'What users of existing tools complain about' (CROSSSLOT "
              "on cluster targets); checks/data/targets.yaml (cluster_protocol); Valkey docs, "
              "Cluster specification (hash tags)")

    def run(self, ctx: Context) -> Iterator[Finding]:
        source = ctx.source.cluster
        target_cluster = ctx.target.live and ctx.target.cluster_enabled
        single_node = not ctx.profile.value("cluster_protocol", True) or \
            (ctx.target.live and not ctx.target.cluster_enabled)
        if source.enabled:
            shards = f"{source.masters} shard(s)"
            evidence = {"source_shards": source.masters, "target": ctx.target_name,
                        "target_shards": ctx.target.cluster.masters if target_cluster else None}
            if ctx.target.flavor == "dragonfly":
                entry = ctx.profile.entry("cluster_protocol")
                yield self.finding(Severity.WARNING, f"{shards} merge into one Dragonfly node: "
                                   "cluster clients need --cluster_mode=emulated",
                                   "Clients must switch from a cluster client to a standalone "
                                   "one, or Dragonfly must answer CLUSTER SLOTS/SHARDS as a "
                                   "one-node cluster (--cluster_mode=emulated).",
                                   evidence=evidence,
                                   source=str(entry.get("source", self.source)))
            elif single_node:
                return  # cluster.protocol: cluster source, live standalone target
            else:
                shape = (f"a {ctx.target.cluster.masters}-shard cluster" if target_cluster
                         else "any cluster target")
                yield self.finding(Severity.INFO, f"{shards} to {shape}: the same slot "
                                   "function", "Multi-key commands and scripts that work on "
                                   "the source cluster stay single-slot on the target; only "
                                   "which node serves a slot changes (clients follow MOVED).",
                                   remediation="", evidence=evidence)
            return
        if target_cluster:
            yield from self._standalone_to_cluster(ctx)

    def _standalone_to_cluster(self, ctx: Context) -> Iterator[Finding]:
        shards = ctx.target.cluster.masters
        found = False
        for script in ctx.scripts:
            slots: dict[int, list[str]] = {}
            for key in dict.fromkeys(script.literal_keys):
                slots.setdefault(key_slot(key), []).append(key)
            if len(slots) < 2:
                continue
            found = True
            named = [f"{keys[0]} (slot {slot})" for slot, keys in sorted(slots.items())]
            evidence = {"script": script.name, "kind": script.kind,
                        "keys_by_slot": {str(s): k for s, k in sorted(slots.items())}}
            if script.kind == "script":
                yield self.finding(Severity.BLOCKER, f"{script.name}: keys in {len(slots)} "
                                   f"slots would fail with CROSSSLOT",
                                   f"The script names {', '.join(named[:SHOWN])}; a cluster runs "
                                   "a script only when all its keys are in one slot.",
                                   evidence=evidence)
            else:
                yield self.finding(Severity.WARNING, f"{script.name}: its functions name keys "
                                   f"in {len(slots)} slots",
                                   f"{', '.join(named[:SHOWN])}: each FCALL must stay in one "
                                   "slot on the cluster target.", evidence=evidence)
        used = {c: n for c, n in sorted(ctx.source.commandstats.items())
                if c.split("|")[0] in MULTI_KEY and n}
        if used:
            found = True
            yield self.finding(Severity.WARNING, f"Standalone source to a {shards}-shard cluster:"
                               f" {len(used)} multi-key command(s) in use "
                               f"({', '.join(c.upper() for c in list(used)[:SHOWN])})",
                               "Each call whose keys hash to different slots fails with "
                               "CROSSSLOT on the cluster target; the source's calls cannot be "
                               "checked key by key.",
                               evidence={"calls": used, "target_shards": shards})
        if not found:
            yield self.finding(Severity.INFO, f"Standalone source to a {shards}-shard cluster: "
                               "no multi-key command or cross-slot script seen",
                               "Clients must switch to cluster mode.", remediation="",
                               evidence={"target_shards": shards})
