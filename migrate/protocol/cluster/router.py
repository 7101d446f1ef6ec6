"""Routing commands to the nodes of a Redis/Valkey cluster: a pipelined writer and a
verification connection that send each command to the primary serving its key's slot.

* :class:`ClusterWriter` has :class:`~migrate.protocol.pipeline.PipelineWriter`'s interface
  (``send``, ``send_encoded``, ``flush``, ``close``, ``stats``): one pipelined connection per
  primary, opened when a command first goes there. A command goes to the node of its first
  key's slot; keyless commands that change every node (FUNCTION, SCRIPT, FLUSHALL, FLUSHDB)
  go to every primary; ``SELECT 0`` and ``PING`` are dropped, ``SELECT n`` (n > 0) refused;
  a ``MULTI`` ... ``EXEC`` block goes whole to the node of its first key (one slot only).
  Replies ``-MOVED``/``-ASK``/``-TRYAGAIN`` are not errors: the commands are kept until
  answered, and :meth:`ClusterWriter.flush` (or the next ``send`` after one is seen) waits for
  every node, re-reads the topology and sends them again where they belong (``ASKING`` first
  for ``-ASK``), in the order they were first sent; once ``-TRYAGAIN`` is seen, each round
  is paused and the whole is bounded by ``RETRY_BUDGET_S`` rather than ``REDIRECT_ROUNDS``.
* :class:`RoutedConn` has :class:`~migrate.protocol.rawconn.RawConn`'s ``call``/``call_many``
  interface over a whole cluster (``DBSIZE`` summed, ``SCAN`` walking every primary,
  ``RANDOMKEY`` from a primary drawn in proportion to its ``DBSIZE``).
* :func:`connect` returns one or the other for an endpoint.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import hiredis
import redis

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError, KvmError, UsageError
from migrate.keyspec import command_keys
from migrate.protocol.cluster.slots import SLOTS, key_slot
from migrate.protocol.cluster.topology import Topology, discover, is_cluster
from migrate.protocol.connect import connect as open_connection
from migrate.protocol.outofmemory import TargetOutOfMemory, is_out_of_memory
from migrate.protocol.pipeline import PipelineStats
from migrate.protocol.rawconn import RawConn, Reply
from migrate.protocol.resp import Arg, encode_command, to_bytes
from migrate.protocol.sendbuffer import SendBuffer

REDIRECT_ROUNDS = 30  # resends of one command before its redirection counts as an error
RETRY_BUDGET_S = 120.0  # ... and how long -TRYAGAIN / -CLUSTERDOWN are retried (a migration)
RETRY_SLEEP_S = 0.05  # first pause before resending after -TRYAGAIN / -CLUSTERDOWN
MAX_RETRY_SLEEP_S = 1.0
SCRIPTS = {b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"}
BROADCAST = {b"FUNCTION", b"SCRIPT", b"FLUSHALL", b"FLUSHDB"}
# subcommand, then the key: XINFO STREAM key, MEMORY USAGE key, OBJECT ENCODING key ...
KEY_AFTER_SUBCOMMAND = {
    b"XINFO": {b"STREAM", b"GROUPS", b"CONSUMERS"},
    b"MEMORY": {b"USAGE"},
    b"OBJECT": {b"ENCODING", b"FREQ", b"IDLETIME", b"REFCOUNT"},
    b"DEBUG": {b"DIGEST-VALUE", b"OBJECT"},
}
KEYLESS = {
    b"PING", b"ECHO", b"SELECT", b"DBSIZE", b"RANDOMKEY", b"SCAN", b"INFO", b"MULTI", b"EXEC",
    b"DISCARD", b"ASKING", b"CLUSTER", b"CONFIG", b"CLIENT", b"COMMAND", b"AUTH", b"HELLO",
    b"TIME", b"WAIT", b"WAITAOF", b"LASTSAVE", b"SAVE", b"BGSAVE", b"BGREWRITEAOF",
    b"SWAPDB", b"REPLCONF", b"READONLY", b"READWRITE", b"ROLE", b"SLOWLOG", b"LATENCY",
    b"ACL", b"MODULE", b"QUIT", b"RESET", *BROADCAST,
}
ASKING = encode_command(("ASKING",))


def command_name(args: Sequence[Arg]) -> bytes:
    return to_bytes(args[0]).upper() if args else b""


def first_key(args: Sequence[Arg]) -> bytes | None:
    """The key a cluster routes ``args`` by (its first key), or None for a keyless command:
    from the servers' own key specifications (migrate/keyspec.py); the lists below serve
    commands those do not know (a module's, a newer server's)."""
    keys = command_keys(args)
    name = command_name(args)
    if keys:
        return keys[0]
    if keys is not None and name not in KEY_AFTER_SUBCOMMAND:  # DEBUG has no key specs
        return None
    if name in SCRIPTS:
        numkeys = to_bytes(args[2]) if len(args) > 3 else b"0"
        return to_bytes(args[3]) if numkeys.isdigit() and int(numkeys) > 0 else None
    if name in KEY_AFTER_SUBCOMMAND:
        sub = to_bytes(args[1]).upper() if len(args) > 2 else b""
        return to_bytes(args[2]) if sub in KEY_AFTER_SUBCOMMAND[name] else None
    if name in KEYLESS or len(args) < 2:
        return None
    return to_bytes(args[1])


def one_db_error(db: object) -> UsageError:
    return UsageError(f"a cluster has only database 0; cannot use database {db}",
                      "map the source's databases to 0 with --db-map SRC:0 (one at a time), "
                      "or migrate database 0 only")


@dataclass(frozen=True)
class Redirect:
    kind: str  # "MOVED", "ASK" or "RETRY" (-TRYAGAIN, -CLUSTERDOWN)
    slot: int | None
    address: str | None  # host:port of the node named by MOVED / ASK
    text: str


def parse_redirect(reply: object) -> Redirect | None:
    """A redirection or retry error reply as a :class:`Redirect`; None for anything else."""
    if not isinstance(reply, hiredis.ReplyError):
        return None
    text = str(reply)
    head, _, rest = text.partition(" ")
    if head in ("MOVED", "ASK"):
        slot, _, address = rest.strip().partition(" ")
        return Redirect(head, int(slot), address.strip(), text)
    if head in ("TRYAGAIN", "CLUSTERDOWN"):
        return Redirect("RETRY", None, None, text)
    return None


class SlotMap:
    """Which primary serves each slot, read with :func:`discover`; MOVED replies amend it."""

    def __init__(self, endpoint: Endpoint, topology: Topology | None = None):
        self.base = replace(endpoint, db=0)
        self.owner: list[str | None] = [None] * SLOTS
        self.endpoints: dict[str, Endpoint] = {}
        self.primaries: list[str] = []
        self.refreshes = 0
        self.load(topology if topology is not None else discover(self.base))

    def load(self, topology: Topology) -> None:
        owner: list[str | None] = [None] * SLOTS
        primaries = []
        for shard in topology.shards:
            address = shard.primary.endpoint.address
            self.endpoints[address] = shard.primary.endpoint
            primaries.append(address)
            for r in shard.slots:
                owner[r.start:r.end + 1] = [address] * len(r)
        if not primaries:
            raise KvmError(f"the cluster at {self.base.display()} has no primary",
                           "check CLUSTER SHARDS on its nodes")
        self.owner, self.primaries = owner, primaries

    def refresh(self) -> None:
        """Read the topology again, from the endpoint given or else from a known primary."""
        candidates = [self.base, *(self.endpoints[a] for a in self.primaries)]
        for endpoint in candidates:
            try:
                self.load(discover(endpoint))
            except (KvmError, redis.RedisError, OSError):
                continue
            self.refreshes += 1
            return
        raise ConnectError(f"cannot read the cluster's topology from {self.base.display()} "
                           "or any primary it had", "check that the cluster's nodes are up")

    def address(self, slot: int) -> str:
        address = self.owner[slot]
        if address is None:
            raise KvmError(f"no node of the cluster at {self.base.display()} serves slot {slot}",
                           "check cluster_state and slot coverage (CLUSTER SHARDS)")
        return address

    def address_of_key(self, key: bytes) -> str:
        return self.address(key_slot(key))

    def moved(self, slot: int, address: str) -> None:
        self.owner[slot] = self.learn(address)

    def learn(self, address: str) -> str:
        """Remember a node named by a redirection (same credentials as the others)."""
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        if not host or host == "?":
            host = self.base.host
        address = f"{host}:{port}"
        if address not in self.endpoints:
            self.endpoints[address] = replace(self.base, host=host, port=int(port))
        return address

    def endpoint(self, address: str) -> Endpoint:
        return self.endpoints[address]


# --- writing ----------------------------------------------------------------------------------

@dataclass
class ClusterStats(PipelineStats):
    moved: int = 0  # commands answered -MOVED and sent again to the slot's new owner
    asked: int = 0  # commands answered -ASK and sent again (after ASKING) to the named node
    retried: int = 0  # commands answered -TRYAGAIN or -CLUSTERDOWN and sent again
    refreshes: int = 0  # times the topology was read again
    nodes: int = 0  # primaries written to


@dataclass(frozen=True)
class _Unit:
    """What is sent, and resent, as one: a command, or a MULTI ... EXEC block."""

    body: bytes
    replies: int  # replies the body gets (a block: MULTI, one per command, EXEC)
    slot: int | None  # None: a node was chosen without a key; never redirected
    block: bool = False
    label: object = None  # what the caller calls it, to name a refused write


class _NodeLink:
    """A pipelined connection to one node that keeps each unacknowledged unit, so a unit
    answered with a redirection can be sent again. At most ``max_in_flight`` bytes are
    unacknowledged: a slow node slows the sender."""

    def __init__(self, endpoint: Endpoint, noticed: threading.Event, *,
                 max_in_flight: int, timeout: float):
        self.endpoint = endpoint
        self.replied = self.errors = 0
        self.first_errors: list[str] = []
        self.first_error_label: object = None
        self.redirects: list[tuple[_Unit, Redirect]] = []
        self._noticed = noticed
        self._cond = threading.Condition()
        self._pending: deque[tuple[_Unit, bool]] = deque()
        self._closed = False
        self._reader = hiredis.Reader()
        self._conn = open_connection(endpoint, db=0, timeout=timeout)
        self._sock = self._conn.duplex()
        self._out = SendBuffer(self._sock, endpoint, self._cond, max_in_flight)
        self._thread = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"kvm-cluster-{endpoint.port}")
        self._thread.start()

    def send(self, unit: _Unit, *, asking: bool = False) -> None:
        data = ASKING + unit.body if asking else unit.body
        with self._cond:
            self._pending.append((unit, asking))
        self._out.add(data)

    def push(self) -> None:
        """Write what is buffered (waiting while too much is unacknowledged)."""
        self._out.write()

    def wait(self) -> None:
        """Wait until every unit sent has its replies."""
        self._out.wait_until(lambda: not self._pending)

    def take_redirects(self) -> list[tuple[_Unit, Redirect]]:
        with self._cond:
            taken, self.redirects = self.redirects, []
        return taken

    def _read_loop(self) -> None:
        replies: list[Reply] = []
        try:
            while True:
                try:
                    chunk = self._sock.recv(1 << 20)
                except TimeoutError:
                    if self._pending:
                        raise
                    continue  # idle: nothing is owed
                if not chunk:
                    if not self._closed:
                        raise ConnectionError("server closed the connection")
                    return
                self._reader.feed(chunk)
                while (reply := self._reader.gets()) is not False:
                    replies.append(reply)
                    with self._cond:
                        unit, asking = self._pending[0]
                        if len(replies) < unit.replies + asking:
                            continue
                        self._pending.popleft()
                        self._out.acked(len(unit.body) + (len(ASKING) if asking else 0))
                        self._settle(unit, replies[1:] if asking else replies)
                        replies = []
                        self._cond.notify_all()
        except BaseException as exc:  # handed to the sending thread
            if not self._closed:
                self._out.fail(exc)

    def _settle(self, unit: _Unit, replies: list[Reply]) -> None:
        """Count a unit's replies, or keep it for resending (called holding the lock)."""
        redirect = next((r for r in map(parse_redirect, replies) if r is not None), None)
        if redirect is not None and unit.slot is not None:
            self.redirects.append((unit, redirect))
            self._noticed.set()
            return
        errors = [str(r) for r in replies if isinstance(r, hiredis.ReplyError)]
        if unit.block and isinstance(replies[-1], list):
            errors += [str(r) for r in replies[-1] if isinstance(r, hiredis.ReplyError)]
        self.replied += unit.replies
        if errors and not self.errors:
            self.first_error_label = unit.label
        oom = next((e for e in errors if is_out_of_memory(e)), None)
        if oom is not None:
            self._out.stop(TargetOutOfMemory(self.endpoint.display(), oom, unit.label))
        self.errors += len(errors)
        room = max(10 - len(self.first_errors), 0)
        self.first_errors.extend(errors[:room])

    def close(self) -> None:
        self._closed = True
        self._sock.close(reader=self._thread)


