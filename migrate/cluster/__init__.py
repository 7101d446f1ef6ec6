"""The cluster sync: one reader per source primary (replica or scan mode), writing through
one target (a single node, or a cluster written by slot: :mod:`migrate.protocol.cluster`)."""
