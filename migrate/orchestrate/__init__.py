"""Running a migration as a script of phases: a sync run (mode choice, then prepare, start,
catch-up, verify, follow: :mod:`migrate.orchestrate.sync_run`) and the playbooks."""