class ClusterWriter:
    """A pipelined writer into a cluster (see the module's docstring for the rules)."""

    def __init__(self, endpoint: Endpoint, *, db: int | None = None,
                 max_in_flight_bytes: int = 8 * 1024 * 1024, timeout: float = 60.0,
                 topology: Topology | None = None):
        target_db = endpoint.db if db is None else db
        if target_db:
            raise one_db_error(target_db)
        self.endpoint = endpoint
        self._slots = SlotMap(endpoint, topology)
        self._links: dict[str, _NodeLink] = {}
        self._noticed = threading.Event()
        self._max_in_flight = max_in_flight_bytes
        self._timeout = timeout
        self._block: list[tuple[Arg, ...]] | None = None
        self._sent = 0
        self._counts = ClusterStats()  # moved/asked/retried and errors given up on
        self._label: object = None  # the label of the command being sent

    # --- sending -----------------------------------------------------------------------------
    def keep_labels(self) -> None:
        """Labels are always kept (PipelineWriter's interface)."""

    def send(self, *args: Arg, label: object = None) -> None:
        self._label = label
        if self._block is not None:
            self._send_in_block(args)
        else:
            self._send_one(args)
        if self._noticed.is_set():
            self._settle_redirects()

    def send_encoded(self, data: bytes, commands: int,
                     labels: list[object] | None = None) -> None:
        """Send ``commands`` RESP-encoded commands (PipelineWriter's batch form): each is
        decoded and routed on its own."""
        reader = hiredis.Reader()
        reader.feed(data)
        for i in range(commands):
            args = reader.gets()
            if not isinstance(args, list):
                raise KvmError("send_encoded was given something other than RESP commands")
            self.send(*args, label=labels[i] if labels and i < len(labels) else None)

    def _send_one(self, args: Sequence[Arg]) -> None:
        name = command_name(args)
        if name == b"MULTI":
            self._block = []
        elif name == b"SELECT":
            self._select(args)
        elif name == b"PING":
            pass
        elif name in BROADCAST:
            data = encode_command(args)
            for address in self._slots.primaries:
                self._dispatch(_Unit(data, 1, None), address)
        else:
            key = first_key(args)
            slot = None if key is None else key_slot(key)
            address = self._slots.primaries[0] if slot is None else self._slots.address(slot)
            self._dispatch(_Unit(encode_command(args), 1, slot, label=self._label), address)

    @staticmethod
    def _select(args: Sequence[Arg]) -> None:
        db = to_bytes(args[1]) if len(args) > 1 else b"?"
        if db != b"0":
            raise one_db_error(db.decode(errors="replace"))

    def _send_in_block(self, args: Sequence[Arg]) -> None:
        assert self._block is not None
        name = command_name(args)
        if name == b"EXEC":
            block, self._block = self._block, None
            self._send_block(block)
        elif name == b"DISCARD":
            self._block = None
        elif name == b"SELECT":
            self._select(args)
        elif name not in (b"PING", b"MULTI"):
            self._block.append(tuple(args))

    def _send_block(self, block: list[tuple[Arg, ...]]) -> None:
        keys = [k for k in map(first_key, block) if k is not None]
        if not keys:  # nothing to pin the block to a node: its commands go on their own
            for args in block:
                self._send_one(args)
            return
        slots = {key_slot(k) for k in keys}
        if len(slots) > 1:
            shown = ", ".join(k.decode(errors="replace") for k in list(dict.fromkeys(keys))[:6])
            raise KvmError(f"a MULTI/EXEC block writes keys of {len(slots)} hash slots "
                           f"({shown}); a cluster runs a transaction within one slot",
                           "give the keys of one transaction a common {hash tag} on the "
                           "source, or copy without transactions")
        body = b"".join([encode_command(("MULTI",)), *map(encode_command, block),
                         encode_command(("EXEC",))])
        slot = slots.pop()
        self._dispatch(_Unit(body, len(block) + 2, slot, block=True, label=self._label),
                       self._slots.address(slot))

    def _dispatch(self, unit: _Unit, address: str) -> None:
        self._link(address).send(unit)
        self._sent += unit.replies

    def _link(self, address: str) -> _NodeLink:
        link = self._links.get(address)
        if link is None:
            link = _NodeLink(self._slots.endpoint(address), self._noticed,
                             max_in_flight=self._max_in_flight, timeout=self._timeout)
            self._links[address] = link
        return link

    # --- redirections ------------------------------------------------------------------------
    def _drain(self) -> list[tuple[_Unit, Redirect]]:
        """Wait for every node's replies; the units redirected, in the order sent per node."""
        links = list(self._links.values())
        for link in links:
            link.push()
        for link in links:
            link.wait()
        self._noticed.clear()
        return [r for link in links for r in link.take_redirects()]

    def _settle_redirects(self) -> None:
        """Send redirected units again until none is left. Every node is drained first, so a
        unit resent never overtakes a later write of its slot."""
        deadline = time.monotonic() + RETRY_BUDGET_S
        attempt = 0
        retrying = False
        while redirects := self._drain():
            # once -TRYAGAIN is seen, the slot is being migrated: a block whose keys are split
            # between its two nodes goes -ASK -> -TRYAGAIN until the rest of its keys moved,
            # so its -ASK rounds are retries too (backed off, within the time budget)
            retrying = retrying or any(r.kind == "RETRY" for _, r in redirects)
            if attempt >= REDIRECT_ROUNDS and (not retrying or time.monotonic() > deadline):
                self._give_up(redirects)
                return
            self._resend(redirects, attempt, retrying)
            attempt += 1

    def _resend(self, redirects: list[tuple[_Unit, Redirect]], attempt: int,
                retrying: bool) -> None:
        kinds = {r.kind for _, r in redirects}
        if kinds & {"MOVED", "RETRY"}:
            self._slots.refresh()
        for _, r in redirects:  # a MOVED reply is newer than any node's topology
            if r.kind == "MOVED" and r.slot is not None and r.address:
                self._slots.moved(r.slot, r.address)
        if retrying:
            time.sleep(min(RETRY_SLEEP_S * 2 ** min(attempt, 5), MAX_RETRY_SLEEP_S))
        for unit, r in redirects:
            assert unit.slot is not None
            if r.kind == "ASK" and r.address:
                self._counts.asked += 1
                self._link(self._slots.learn(r.address)).send(unit, asking=True)
                continue
            if r.kind == "MOVED":
                self._counts.moved += 1
            else:
                self._counts.retried += 1
            self._link(self._slots.address(unit.slot)).send(unit)

    def _give_up(self, redirects: list[tuple[_Unit, Redirect]]) -> None:
        counts = self._counts
        for unit, r in redirects:
            counts.replied += unit.replies
            counts.errors += 1
            if len(counts.first_errors) < 10:
                counts.first_errors.append(f"still redirected after {REDIRECT_ROUNDS} "
                                           f"resends or {RETRY_BUDGET_S:.0f} s: {r.text}")

    # --- PipelineWriter's interface ----------------------------------------------------------
    @property
    def stats(self) -> ClusterStats:
        """Counts merged over the nodes (a fresh object on each read)."""
        c = self._counts
        links = list(self._links.values())
        first = [e for link in links for e in link.first_errors] + c.first_errors
        label = next((link.first_error_label for link in links if link.errors), None)
        return ClusterStats(sent=self._sent,
                            replied=c.replied + sum(link.replied for link in links),
                            errors=c.errors + sum(link.errors for link in links),
                            first_errors=first[:10], first_error_label=label,
                            moved=c.moved, asked=c.asked,
                            retried=c.retried, refreshes=self._slots.refreshes,
                            nodes=len(links))

    def flush(self) -> ClusterStats:
        """Send what is buffered, wait for every reply and resend what was redirected."""
        self._settle_redirects()
        stats = self.stats
        if stats.first_errors and \
                stats.first_errors[0].startswith(("NOAUTH", "WRONGPASS", "invalid pass")):
            raise ConnectError(f"cannot authenticate to the cluster at "
                               f"{self.endpoint.display()}: {stats.first_errors[0]}")
        return stats

    def close(self) -> None:
        for link in self._links.values():
            link.close()

    def __enter__(self) -> ClusterWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading ----------------------------------------------------------------------------------

