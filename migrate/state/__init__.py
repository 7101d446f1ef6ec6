"""A run's ``--state DIR``: every file it holds (:mod:`migrate.state.paths`), the ledger
(progress report and resume point, :mod:`migrate.state.ledger`), the private-file rules
(0700 folders, 0600 files: a state folder holds customer data), and the one place a running
sync and a cut-over or rollback talk (:mod:`migrate.state.coordination`)."""
