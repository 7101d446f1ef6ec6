"""The console entry point: ``kvmigrate --version`` answers without loading the commands and
the engines behind them; everything else goes to :mod:`migrate.cli.main`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from migrate import __version__

        print(f"kvmigrate {__version__}")
        return
    from migrate.cli.main import main as run

    run()
