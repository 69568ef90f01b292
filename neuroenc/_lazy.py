"""Lazy export maps for the analysis packages.

Packages list their public names and the submodule defining each; a name is
imported on first access, so importing a package costs nothing until it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``name -> submodule``.

    Parameters
    ----------
    package : str
        Dotted package name, e.g. ``"neuroenc.rsa"``.
    exports : mapping of str to str
        Public name to the submodule (relative to ``package``) that defines it.
    namespace : dict
        The package's ``globals()``; a name is cached there once imported.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return sorted(exports), __getattr__, __dir__
