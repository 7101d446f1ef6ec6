"""The preflight framework: the check base class and registry, the target profile read from
the catalogue's data, the runner and the JSON / Markdown renderers. The checks themselves
live in the top-level :mod:`checks` package."""
