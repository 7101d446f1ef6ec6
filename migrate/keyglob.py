"""``--match`` patterns with Redis's own glob rules (``*``, ``?``, ``[...]``, ``[^...]``,
``\\x``, over bytes, ``*`` crossing every byte), one implementation for copy, scan mode and
verify, so one pattern selects the same keys everywhere (and the same keys SCAN MATCH does)."""

from __future__ import annotations

import re


def glob_to_regex(pattern: str) -> bytes:
    """Redis glob as a regular expression over bytes (use with re.DOTALL: compile_glob)."""
    out, i, raw = [], 0, pattern.encode()
    while i < len(raw):
        ch = raw[i:i + 1]
        if ch == b"*":
            out.append(b".*")
        elif ch == b"?":
            out.append(b".")
        elif ch == b"\\" and i + 1 < len(raw):
            i += 1
            out.append(re.escape(raw[i:i + 1]))
        elif ch == b"[":
            end = raw.find(b"]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = raw[i + 1:end]
                if body.startswith(b"^"):
                    body = b"^" + body[1:].replace(b"\\", b"\\\\")
                else:
                    body = body.replace(b"\\", b"\\\\")
                out.append(b"[" + body + b"]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return b"".join(out)


def compile_glob(pattern: str) -> re.Pattern[bytes]:
    """A compiled matcher: ``compile_glob("user:*").fullmatch(key)``."""
    return re.compile(glob_to_regex(pattern), re.DOTALL)
