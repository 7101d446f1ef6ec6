"""``sync --mode proxy``: a transcoding replication proxy. kvmigrate is a replica of the source
and the primary the target replicates from; the target loads the source's RDB itself, with
only what it cannot read changed (:mod:`.rewrite`, :mod:`.plan`), then follows the source's
translated command stream (:mod:`.forward`, :mod:`.primary`); :mod:`.engine` runs it."""
