"""A run's ``--state DIR``: every file it holds (:mod:`migrate.state.paths`), the ledger
(progress report and resume point, :mod:`migrate.state.ledger`), and the private-file rules
(0700 folders, 0600 files: a state folder holds customer data)."""
