"""A client for a Redis/Valkey cluster: which nodes hold which hash slots (``topology``), which
slot a key belongs to (``slots``), and commands routed to the node serving their key's slot
(``router``). Below verification and the cluster sync, which both read and write through it."""
