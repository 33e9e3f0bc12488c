"""The code part of a step's cache key: what counts as "the step's code".

:func:`code_digest` hashes, with BLAKE3:

- the source of the step function (as on disk now, the file a worker will import);
- every function and class the step uses by global name or closure, when it is defined in
  the user's code (the step's own module, or any module whose file lies outside the Python
  installation and ``site-packages``), recursively: the helper a step calls is part of
  the step; a module of the user's code the step uses by name (``helpers.clean(...)``)
  counts with its whole source;
- the value (``repr``) of every module-level constant of a plain type (numbers, text,
  bytes, booleans, None and tuples, lists, dicts, sets of those) the step or those helpers
  read;
- for anything else it uses from an installed package (``np.mean``, ``sklearn``), only its
  name and the package's version: upgrading scikit-learn re-runs the steps that use it,
  editing a comment inside scikit-learn does not.

Not counted: functions reached through attributes of objects at run time, files the step
reads (declare them as dataset inputs), environment variables, and the time of day. A step
that should always run is declared ``@step(cache=False)``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import linecache
import sys
import sysconfig
import types
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Final

import blake3

__all__ = ["code_digest"]

_PLAIN: Final = (int, float, complex, str, bytes, bool, type(None))


@cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(sys.prefix)
    roots.add(sys.base_prefix)
    return tuple(str(Path(r).resolve()) for r in roots if r)


def _is_user_module(module: types.ModuleType | None) -> bool:
    if module is None:
        return False
    name = module.__name__
    if name.startswith("syllabus.") or name == "syllabus":
        return False
    file = getattr(module, "__file__", None)
    if not file:
        return name in ("__main__", "__mp_main__")
    resolved = str(Path(file).resolve())
    return not any(
        resolved.startswith(root + "/")
        or "site-packages" in resolved
        or "dist-packages" in resolved
        for root in _library_roots()
    )


def _plain(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if depth > 3:
        return False
    if isinstance(value, (tuple, list, frozenset, set)):
        return len(value) <= 10_000 and all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return len(value) <= 10_000 and all(
            _plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items()
        )
    return False


def _package_version(obj: Any) -> str:
    module_name = getattr(obj, "__module__", None) or getattr(obj, "__name__", "") or ""
    top = module_name.split(".")[0]
    if not top:
        return ""
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        module = sys.modules.get(top)
        return str(getattr(module, "__version__", ""))


def _source(obj: Any) -> str:
    try:
        file = inspect.getsourcefile(obj)
        if file:
            linecache.checkcache(file)  # the file as it is now, not as first imported
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return repr(code.co_code) if code is not None else repr(obj)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


class _Hasher:
    def __init__(self) -> None:
        self.h = blake3.blake3()
        self.seen: set[int] = set()

    def add(self, label: str, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        self.h.update(f"{label}:{len(data)}:".encode())
        self.h.update(data)

    def obj(self, name: str, obj: Any) -> None:
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        inner = getattr(obj, "fn", None)  # a Step wraps its function
        if inner is not None and callable(inner) and hasattr(inner, "__code__"):
            obj = inner
        if isinstance(obj, types.ModuleType):
            if _is_user_module(obj) and getattr(obj, "__file__", None):
                self.add("module-source", f"{name}={obj.__name__}\n{_source(obj)}")
            else:
                self.add("module", f"{name}={obj.__name__}@{_package_version(obj)}")
            return
        if _plain(obj):
            self.add("const", f"{name}={obj!r}")
            return
        module = inspect.getmodule(obj)
        if isinstance(obj, (types.FunctionType, type)) and _is_user_module(module):
            self.add("source", f"{name}\n{_source(obj)}")
            if isinstance(obj, types.FunctionType):
                self.function_refs(obj)
            else:
                for value in vars(obj).values():
                    if isinstance(value, (types.FunctionType, staticmethod, classmethod)):
                        fn = getattr(value, "__func__", value)
                        if isinstance(fn, types.FunctionType):
                            self.function_refs(fn)
            return
        qual = getattr(obj, "__qualname__", None) or type(obj).__qualname__
        mod = getattr(obj, "__module__", None) or type(obj).__module__
        self.add("ref", f"{name}={mod}.{qual}@{_package_version(obj)}")

    def function_refs(self, fn: types.FunctionType) -> None:
        globals_ = fn.__globals__
        for n in sorted(_names(fn.__code__)):
            if n in globals_:
                self.obj(n, globals_[n])
        if fn.__closure__:
            for n, cell in zip(fn.__code__.co_freevars, fn.__closure__, strict=False):
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                self.obj(n, value)


def code_digest(fn: Callable[..., Any]) -> str:
    """The BLAKE3 hex digest of a step function's code as described in the module."""
    hasher = _Hasher()
    target = getattr(fn, "fn", fn)
    if isinstance(target, types.FunctionType):
        hasher.seen.add(id(target))
        hasher.add("step", f"{target.__qualname__}\n{_source(target)}")
        hasher.function_refs(target)
    else:
        hasher.obj("step", target)
    return hasher.h.hexdigest()
