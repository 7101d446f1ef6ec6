"""Module values: type 7 (module2) is self-describing, so it is walked to its end and kept
opaque (the DUMP payload is the only way to move it); type 6 (module v1, pre-GA) is not and
is refused. The 64-bit module id holds the 9-character type name and the encoding version."""

from __future__ import annotations

from migrate.rdb.encodings import read_binary_double, read_binary_float, read_length, read_string
from migrate.rdb.records import ModuleValue
from migrate.rdb.source import RdbInput
from migrate.rdb.types.base import Chunks, ValueContext

CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
OP_EOF, OP_SINT, OP_UINT, OP_FLOAT, OP_DOUBLE, OP_STRING = 0, 1, 2, 3, 4, 5


def decode_module_id(module_id: int) -> tuple[str, int]:
    """(type name, encoding version) from a module id (redis module.c moduleTypeNameByID)."""
    encver = module_id & 1023
    bits = module_id >> 10
    name = "".join(CHARSET[(bits >> (6 * (8 - i))) & 63] for i in range(9))
    return name, encver


def skip_module_data(inp: RdbInput) -> None:
    """Walk a module2 serialization (opcode, value)* up to its EOF opcode."""
    while True:
        at = inp.offset
        op = read_length(inp)
        if op == OP_EOF:
            return
        if op in (OP_SINT, OP_UINT):
            read_length(inp)
        elif op == OP_FLOAT:
            read_binary_float(inp)
        elif op == OP_DOUBLE:
            read_binary_double(inp)
        elif op == OP_STRING:
            read_string(inp)
        else:
            raise inp.error(f"unknown module data opcode {op}", at)


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    at = inp.offset
    module_id = read_length(inp)
    name, encver = decode_module_id(module_id)
    if type_code == 6:
        raise inp.error(f"module value of module {name!r} in the pre-GA format (type 6) "
                        "cannot be read without the module", at)
    skip_module_data(inp)
    yield ModuleValue(name, encver, module_id), 1
