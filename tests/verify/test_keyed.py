"""Per-key commands encoded by template (migrate.verify.keyed) are byte for byte what the
general encoder writes, for any key bytes and fixed arguments after the key."""

from __future__ import annotations

from migrate.protocol.resp import encode_command_py
from migrate.verify.keyed import args, encode_keyed, encode_pairs

KEYS = [b"plain", b"", b"with\r\nnewline", bytes(range(256)), "ключ".encode(), b"%d%b%s"]


def test_templates_encode_as_the_general_encoder() -> None:
    names = (b"GET", b"DUMP", b"PEXPIRETIME", (b"GETRANGE", b"0", b"65536"), (b"X", b"%d%%"))
    commands = [(name, key) for key in KEYS for name in names]
    assert encode_keyed(commands) == b"".join(encode_command_py(args(name, key))
                                              for name, key in commands)
    pairs = [c for key in KEYS for c in ((b"TYPE", key), (b"PTTL", key))]
    assert encode_pairs(b"TYPE", b"PTTL", KEYS) == b"".join(encode_command_py(c)
                                                             for c in pairs)
