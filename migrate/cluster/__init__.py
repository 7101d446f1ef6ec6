"""Redis Cluster and Valkey cluster: which nodes hold which hash slots, and which slot a key
belongs to."""
