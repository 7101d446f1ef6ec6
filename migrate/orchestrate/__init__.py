"""Running a migration as a script of phases: the ledger (progress report and resume point)."""
