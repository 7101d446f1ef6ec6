"""kvmigrate's own streaming RDB reader (docs/decisions/0001-own-rdb-reader.md).

Reader API (stable; live sync's replica mode builds on it)
----------------------------------------------------------
::

    from migrate.rdb import RdbReader, Entry, Aux, Function, End, RdbFormatError

    with open("dump.rdb", "rb") as fh:              # or sock.makefile("rb"), a pipe, ...
        reader = RdbReader(fh)                      # reads and checks the header now
        reader.producer                             # Producer(magic, rdb_version, flavor,
                                                    #   server_version): complete once the
                                                    #   AUX records have been read
        for rec in reader.records():                # alias: reader.entries()
            if isinstance(rec, Entry): ...          # a key, or one chunk of a big key
            elif isinstance(rec, Aux): ...          # AUX field (name, value: bytes)
            elif isinstance(rec, End): ...          # last record; CRC64 already verified

``RdbReader(stream, *, raw_limit=8 MiB, chunk_elements=10_000, chunk_bytes=4 MiB,
limit=None, keep_raw=True)``

* ``stream``: any binary object with ``read`` (``read1`` is used when present, so a socket
  file never blocks waiting for bytes beyond what the RDB needs). Forward only, no seek;
  memory is bounded by the chunk bounds and ``raw_limit``, never by the file size.
* ``limit``: read at most this many bytes from ``stream`` (the ``$<len>`` of a replication
  payload). For an EOF-marked diskless payload (``$EOF:<40 bytes>``) pass no limit and,
  after :class:`End`, take ``reader.unconsumed()``: the bytes already buffered past the RDB's
  end (the 40-byte marker, then the start of the command stream).
* Records, in file order: :class:`Aux`, :class:`SelectDb`, :class:`ResizeDb`,
  :class:`SlotInfo`, :class:`SlotImport` (Valkey 9: an atomic slot migration the node
  was importing), :class:`Function` (opcode 245, ``code`` for FUNCTION LOAD),
  :class:`ModuleAux`, :class:`Entry`, and finally :class:`End`.
* :class:`Entry` fields: ``db, key, type_code, kind`` (string/list/set/zset/hash/stream/
  module), ``encoding``, ``value``, ``expire_ms`` (absolute unix ms or None),
  ``field_expires`` ({field: unix ms} for hashes with field TTLs), ``idle_s``, ``freq``,
  ``raw`` (type byte + serialized value, for a DUMP payload: :func:`make_payload`; only when
  the key came in one piece and is <= ``raw_limit``), ``part`` / ``final`` (a big key comes
  as several Entries with part 0, 1, ... and ``final`` True on the last; ``raw`` is then
  None; ``expire_ms`` is on every part), ``offset`` (byte of the key's record), ``size``
  (serialized bytes, on the final part), ``elements`` (in this part).
  Value per kind: string bytes (pieces to append for a chunked one); list / set
  ``list[bytes]``; zset ``list[(member, score)]``; hash ``list[(field, value)]``; stream
  :class:`StreamValue` (entries per chunk; length, ids, groups with pending entries and
  consumers on the final chunk); module :class:`ModuleValue` (name, encver; opaque: ``raw``).
  Empty collections (which Redis skips on load) come with ``elements == 0`` and ``empty``.
* Errors: anything malformed raises :class:`RdbFormatError` (a UsageError, exit 2) with the
  byte ``offset`` and a reason: wrong magic, unsupported version, unknown type or opcode,
  corrupt container, truncated input, bad checksum. Nothing is skipped silently.
* Producer: decided by the header magic, the version and the ``redis-ver`` / ``valkey-ver``
  AUX fields, so type 22 is read as Valkey 9's field-TTL hash under ``VALKEY08x`` and as
  Redis 7.4's pre-GA metadata hash under ``REDIS0012``.

Other entry points: :func:`make_payload` / :func:`split_payload` (DUMP footer),
:func:`crc64` (Jones), :func:`read_file` (records of a path).
"""

from migrate.rdb.crc64 import crc64
from migrate.rdb.dump import make_payload, split_payload
from migrate.rdb.errors import RdbFormatError
from migrate.rdb.reader import RdbReader, read_file
from migrate.rdb.records import (
                                 Aux,
                                 End,
                                 Entry,
                                 Function,
                                 ModuleAux,
                                 ModuleValue,
                                 Producer,
                                 Record,
                                 ResizeDb,
                                 SelectDb,
                                 SlotImport,
                                 SlotInfo,
                                 StreamConsumer,
                                 StreamGroup,
                                 StreamPending,
                                 StreamValue,
)

__all__ = [
    "Aux", "End", "Entry", "Function", "ModuleAux", "ModuleValue", "Producer", "RdbFormatError",
    "RdbReader", "Record", "ResizeDb", "SelectDb", "SlotImport", "SlotInfo", "StreamConsumer",
    "StreamGroup", "StreamPending", "StreamValue", "crc64", "make_payload", "read_file",
    "split_payload",
]
