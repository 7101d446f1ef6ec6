"""The command line: thin Typer commands over the library (the only place that imports Typer)."""
