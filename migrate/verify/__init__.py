"""Verification: compare a target with its source per type, in samples or full walks with
bounded memory, re-checking suspects after the lag window (see docs/sync.md)."""
