"""The lab: real Redis and Valkey servers provisioned from Debian's archive and run locally.

Used by the test suite, ``make demo`` and operators who rehearse a migration.
"""
