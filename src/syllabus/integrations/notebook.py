"""``%load_ext syllabus``: runs started in a notebook checkpoint it.

Loading the extension in a Jupyter (or IPython) kernel

- finds the notebook the kernel runs (JupyterLab's and VS Code's ``__session__`` and
  ``__vsc_ipynb_file__``, the ``JPY_SESSION_NAME`` variable), or takes it from
  ``%syllabus_notebook PATH`` where the front end does not say (classic Notebook, nbclient);
- makes it the entry point code capture sees (it sets ``__session__`` in the kernel's
  namespace when the front end did not), so every ``syllabus.start_run()`` in the notebook
  records the notebook as its entry point and checkpoints it, linked to the run;
- adds ``%syllabus_checkpoint [-m MESSAGE]`` to checkpoint the notebook by hand.

A checkpoint reads the notebook file: what the front end last saved. Save before starting
a run to have the latest cells in it.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any

__all__ = [
    "current_notebook",
    "load_ipython_extension",
    "set_notebook",
    "unload_ipython_extension",
]

log = logging.getLogger("syllabus")

_SESSION = "__session__"
_SET_BY_US = "_syllabus_set_session"


def current_notebook(shell: Any) -> Path | None:
    """The notebook ``shell`` runs, when known (an absolute path)."""
    ns = getattr(shell, "user_ns", {})
    for name in ("__vsc_ipynb_file__", _SESSION):
        value = ns.get(name)
        if isinstance(value, str) and value.endswith(".ipynb"):
            return _absolute(value)
    env = os.environ.get("JPY_SESSION_NAME", "")
    if env.endswith(".ipynb"):
        return _absolute(env)
    return None


def _absolute(path: str) -> Path:
    return Path(path).expanduser().resolve()


def set_notebook(shell: Any, path: str | Path) -> Path:
    """Tell code capture that ``shell`` runs the notebook at ``path``."""
    from syllabus.errors import InvalidArgumentError

    full = _absolute(str(path))
    if full.suffix != ".ipynb":
        raise InvalidArgumentError(f"{path} is not a notebook (.ipynb)")
    shell.user_ns[_SESSION] = str(full)
    shell.user_ns[_SET_BY_US] = True
    return full


def load_ipython_extension(shell: Any) -> None:
    """Called by ``%load_ext syllabus``."""
    notebook = current_notebook(shell)
    if notebook is not None and not isinstance(shell.user_ns.get(_SESSION), str):
        set_notebook(shell, notebook)  # JPY_SESSION_NAME only: make it the namespace's too
    _register_magics(shell)
    if notebook is None:
        log.warning(
            "syllabus: this kernel does not say which notebook it runs; name it with "
            "%%syllabus_notebook PATH.ipynb so runs checkpoint it"
        )
    else:
        log.info("syllabus: runs started here checkpoint %s", notebook)


def unload_ipython_extension(shell: Any) -> None:
    """Called by ``%unload_ext syllabus``: forget a notebook path this extension set."""
    if shell.user_ns.pop(_SET_BY_US, False):
        shell.user_ns.pop(_SESSION, None)


def _register_magics(shell: Any) -> None:
    def syllabus_notebook(line: str) -> str | None:
        """%syllabus_notebook [PATH]: set (or show) the notebook runs checkpoint."""
        if line.strip():
            return str(set_notebook(shell, line.strip()))
        found = current_notebook(shell)
        return str(found) if found else None

    def syllabus_checkpoint(line: str) -> str:
        """%syllabus_checkpoint [-m MESSAGE]: checkpoint this notebook now."""
        from syllabus.errors import InvalidArgumentError
        from syllabus.fluent import get_client

        args = shlex.split(line)
        message = ""
        if args[:1] in (["-m"], ["--message"]) and len(args) == 2:
            message = args[1]
        elif args:
            raise InvalidArgumentError("usage: %syllabus_checkpoint [-m MESSAGE]")
        notebook = current_notebook(shell)
        if notebook is None:
            raise InvalidArgumentError(
                "which notebook is this? name it first with %syllabus_notebook PATH.ipynb"
            )
        checkpoint, created = get_client().checkpoint_notebook(notebook, message=message)
        return checkpoint.ref + ("" if created else " (unchanged)")

    shell.register_magic_function(syllabus_notebook, "line", "syllabus_notebook")
    shell.register_magic_function(syllabus_checkpoint, "line", "syllabus_checkpoint")
