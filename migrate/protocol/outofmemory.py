"""A target that refuses writes for lack of memory: the run stops at the first refusal.

A server at ``maxmemory`` with ``maxmemory-policy noeviction`` answers every write that could
grow its memory with an error (Redis and Valkey: ``OOM command not allowed when used memory >
'maxmemory'.``; Dragonfly: ``Out of memory``), and keeps answering so until someone frees
memory or raises the limit. Every later write of a copy would be refused too, so the writers
(:class:`~migrate.protocol.pipeline.PipelineWriter`, the cluster writer) stop at the first such
reply with :class:`TargetOutOfMemory`: one line naming the refused command, its key and
database, and what to do. Exit 4; the state folder stays resumable.
"""

from __future__ import annotations

from migrate.errors import KvmError

OOM_REPLIES = ("OOM ", "Out of memory")  # Redis/Valkey, Dragonfly (error replies' text)

RESUME_HINT = ("raise maxmemory on the target (CONFIG SET maxmemory) or free memory there, "
               "then run again with --resume")


def is_out_of_memory(error: str) -> bool:
    """Is this error reply a refusal for lack of memory?"""
    return error.startswith(OOM_REPLIES)


def describe_label(label: object) -> str:
    """A writer's label for a command, in words: ``SET on key 'k' in db 0``.

    Labels are tuples ``(command, key, db)``, a replayed stream's with the source offset
    after them; anything else (no label kept) is ``a write``."""
    if not isinstance(label, tuple) or len(label) < 3:
        return "a write"
    name, key, db = label[0], label[1], label[2]
    name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    out = name.upper()
    if isinstance(key, bytes):
        out += f" on key {key.decode(errors='replace')!r}"
    out += f" in db {db}"
    if len(label) > 3 and label[3] is not None:
        out += f" (source offset {label[3]})"
    return out


class TargetOutOfMemory(KvmError):
    """The target refused a write for lack of memory (noeviction at maxmemory)."""

    def __init__(self, where: str, error: str, label: object, hint: str = RESUME_HINT):
        said = error.strip().rstrip(".")
        super().__init__(f"the target {where} is out of memory: it refused "
                         f"{describe_label(label)}: {said}; the run stopped there", hint)
        self.where, self.error, self.label = where, error, label
