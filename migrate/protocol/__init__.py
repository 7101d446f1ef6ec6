"""The wire protocol: connections (:mod:`migrate.protocol.connect`, the only place a socket to
a server is opened), RESP encoding, a request/response connection (``rawconn``), the
pipelined writer, the ``$EOF:`` RDB receive, and the cluster client (``cluster/``)."""
