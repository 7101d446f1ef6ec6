"""Walk over a value without decoding it, for a second pass over a file already validated:
only its bytes are wanted (``Entry.raw``, the RESTORE fast path). Containers (listpacks,
ziplists, intsets) are stepped over as strings, which is most of the reader's work saved."""

from __future__ import annotations

from migrate.rdb.encodings import read_length
from migrate.rdb.source import RdbInput
from migrate.rdb.types.module import skip_module_data

SINGLE_STRING = frozenset({0, 9, 10, 11, 12, 13, 16, 17, 20})
SKIMMABLE = SINGLE_STRING | {1, 2, 3, 4, 5, 7, 14, 15, 18, 19, 21}


def skim(inp: RdbInput, type_code: int) -> int:
    """Step over one value of a type in :data:`SKIMMABLE`; returns its element count when
    known without decoding (0 otherwise)."""
    if type_code in SINGLE_STRING:
        inp.skip_string()
        return 1 if type_code == 0 else 0
    if type_code == 7:
        read_length(inp)
        skip_module_data(inp)
        return 1
    if type_code in (15, 19, 21):
        _skim_stream(inp, type_code)
        return 0
    n = read_length(inp)
    for _ in range(n):
        if type_code == 18:
            read_length(inp)
        inp.skip_string()
        if type_code == 4:
            inp.skip_string()
        elif type_code == 5:
            inp.read(8)
        elif type_code == 3:
            d = inp.read_byte()
            if d < 253:
                inp.read(d)
    return n if type_code in (1, 2, 3, 4, 5) else 0


def _skim_stream(inp: RdbInput, type_code: int) -> None:
    for _ in range(read_length(inp)):
        inp.skip_string()
        inp.skip_string()
    for _ in range(3 + (5 if type_code >= 19 else 0)):
        read_length(inp)
    for _ in range(read_length(inp)):
        inp.skip_string()
        read_length(inp)
        read_length(inp)
        if type_code >= 19:
            read_length(inp)
        for _ in range(read_length(inp)):
            inp.read(24)
            read_length(inp)
        for _ in range(read_length(inp)):
            inp.skip_string()
            inp.read(16 if type_code >= 21 else 8)
            inp.read(16 * read_length(inp))
