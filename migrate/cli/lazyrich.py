"""Rich's Markdown and Traceback, imported only when used.

Typer's help renderer (``typer.rich_utils``) imports ``rich.markdown`` (markdown-it, about
0.1 s) and ``rich.traceback`` (Pygments) at its top, and uses them only for Markdown help
text, which kvmigrate does not write, and for pretty tracebacks, which it turns off. Before
that module is imported, :func:`defer` puts stand-ins for the two classes in its way: each
imports the real module the first time it is called or looked into.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


def defer() -> None:
    """Stand-ins for the modules of :data:`DEFERRED` not imported yet."""
    for module_name, class_name in DEFERRED.items():
        if module_name not in sys.modules:
            sys.modules[module_name] = _stand_in(module_name, class_name)


def _stand_in(module_name: str, class_name: str) -> types.ModuleType:
    stub = types.ModuleType(module_name)

    def real_module() -> types.ModuleType:
        if sys.modules.get(module_name) is stub:
            del sys.modules[module_name]
        return importlib.import_module(module_name)

    def real() -> Any:
        return getattr(real_module(), class_name)

    class _Meta(type):
        def __getattr__(cls, name: str) -> Any:
            return getattr(real(), name)

        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real())

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        return real()(*args, **kwargs)

    def module_getattr(name: str) -> Any:
        if name.startswith("__"):  # the import system asking (``__path__`` ...)
            raise AttributeError(name)
        return getattr(real_module(), name)

    setattr(stub, class_name, _Meta(class_name, (), {"__new__": __new__}))
    stub.__dict__["__getattr__"] = module_getattr
    return stub
