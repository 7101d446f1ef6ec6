"""The target loads a full resync as it arrives, rather than after writing it to disk: for
kvmigrate's own primaries (proxy mode, ``copy --from-rdb`` loaded by the target), whose
transfer then overlaps the target's load.

``repl-diskless-load on-empty-db`` is set for the duration and the target's own value put
back after. It applies only to an empty target (which is what kvmigrate serves), and a
transfer cut short leaves the target empty as before. A target that already loads while
receiving, or refuses the change (``CONFIG`` renamed, an older server), is left alone: it
then loads after the transfer, as it would by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import redis

SETTING = "repl-diskless-load"
WHILE_RECEIVED = ("on-empty-db", "swapdb", "flush-before-load")


@contextlib.contextmanager
def loading_while_received(client: redis.Redis,
                           note: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Yields True when the target loads while receiving for the duration."""
    try:
        before = client.config_get(SETTING).get(SETTING)
    except redis.RedisError:
        before = None
    if before is None or before in WHILE_RECEIVED:
        yield before is not None
        return
    changed = True  # before the call: a stop (Ctrl-C) as it returns still undoes it
    try:
        try:
            client.config_set(SETTING, "on-empty-db")
        except redis.RedisError:
            changed = False
        if changed and note is not None:
            note(f"the target loads the RDB as it arrives ({SETTING} on-empty-db, was "
                 f"{before}, until it has loaded)")
        yield changed
    finally:
        if changed:
            with contextlib.suppress(redis.RedisError):
                client.config_set(SETTING, before)
