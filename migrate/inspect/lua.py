"""Static analysis of Redis Lua scripts and function libraries with a real Lua parser.

For every ``redis.call`` / ``redis.pcall`` (and ``server.*``, and local aliases such as
``local rcall = redis.call``) it records the command and checks each key argument: a key is
*declared* only when its value comes from ``KEYS`` (or, in a function library, from the
callback's first parameter). Anything else is an undeclared key, with the reason: built by
concatenation or string functions, taken from ARGV, from an earlier call's reply, a literal
name, or of unknown origin, and whether it happens in a loop.

The analysis tracks where values come from (their *origins*) through locals, globals,
tables, helper-function parameters and return values, iterating to a fixed point, so it
follows ``local k = prefix .. ARGV[1]`` through a helper into a loop. It is conservative:
a value of mixed origin counts as undeclared.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from luaparser import ast as lua_ast
from luaparser import astnodes as n

KEY = "key"  # an element of KEYS: a declared key
ARGV = "argv"
CONCAT = "concat"
DERIVED = "derived"
REPLY = "reply"
LITERAL = "literal"
NUMBER = "number"
UNKNOWN = "unknown"
CALLFN = "callfn"  # redis.call itself (for aliases)
FUNCTION = "function"
TABLE = "[]"  # prefix: a table whose elements have the origin that follows

REASONS = {
    ARGV: "taken from ARGV",
    CONCAT: "built by concatenation",
    DERIVED: "built with string functions",
    REPLY: "taken from an earlier call's reply",
    LITERAL: "named by a literal string",
    NUMBER: "a number",
    UNKNOWN: "of unknown origin",
}
CALLERS = {"call", "pcall"}
NAMESPACES = {"redis", "server"}
STRING_FUNCS = {"format", "sub", "lower", "upper", "rep", "gsub", "reverse", "char"}
DF_FLAGS = re.compile(r"^\s*--!df\s+flags=([\w,-]+)", re.MULTILINE)
REDIS_FLAGS = re.compile(r"^#!lua\b.*?\bflags=([\w,-]+)")

# Which arguments (0-based, after the command name) are keys. Default: the first.
ALL_KEYS = {"del", "unlink", "exists", "mget", "touch", "watch", "sinter", "sunion", "sdiff",
            "sinterstore", "sunionstore", "sdiffstore", "pfcount", "pfmerge"}
NO_KEYS = {"ping", "time", "info", "echo", "publish", "spublish", "dbsize", "randomkey", "scan",
           "keys", "flushdb", "flushall", "select", "script", "cluster", "config", "client",
           "command", "function", "memory", "latency", "slowlog", "debug", "lastsave", "role",
           "readonly", "readwrite", "multi", "exec", "discard", "unwatch", "wait", "waitaof"}
FIRST_TWO = {"rpoplpush", "brpoplpush", "lmove", "blmove", "smove", "rename", "renamenx",
             "copy", "lcs", "geosearchstore", "zrangestore"}
ALL_BUT_LAST = {"blpop", "brpop", "bzpopmin", "bzpopmax"}
PAIRS = {"mset", "msetnx"}
NUMKEYS_AT = {"zunion": 0, "zinter": 0, "zdiff": 0, "sintercard": 0, "zintercard": 0,
              "lmpop": 0, "zmpop": 0, "blmpop": 1, "bzmpop": 1,
              "zunionstore": 1, "zinterstore": 1, "zdiffstore": 1}
SUBCOMMAND_KEY = {"object", "xgroup", "xinfo"}  # key after the subcommand


@dataclass
class KeyAccess:
    line: int | None
    command: str
    reason: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line else "?"
        return f"{where}: {self.command.upper()} of a key {self.reason}"


@dataclass
class ScriptAnalysis:
    name: str
    kind: str = "script"  # "script" (EVAL) or "function" (a FUNCTION LOAD library)
    commands: dict[str, int] = field(default_factory=dict)  # literal command names -> calls
    dynamic_commands: int = 0
    undeclared: list[KeyAccess] = field(default_factory=list)
    literal_keys: list[str] = field(default_factory=list)  # key arguments named by a literal
    flags: list[str] = field(default_factory=list)  # --!df flags=... and #!lua flags=...
    parse_error: str = ""
    sha1: str = ""  # SHA1 of the code, as EVALSHA and Dragonfly's lua_undeclared_keys_shas name it

    @property
    def allows_undeclared(self) -> bool:
        return "allow-undeclared-keys" in self.flags

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "commands": sorted(self.commands),
                "undeclared": [a.describe() for a in self.undeclared], "flags": self.flags,
                "sha1": self.sha1,
                "parse_error": self.parse_error}


def analyse(code: str, name: str, kind: str = "script") -> ScriptAnalysis:
    result = ScriptAnalysis(name=name, kind=kind,
                            sha1=hashlib.sha1(code.encode("utf-8", "surrogateescape")).hexdigest())
    result.flags = _flags(code)
    source = code
    if source.startswith("#!"):  # a function library's shebang is not Lua: keep line numbers
        source = "--" + source[2:]
    try:
        tree = lua_ast.parse(source)
    except Exception as exc:  # luaparser raises its own SyntaxException and antlr errors
        result.parse_error = str(exc).strip().splitlines()[0] if str(exc).strip() else \
            type(exc).__name__
        return result
    _Analyser(tree, result).run()
    return result


def _flags(code: str) -> list[str]:
    flags: list[str] = []
    head = "\n".join(code.splitlines()[:5])
    for pattern in (DF_FLAGS, REDIS_FLAGS):
        for match in pattern.finditer(head):
            flags.extend(f for f in match.group(1).split(",") if f)
    return flags


class _Scope:
    def __init__(self, key: int, parent: _Scope | None):
        self.key = key
        self.parent = parent
        self.names: set[str] = set()

    def owner(self, name: str) -> int:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.key
            scope = scope.parent
        return 0  # global


class _Analyser:
    MAX_PASSES = 6

    def __init__(self, tree: n.Chunk, result: ScriptAnalysis):
        self.tree = tree
        self.result = result
        self.vars: dict[tuple[int, str], set[str]] = {}
        self.params: dict[tuple[int, int], set[str]] = {}  # (function node id, index)
        self.returns: dict[int, set[str]] = {}
        self.functions: dict[tuple[int, str], Any] = {}  # bound names -> function node
        self.changed = False
        self.final = False
        self.loop_depth = 0
        self.current_function: list[int] = []

    # --- driver -----------------------------------------------------------------------
    def run(self) -> None:
        for _ in range(self.MAX_PASSES):
            self.changed = False
            self._pass()
            if not self.changed:
                break
        self.final = True
        self._pass()

    def _pass(self) -> None:
        self.loop_depth = 0
        self.current_function = []
        self._block(self.tree.body, _Scope(id(self.tree), None))

    # --- state helpers ----------------------------------------------------------------
    def _add(self, table: dict[Any, set[str]], key: Any, origins: set[str]) -> None:
        have = table.setdefault(key, set())
        if not origins <= have:
            have |= origins
            self.changed = True

    def _declare(self, scope: _Scope, name: str, origins: set[str]) -> None:
        scope.names.add(name)
        self._add(self.vars, (scope.key, name), origins)

    def _assign(self, scope: _Scope, name: str, origins: set[str]) -> None:
        self._add(self.vars, (scope.owner(name), name), origins)

    def _lookup(self, scope: _Scope, name: str) -> set[str]:
        if name == "KEYS":
            return {TABLE + KEY}
        if name == "ARGV":
            return {TABLE + ARGV}
        return set(self.vars.get((scope.owner(name), name), set()))

    # --- statements -------------------------------------------------------------------
    def _block(self, block: Any, scope: _Scope) -> None:
        body = block.body if isinstance(block, n.Block) else block
        for statement in body or []:
            self._statement(statement, scope)

    def _statement(self, s: Any, scope: _Scope) -> None:
        if isinstance(s, n.LocalAssign):
            values = [self._expr(v, scope) for v in s.values or []]
            for i, target in enumerate(s.targets):
                if isinstance(s.values[i] if i < len(s.values or []) else None,
                              n.AnonymousFunction):
                    self.functions[(scope.key, target.id)] = s.values[i]
                self._declare(scope, target.id, self._nth(values, i, s.values))
        elif isinstance(s, n.Assign):
            values = [self._expr(v, scope) for v in s.values or []]
            for i, target in enumerate(s.targets):
                origins = self._nth(values, i, s.values)
                if isinstance(target, n.Name):
                    if i < len(s.values or []) and isinstance(s.values[i], n.AnonymousFunction):
                        self.functions[(scope.owner(target.id), target.id)] = s.values[i]
                    self._assign(scope, target.id, origins)
                elif isinstance(target, n.Index):
                    self._store_element(target.value, origins, scope)
                    self._expr(target.idx, scope)
        elif isinstance(s, n.LocalFunction):
            scope.names.add(s.name.id)
            self.functions[(scope.key, s.name.id)] = s
            self._declare(scope, s.name.id, {FUNCTION})
            self._function(s, scope)
        elif isinstance(s, n.Function):
            if isinstance(s.name, n.Name):
                self.functions[(scope.owner(s.name.id), s.name.id)] = s
                self._assign(scope, s.name.id, {FUNCTION})
            self._function(s, scope)
        elif isinstance(s, n.Method):
            self._function(s, scope)
        elif isinstance(s, n.Fornum):
            self._expr(s.start, scope)
            self._expr(s.stop, scope)
            if isinstance(s.step, n.Node):
                self._expr(s.step, scope)
            inner = _Scope(id(s), scope)
            self._declare(inner, s.target.id, {NUMBER})
            self._loop(s.body, inner)
        elif isinstance(s, n.Forin):
            inner = _Scope(id(s), scope)
            for i, target in enumerate(s.targets):
                self._declare(inner, target.id, self._iteration(s.iter, i, scope))
            self._loop(s.body, inner)
        elif isinstance(s, n.While):
            self._expr(s.test, scope)
            self._loop(s.body, _Scope(id(s), scope))
        elif isinstance(s, n.Repeat):
            inner = _Scope(id(s), scope)
            self._loop(s.body, inner)
            self._expr(s.test, inner)
        elif isinstance(s, n.If | n.ElseIf):
            self._expr(s.test, scope)
            self._block(s.body, _Scope(id(s.body), scope))
            if isinstance(s.orelse, n.ElseIf):
                self._statement(s.orelse, scope)
            elif s.orelse is not None:
                self._block(s.orelse, _Scope(id(s.orelse), scope))
        elif isinstance(s, n.Do):
            self._block(s.body, _Scope(id(s), scope))
        elif isinstance(s, n.Return):
            values = s.values if isinstance(s.values, list) else [s.values] if s.values else []
            origins = set()
            for value in values:
                origins |= self._expr(value, scope)
            if self.current_function:
                self._add(self.returns, self.current_function[-1], origins)
        elif isinstance(s, n.Call | n.Invoke):
            self._expr(s, scope)
        elif isinstance(s, n.Block):
            self._block(s, _Scope(id(s), scope))

    def _loop(self, body: Any, scope: _Scope) -> None:
        self.loop_depth += 1
        try:
            self._block(body, scope)
        finally:
            self.loop_depth -= 1

    def _nth(self, values: list[set[str]], i: int, nodes: list[Any] | None) -> set[str]:
        if i < len(values):
            return values[i]
        if nodes and isinstance(nodes[-1], n.Call | n.Invoke):  # multiple returns
            return values[-1]
        return {LITERAL}  # nil

    def _store_element(self, table: Any, origins: set[str], scope: _Scope) -> None:
        if isinstance(table, n.Name):
            self._assign(scope, table.id, {TABLE + o for o in origins})
        elif isinstance(table, n.Index):
            self._store_element(table.value, {TABLE + o for o in origins}, scope)

    def _iteration(self, iterators: list[Any], index: int, scope: _Scope) -> set[str]:
        first = iterators[0] if iterators else None
        if isinstance(first, n.Call) and _simple_name(first.func) in ("ipairs", "pairs"):
            table = self._expr(first.args[0], scope) if first.args else {UNKNOWN}
            if index == 0:
                return {NUMBER} if _simple_name(first.func) == "ipairs" else \
                    _elements(table) or {UNKNOWN}
            return _elements(table) or {UNKNOWN}
        origins: set[str] = set()
        for it in iterators:
            got = self._expr(it, scope)
            origins |= _elements(got) | {o for o in got if not o.startswith(TABLE)}
        return {DERIVED if o == ARGV else o for o in origins} | ({ARGV} if ARGV in origins
                                                                else set())

    def _function(self, f: Any, scope: _Scope) -> set[str]:
        inner = _Scope(id(f), scope)
        for i, arg in enumerate(f.args or []):
            if isinstance(arg, n.Name):
                self._declare(inner, arg.id, set(self.params.get((id(f), i), set())))
        self.current_function.append(id(f))
        outer_loop, self.loop_depth = self.loop_depth, 0
        try:
            self._block(f.body, inner)
        finally:
            self.current_function.pop()
            self.loop_depth = outer_loop
        return {FUNCTION}

    # --- expressions ------------------------------------------------------------------
    def _expr(self, e: Any, scope: _Scope) -> set[str]:
        if e is None:
            return {LITERAL}
        if isinstance(e, n.Name):
            return self._lookup(scope, e.id)  # empty: not known (yet)
        if isinstance(e, n.String):
            return {LITERAL}
        if isinstance(e, n.Number):
            return {NUMBER}
        if isinstance(e, n.Nil | n.TrueExpr | n.FalseExpr):
            return {LITERAL}
        if isinstance(e, n.Concat):
            self._expr(e.left, scope)
            self._expr(e.right, scope)
            return {CONCAT}
        if isinstance(e, n.Index):
            if _is_call_fn(e):
                return {CALLFN}
            base = self._expr(e.value, scope)
            self._expr(e.idx, scope)
            if REPLY in base:
                return {REPLY}
            if not base:
                return set()
            return _elements(base) or {UNKNOWN}
        if isinstance(e, n.Call):
            return self._call(e, scope)
        if isinstance(e, n.Invoke):
            self._expr(e.source, scope)
            for arg in e.args or []:
                self._expr(arg, scope)
            return {DERIVED}
        if isinstance(e, n.Table):
            origins: set[str] = {TABLE}
            for f in e.fields or []:
                value = self._expr(f.value, scope)
                if f.key is not None and not isinstance(f.key, n.Number):
                    self._expr(f.key, scope)
                origins |= {TABLE + o for o in value}
            return origins
        if isinstance(e, n.AnonymousFunction):
            return self._function(e, scope)
        if isinstance(e, n.OrLoOp | n.AndLoOp):
            return self._expr(e.left, scope) | self._expr(e.right, scope)
        for attr in ("left", "right", "operand"):  # arithmetic, comparison, not, #, -
            child = getattr(e, attr, None)
            if isinstance(child, n.Node):
                self._expr(child, scope)
        if isinstance(e, n.Varargs):
            return {UNKNOWN}
        return {NUMBER}

    def _call(self, call: n.Call, scope: _Scope) -> set[str]:
        func = call.func
        name = _dotted(func)
        args = call.args or []
        if _is_call_fn(func) or (isinstance(func, n.Name) and
                                 CALLFN in self._lookup(scope, func.id)):
            return self._redis_call(call, scope)
        if name in ("redis.register_function", "server.register_function"):
            self._register_function(args, scope)
            return {LITERAL}
        arg_origins = [self._expr(a, scope) for a in args]
        first = arg_origins[0] if arg_origins else {UNKNOWN}
        if name in ("unpack", "table.unpack"):
            return _elements(first) or {UNKNOWN}
        if name in ("tostring", "ipairs", "pairs", "next", "select"):
            return first
        if name in ("tonumber", "math.floor", "math.ceil", "math.max", "math.min", "#"):
            return {NUMBER}
        if name in ("cjson.decode", "cmsgpack.unpack"):
            return first | {TABLE + o for o in first}
        if name == "table.insert" and args:
            self._store_element(args[0], arg_origins[-1], scope)
            return {LITERAL}
        if name.startswith("string.") and name.split(".", 1)[1] in STRING_FUNCS:
            return {DERIVED}
        target = self._function_node(func, scope)
        if target is not None:
            for i, origins in enumerate(arg_origins):
                self._add(self.params, (id(target), i), origins)
            return set(self.returns.get(id(target), set()))
        return {UNKNOWN}

    def _function_node(self, func: Any, scope: _Scope) -> Any:
        if isinstance(func, n.Name):
            return self.functions.get((scope.owner(func.id), func.id))
        if isinstance(func, n.AnonymousFunction):
            return func
        return None

    def _register_function(self, args: list[Any], scope: _Scope) -> None:
        callback = None
        if len(args) >= 2:
            self._expr(args[0], scope)
            callback = args[1]
        elif args and isinstance(args[0], n.Table):
            for f in args[0].fields or []:
                if isinstance(f.key, n.Name) and f.key.id == "callback":
                    callback = f.value
        target = self._function_node(callback, scope) if callback is not None else None
        if target is not None:
            self._add(self.params, (id(target), 0), {TABLE + KEY})
            self._add(self.params, (id(target), 1), {TABLE + ARGV})
        if isinstance(callback, n.AnonymousFunction):
            self._function(callback, scope)

    def _redis_call(self, call: n.Call, scope: _Scope) -> set[str]:
        args = call.args or []
        origins = [self._expr(a, scope) for a in args]
        if not args:
            return {REPLY}
        command = args[0].s.decode("utf-8", "replace").lower() \
            if isinstance(args[0], n.String) else ""
        if self.final:
            if command:
                self.result.commands[command] = self.result.commands.get(command, 0) + 1
            else:
                self.result.dynamic_commands += 1
        rest, rest_nodes = origins[1:], args[1:]
        for position in _key_positions(command, rest_nodes):
            if position >= len(rest):
                continue
            node = rest_nodes[position]
            got = rest[position]
            if _spreads(node):
                got = got or {UNKNOWN}
            if self.final and isinstance(node, n.String):
                self.result.literal_keys.append(node.s.decode("utf-8", "replace"))
            self._judge_key(command or "(dynamic)", got, getattr(call, "line", None))
        return {REPLY}

    def _judge_key(self, command: str, origins: set[str], line: int | None) -> None:
        bad = sorted(o for o in origins if o != KEY) if origins else [UNKNOWN]
        if not bad or not self.final:
            return
        reasons = [REASONS.get(o, REASONS[UNKNOWN]) for o in bad
                   if o not in (CALLFN, FUNCTION) and not o.startswith(TABLE)] or \
            [REASONS[UNKNOWN]]
        reason = " and ".join(dict.fromkeys(reasons))
        if self.loop_depth:
            reason += ", in a loop"
        self.result.undeclared.append(KeyAccess(line, command, reason))


def _key_positions(command: str, rest: list[Any]) -> list[int]:
    count = len(rest)
    spread = next((i for i, node in enumerate(rest) if _spreads(node)), None)
    if command in NO_KEYS:
        return []
    if command in ALL_KEYS:
        return list(range(count))
    if command in PAIRS:
        return list(range(0, count, 2))
    if command in FIRST_TWO:
        return [0, 1]
    if command in ALL_BUT_LAST:
        return list(range(max(count - 1, 1)))
    if command in SUBCOMMAND_KEY:
        return [1]
    if command in NUMKEYS_AT:
        at = NUMKEYS_AT[command]
        store = [0] if command.endswith("store") else []
        numkeys = rest[at] if at < count else None
        if isinstance(numkeys, n.Number) and isinstance(numkeys.n, int):
            return store + list(range(at + 1, at + 1 + numkeys.n))
        return store + ([at + 1] if spread is None else [spread])
    if command == "bitop":
        return list(range(1, count))
    if command in ("xread", "xreadgroup"):
        streams = next((i for i, node in enumerate(rest) if isinstance(node, n.String)
                        and node.s.upper() == b"STREAMS"), None)
        if streams is None:
            return []
        names = count - streams - 1
        return list(range(streams + 1, streams + 1 + max(names // 2, 1)))
    return [0]


def _spreads(node: Any) -> bool:
    return isinstance(node, n.Call) and _dotted(node.func) in ("unpack", "table.unpack")


def _elements(origins: set[str]) -> set[str]:
    """Origins of a table's elements; the elements of a reply are reply too."""
    found = {o[len(TABLE):] for o in origins if o.startswith(TABLE) and len(o) > len(TABLE)}
    return found | ({REPLY} if REPLY in origins else set())


def _simple_name(e: Any) -> str:
    return e.id if isinstance(e, n.Name) else ""


def _dotted(e: Any) -> str:
    if isinstance(e, n.Name):
        return e.id
    if isinstance(e, n.Index) and isinstance(e.idx, n.Name) and \
            getattr(e, "notation", None) == n.IndexNotation.DOT:
        base = _dotted(e.value)
        return f"{base}.{e.idx.id}" if base else ""
    return ""


def _is_call_fn(e: Any) -> bool:
    name = _dotted(e)
    namespace, _, member = name.partition(".")
    return namespace in NAMESPACES and member in CALLERS
