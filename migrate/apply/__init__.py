"""Turning reader entries into what a target accepts (copy, and live sync's replica mode).

API::

    from migrate.apply.target import Target            # what a target can take
    from migrate.apply.commands import CommandBuilder, ApplyOptions, ApplyStats
    from migrate.apply.writer import TargetWriter      # pipelined writes to a live server
    from migrate.apply.rdbfile import RdbFileWriter    # an RDB file for a target version

    target = Target(identify(client.info("server")))   # or Target.named("valkey", "9.1.2")
    builder = CommandBuilder(target, reader.producer.magic, ApplyOptions(replace=True))
    for cmd in builder.commands(entry): ...            # tuples of args, no I/O

* ``CommandBuilder.commands(entry)``: RESTORE ... ABSTTL [REPLACE] when the target reads the
  encoding (:meth:`Target.restores`), else bounded typed commands (``max_elements`` /
  ``max_bytes`` per command), the key's TTL as PEXPIREAT on its final part. Expired keys,
  expired hash fields and empty collections are skipped and counted in ``builder.stats``;
  keys the target cannot hold (field TTLs on Valkey 8, module values without a payload) are
  counted in ``stats.failed`` by reason. ``ApplyOptions(replace=True)`` overwrites existing
  keys (DEL before the first part, RESTORE REPLACE): what a replica needs.
* ``TargetWriter(endpoint, target, magic, options, db_map)``: ``write(entry)``,
  ``load_function(function)``, ``finish()`` (waits for every reply; command errors counted).
* :mod:`migrate.apply.fit`: what a target cannot take from an RDB, as Findings.
* :mod:`migrate.apply.copy`: the ``kvmigrate copy`` job; :mod:`migrate.apply.snapshot`
  (SYNC snapshot of a live server), :mod:`migrate.apply.viassh` (BGSAVE + SFTP).
"""
