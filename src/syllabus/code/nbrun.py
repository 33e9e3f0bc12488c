"""Run a notebook's code cells in order, headless: ``python -m syllabus.code.nbrun NB.ipynb``.

``syllabus reproduce`` uses it to re-run a run that was started from a notebook. With
IPython installed the cells run in a real IPython shell (magics such as ``%load_ext
syllabus`` and ``!`` commands work) that knows it runs ``NB.ipynb``, as Jupyter's kernel
does, so runs started in it record the notebook as their entry point. Without IPython,
cells run as plain Python, and a cell that needs IPython is refused before anything runs.

The first failing cell stops the run: its number and error go to stderr and the exit code
is 1 (2 when the notebook cannot be read).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["code_cells", "main", "needs_ipython"]


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")


def code_cells(notebook: dict[str, Any]) -> list[str]:
    """The source of every non-empty code cell, in order."""
    out = []
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if text.strip():
            out.append(text)
    return out


def needs_ipython(source: str) -> bool:
    """Whether a cell uses IPython syntax (magics, shell escapes, ``?`` help)."""
    for raw in source.splitlines():
        line = raw.lstrip()
        if line.startswith(("%", "!")) or (line.endswith("?") and not line.startswith("#")):
            return True
    return False


def _run_ipython(path: Path, cells: list[str]) -> int:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["__session__"] = str(path)  # what Jupyter's kernel tells the notebook
    shell.user_ns["__file__"] = str(path)
    for number, source in enumerate(cells, 1):
        result = shell.run_cell(source, store_history=True)  # type: ignore[no-untyped-call,unused-ignore]
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            _err(f"cell {number} failed: {type(error).__name__}: {error}")
            return 1
    return 0


def _run_plain(path: Path, cells: list[str]) -> int:
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
    for number, source in enumerate(cells, 1):
        try:
            code = compile(source, f"{path.name} cell {number}", "exec")
            exec(code, namespace)  # noqa: S102 - the user's own notebook, by request
        except BaseException as exc:  # noqa: BLE001 - reported like a failing cell
            if isinstance(exc, SystemExit) and exc.code in (0, None):
                return 0
            _err(f"cell {number} failed: {type(exc).__name__}: {exc}")
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        _err("usage: python -m syllabus.code.nbrun NOTEBOOK.ipynb")
        return 2
    path = Path(args[0]).resolve()
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _err(f"cannot read notebook {path}: {exc}")
        return 2
    cells = code_cells(notebook if isinstance(notebook, dict) else {})
    sys.argv = [str(path)]
    try:
        import IPython  # noqa: F401
    except ImportError:
        needing = [i for i, c in enumerate(cells, 1) if needs_ipython(c)]
        if needing:
            _err(
                f"cell {needing[0]} uses IPython syntax (magics or shell commands) and IPython "
                "is not installed here; `pip install ipython`"
            )
            return 1
        return _run_plain(path, cells)
    return _run_ipython(path, cells)


if __name__ == "__main__":
    sys.exit(main())
