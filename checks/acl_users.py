"""acl.users: ACL users that must be recreated on the target."""

from __future__ import annotations

from collections.abc import Iterator

from checks._common import COMPAT
from migrate.model import Finding, Severity
from migrate.preflight.base import Check
from migrate.preflight.context import Context

OPEN_DEFAULT = {"~*", "&*", "+@all", "resetchannels", "allchannels", "allkeys", "allcommands",
                "sanitize-payload", "skip-sanitize-payload"}


class AclUsers(Check):
    id = "acl.users"
    title = "ACL users to recreate on the target"
    why = ("Users, passwords and permissions are not keys: a data copy does not carry them, "
           "and clients authenticating as these users are refused on the target. Password "
           "hashes cannot be turned back into passwords, so they must come from the operator.")
    evidence = ("ACL LIST of the source: user names, on/off, nopass and rules (password "
                "hashes are dropped and never shown).")
    remedy = ("Recreate the users on the target (ACL SETUSER, or the aclfile / users.acl "
              "converted with `kvmigrate convert-config`) with their passwords from your "
              "secret store, before clients switch.")
    source = f"{COMPAT} (ACLs are outside the keyspace); redis docs: ACL LIST"

    def run(self, ctx: Context) -> Iterator[Finding]:
        custom = []
        for user in ctx.source.acl_users:
            rules = set(user.rules.split())
            if user.name == "default" and user.nopass and rules <= OPEN_DEFAULT:
                continue
            custom.append({"user": user.name, "enabled": user.enabled, "nopass": user.nopass,
                           "rules": user.rules})
        if len(custom) == 1 and custom[0]["user"] == "default":
            yield self.finding(Severity.WARNING, "The default user has a password or "
                               "restrictions: set the same on the target",
                               "Clients authenticate as the default user (requirepass).",
                               evidence={"users": custom})
        elif custom:
            names = ", ".join(str(u["user"]) for u in custom)
            yield self.finding(Severity.WARNING, f"{len(custom)} ACL user(s) to recreate: "
                               f"{names}", evidence={"users": custom})
