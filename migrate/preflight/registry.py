"""Load the catalogue: import every module of the :mod:`checks` package (one check each)."""

from __future__ import annotations

import importlib
import pkgutil

from migrate.preflight.base import CATALOGUE_PACKAGE, REGISTRY, Check


def load_catalogue() -> list[type[Check]]:
    """Every registered check, sorted by id."""
    package = importlib.import_module(CATALOGUE_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{CATALOGUE_PACKAGE}.{module.name}")
    return [REGISTRY[i] for i in sorted(REGISTRY)
            if REGISTRY[i].__module__.startswith(f"{CATALOGUE_PACKAGE}.")]
