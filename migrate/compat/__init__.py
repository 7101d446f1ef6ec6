"""Compatibility knowledge shared by preflight, copy and sync, each fact with its source."""