class RoutedConn:
    """RawConn's ``call``/``call_many``/``select`` over a cluster. Keyed commands go to the
    primary of their first key's slot (one pipelined batch per node, replies put back in
    order; MOVED and ASK followed); ``DBSIZE`` is the sum over the primaries; ``SCAN`` walks
    the primaries one after another (the cursor returned is ``node cursor * primaries + node
    index``, ``0`` after the last node); ``RANDOMKEY`` asks a primary drawn with a weight of
    its ``DBSIZE``; other keyless commands go to the first primary."""

    def __init__(self, endpoint: Endpoint, *, db: int = 0, timeout: float = 60.0,
                 topology: Topology | None = None):
        self.endpoint = endpoint
        self.db = 0
        self.select(db)
        self._timeout = timeout
        self._slots = SlotMap(endpoint, topology)
        self._scan_nodes = list(self._slots.primaries)  # fixed: SCAN cursors index it
        self._conns: dict[str, RawConn] = {}
        self._random = random.Random()

    def select(self, db: int) -> None:
        if db != 0:
            raise one_db_error(db)

    def _conn(self, address: str) -> RawConn:
        conn = self._conns.get(address)
        if conn is None:
            conn = RawConn(self._slots.endpoint(address), timeout=self._timeout)
            self._conns[address] = conn
        return conn

    def call(self, *args: Arg) -> Reply:
        return self.call_many([args])[0]

    def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        replies: list[Reply] = [None] * len(commands)
        groups: dict[tuple[str, bool], list[int]] = {}
        randoms: list[int] = []
        for i, args in enumerate(commands):
            name = command_name(args)
            if name == b"DBSIZE":
                replies[i] = sum(self._dbsizes().values())
            elif name == b"SCAN":
                replies[i] = self._scan(args)
            elif name == b"SELECT":
                self.select(int(to_bytes(args[1])))
                replies[i] = b"OK"
            elif name == b"RANDOMKEY":
                randoms.append(i)
            else:
                key = first_key(args)
                address = self._slots.primaries[0] if key is None else \
                    self._slots.address_of_key(key)
                groups.setdefault((address, False), []).append(i)
        self._draw_random_nodes(randoms, groups)
        self._run(commands, groups, replies)
        return replies

    def _draw_random_nodes(self, indices: list[int],
                           groups: dict[tuple[str, bool], list[int]]) -> None:
        if not indices:
            return
        sizes = self._dbsizes()
        if not any(sizes.values()):
            return  # an empty cluster: RANDOMKEY's reply is nil (None)
        nodes, weights = list(sizes), list(sizes.values())
        for i in indices:
            address = self._random.choices(nodes, weights)[0]
            groups.setdefault((address, False), []).append(i)

    def _run(self, commands: Sequence[Sequence[Arg]], groups: dict[tuple[str, bool], list[int]],
             replies: list[Reply]) -> None:
        """Send each group to its node; follow MOVED and ASK replies until none is left."""
        for _ in range(REDIRECT_ROUNDS):
            redirected: list[tuple[int, Redirect]] = []
            for (address, asking), indices in groups.items():
                batch = [commands[i] for i in indices]
                if asking:
                    batch = [c for cmd in batch for c in (("ASKING",), cmd)]
                out = self._conn(address).call_many(batch)
                for i, reply in zip(indices, out[1::2] if asking else out, strict=True):
                    replies[i] = reply
                    redirect = parse_redirect(reply)
                    if redirect is not None and first_key(commands[i]) is not None:
                        redirected.append((i, redirect))
            if not redirected:
                return
            groups = self._regroup(commands, redirected)

    def _regroup(self, commands: Sequence[Sequence[Arg]],
                 redirected: list[tuple[int, Redirect]]) -> dict[tuple[str, bool], list[int]]:
        kinds = {r.kind for _, r in redirected}
        if kinds & {"MOVED", "RETRY"}:
            self._slots.refresh()
        for _, r in redirected:
            if r.kind == "MOVED" and r.slot is not None and r.address:
                self._slots.moved(r.slot, r.address)
        if "RETRY" in kinds:
            time.sleep(RETRY_SLEEP_S)
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, r in redirected:
            if r.kind == "ASK" and r.address:
                groups.setdefault((self._slots.learn(r.address), True), []).append(i)
            else:
                key = first_key(commands[i])
                assert key is not None
                groups.setdefault((self._slots.address_of_key(key), False), []).append(i)
        return groups

    def _dbsizes(self) -> dict[str, int]:
        return {a: int(self._conn(a).call("DBSIZE")) for a in self._slots.primaries}

    def keyspace(self) -> dict[int, int]:
        """INFO keyspace's shape for the whole cluster: {0: keys}, or {} when empty."""
        total = sum(self._dbsizes().values())
        return {0: total} if total else {}

    def _scan(self, args: Sequence[Arg]) -> Reply:
        nodes = len(self._scan_nodes)
        cursor = int(to_bytes(args[1])) if len(args) > 1 else 0
        index, node_cursor = cursor % nodes, cursor // nodes
        reply = self._conn(self._scan_nodes[index]).call("SCAN", node_cursor, *args[2:])
        if isinstance(reply, hiredis.ReplyError):
            return reply
        next_cursor, keys = int(reply[0]), reply[1]
        if next_cursor == 0:
            index += 1
            combined = 0 if index >= nodes else index
        else:
            combined = next_cursor * nodes + index
        return [b"%d" % combined, keys]

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def __enter__(self) -> RoutedConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Conn = RawConn | RoutedConn


def connect(endpoint: Endpoint, cluster: bool | None = None, *, db: int = 0,
            timeout: float = 60.0) -> Conn:
    """A :class:`RoutedConn` for a cluster node, a :class:`RawConn` otherwise; ``cluster``
    None asks the server (``INFO cluster``)."""
    if cluster is None:
        client = endpoint.client()
        try:
            cluster = is_cluster(client)
        finally:
            client.close()
    if cluster:
        return RoutedConn(endpoint, db=db, timeout=timeout)
    return RawConn(endpoint, db=db, timeout=timeout)

