"""Re-running a run and judging whether it reproduced: :class:`ReproduceAPI`, mixed into
:class:`~syllabus.client.Client`.

``reproduce(run)`` works in a fresh folder::

    FOLDER/code/            the run's exact code (``checkout_code``); the working directory
    FOLDER/inputs/ROLE/     each dataset version the run used, as role ROLE
    FOLDER/reproduce.log    what the entry point printed (stdout and stderr)
    FOLDER/.venv/           with ``venv=True``: the recorded packages

and runs ``python ENTRY ARGV...`` there with these environment variables:

- ``SYLLABUS_REPRODUCE_OF``: the original run's id. The fluent ``start_run`` tags the runs
  it starts with ``syllabus.reproduces=<id>``, which links the new run to the original;
- ``SYLLABUS_PARAMS``: the original run's params as a JSON object;
- ``SYLLABUS_INPUT_<ROLE>``: the folder holding the dataset version used as ROLE
  (upper-cased, other characters than letters and digits as ``_``), and
  ``SYLLABUS_INPUTS``: ``{role: folder}`` as JSON. A script that reads its data with
  ``syllabus.data.get("churn@3")`` needs none of this: it reads the same store;
- ``SYLLABUS_URI`` (and ``SYLLABUS_BLOBS``): this client's store.

The new run's final metrics (``system/*`` excepted) are then compared with the original's,
``math.isclose(a, b, rel_tol=tolerance, abs_tol=abs_tolerance)`` for each, and its params
with the original's: the :class:`Verdict` says reproduced, or which differ and by how much.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from syllabus.errors import ConflictError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from syllabus.client.client import Client
    from syllabus.code import EnvironmentDiff, RunCode
    from syllabus.config import Settings
    from syllabus.tracking.models import Run

__all__ = [
    "REPRODUCES_TAG",
    "REPRODUCE_ENV",
    "MetricCheck",
    "ReproduceAPI",
    "ReproduceInput",
    "ReproducePlan",
    "Verdict",
]

REPRODUCE_ENV = "SYLLABUS_REPRODUCE_OF"
"""Set to the original run's id for the re-run entry point."""
REPRODUCES_TAG = "syllabus.reproduces"
"""The tag linking a reproduction to the run it reproduces (set by the fluent start_run)."""

_ROLE = re.compile(r"[^A-Za-z0-9]+")
_NOT_INSTALLABLE = frozenset({"syllabus", "pip", "setuptools", "wheel", "distribute"})
_TAIL = 4000


@dataclass(frozen=True, slots=True)
class ReproduceInput:
    """A dataset version the run used, where the reproduction puts it and the variable
    naming that folder."""

    role: str
    ref: str
    variable: str
    path: str


@dataclass(frozen=True, slots=True)
class ReproducePlan:
    """What a reproduction does (``syllabus reproduce --dry-run`` shows it).

    ``folder`` is None when a new temporary folder is to be made. ``environment`` lists
    the differences from the recorded environment to this interpreter's (None when the
    run recorded none). ``skipped`` names inputs that are not materialized."""

    run_id: str
    folder: str | None
    snapshot_id: str
    kind: str
    commit: str | None
    dirty: bool
    entry_point: str
    argv: tuple[str, ...]
    command: tuple[str, ...]
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    inputs: tuple[ReproduceInput, ...]
    environment: EnvironmentDiff | None
    variables: Mapping[str, str]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricCheck:
    """One metric of the original run against the reproduction (``new`` None: missing)."""

    key: str
    original: float
    new: float | None
    ok: bool

    @property
    def abs_diff(self) -> float | None:
        return None if self.new is None else abs(self.new - self.original)

    @property
    def rel_diff(self) -> float | None:
        scale = abs(self.original)
        if self.new is None or scale == 0:
            return None
        return abs(self.new - self.original) / scale


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :meth:`ReproduceAPI.reproduce`.

    ``reproduced`` is True when the entry point exited 0, recorded a new run linked to
    the original, logged every metric of the original within tolerance and the same
    params. ``reason`` says it in one line; ``notes`` add what the user should know
    (environment mismatches, a venv that could not be made)."""

    reproduced: bool
    reason: str
    run_id: str
    new_run_id: str | None
    folder: str
    returncode: int | None
    metrics: tuple[MetricCheck, ...]
    params: Mapping[str, tuple[str | None, str | None]]
    tolerance: float
    abs_tolerance: float
    plan: ReproducePlan
    venv: str | None = None
    notes: tuple[str, ...] = ()
    output: str = ""
    extra_metrics: tuple[str, ...] = field(default=())

    @property
    def differing(self) -> tuple[MetricCheck, ...]:
        """The metrics that are missing or outside the tolerance."""
        return tuple(m for m in self.metrics if not m.ok)

    def __bool__(self) -> bool:
        return self.reproduced


def _variable(role: str) -> str:
    return "SYLLABUS_INPUT_" + (_ROLE.sub("_", role).strip("_").upper() or "INPUT")


def _final_metrics(run: Run) -> dict[str, float]:
    return {k: m.value for k, m in sorted(run.metrics.items()) if not k.startswith("system/")}


def _close(a: float, b: float, rel: float, abs_: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-_TAIL:].decode("utf-8", "replace")


class ReproduceAPI:
    """``plan_reproduction`` and ``reproduce`` (mixed into ``Client``)."""

    if TYPE_CHECKING:
        settings: Settings

    def _client(self) -> Client:
        return cast("Client", self)

    # -- planning --------------------------------------------------------------------------

    def _store_variables(self) -> dict[str, str]:
        """The variables that point a child process at this client's store."""
        if self.settings.workspace is not None and self.settings.uri is None:
            out = {"SYLLABUS_URI": str(self.settings.workspace)}
            if self.settings.blobs is not None:
                out["SYLLABUS_BLOBS"] = str(self.settings.blobs)
            return out
        location = self._client().location
        out = {"SYLLABUS_URI": location.db_url}
        if location.blobs_url is not None:
            out["SYLLABUS_BLOBS"] = location.blobs_url
        return out

    def _current_environment_diff(self, code: RunCode) -> EnvironmentDiff | None:
        """Recorded environment -> this interpreter's, computed without storing anything."""
        if code.environment is None:
            return None
        from syllabus.code import CaptureOptions, CodeService, Environment
        from syllabus.code.env import environment_record

        options = CaptureOptions.from_settings(self.settings)
        record = environment_record(options.env_vars)
        current = Environment(
            id="",
            digest="",
            python=str(record["python"]),
            implementation=str(record["implementation"]),
            platform=str(record["platform"]),
            created_at=0,
            packages=dict(record["packages"]),
            gpus=tuple(record["gpus"]),
            cuda=record["cuda"],
            variables=dict(record["variables"]),
        )
        return CodeService.diff_environments(code.environment, current)

    def plan_reproduction(
        self, run_id: str, *, folder: str | Path | None = None, python: str | None = None
    ) -> ReproducePlan:
        """What :meth:`reproduce` would do for ``run_id``; changes nothing.

        A run started from a notebook re-runs the notebook's code cells headless (the
        checkpoint linked to the run when there is one, else the notebook in the snapshot;
        see :mod:`syllabus.code.nbrun`), in the notebook's folder as Jupyter would.

        Raises InvalidArgumentError when the run cannot be re-run (no entry point
        recorded: started from ``python -c``, ``-m`` or an interactive session)."""
        client = self._client()
        run = client.get_run(run_id)
        code = client.get_run_code(run.id)
        entry = code.entry_point
        if entry is None:
            raise InvalidArgumentError(
                f"run {run.id[:12]} recorded no entry script (started from `python -c`, "
                "`-m` or an interactive session); it cannot be re-run"
            )
        if Path(entry).is_absolute() or ".." in Path(entry).parts:
            raise InvalidArgumentError(
                f"run {run.id[:12]} was started from {entry}, outside the code it captured "
                f"({code.root}); it cannot be re-run from its snapshot"
            )
        base = Path(folder).resolve() if folder is not None else None
        inputs: list[ReproduceInput] = []
        skipped: list[str] = []
        used: set[str] = set()
        for inp in client.list_inputs(run.id):
            if inp.kind != "dataset" or not inp.name:
                skipped.append(f"{inp.kind} {inp.name or inp.target_id} ({inp.role})")
                continue
            role = _ROLE.sub("-", inp.role).strip("-") or "input"
            sub = role if role not in used else f"{role}-{_ROLE.sub('-', inp.name)}"
            used.add(sub)
            where = (base / "inputs" / sub) if base is not None else Path("inputs") / sub
            inputs.append(ReproduceInput(inp.role, inp.name, _variable(inp.role), str(where)))
        variables = {
            REPRODUCE_ENV: run.id,
            "SYLLABUS_PARAMS": json.dumps(dict(run.params), sort_keys=True),
            **self._store_variables(),
        }
        for item in inputs:
            variables.setdefault(item.variable, item.path)
        variables["SYLLABUS_INPUTS"] = json.dumps({i.role: i.path for i in inputs})
        snap = code.snapshot
        return ReproducePlan(
            run_id=run.id,
            folder=str(base) if base is not None else None,
            snapshot_id=snap.id,
            kind=snap.kind,
            commit=snap.git.commit if snap.git else None,
            dirty=snap.dirty,
            entry_point=entry,
            argv=code.argv,
            command=(
                (python or sys.executable, "-m", "syllabus.code.nbrun", Path(entry).name)
                if entry.endswith(".ipynb")
                else (python or sys.executable, entry, *code.argv)
            ),
            params=dict(run.params),
            metrics=_final_metrics(run),
            inputs=tuple(inputs),
            environment=self._current_environment_diff(code),
            variables=variables,
            skipped=tuple(skipped),
        )

    # -- running ---------------------------------------------------------------------------

    def reproduce(
        self,
        run_id: str,
        *,
        folder: str | Path | None = None,
        tolerance: float = 1e-6,
        abs_tolerance: float = 1e-6,
        venv: bool = False,
        venv_timeout: float = 600.0,
        timeout: float | None = None,
    ) -> Verdict:
        """Re-run ``run_id`` from its code snapshot and input data versions in a fresh
        folder (``folder``: a new or empty one; default a new temporary folder, kept) and
        compare the new run with it. ``venv`` first makes a virtual environment with the
        recorded package versions (at most ``venv_timeout`` seconds; when it cannot be
        made the run uses this interpreter and the verdict's notes say why). ``timeout``
        bounds the entry point's run time (seconds)."""
        if tolerance < 0 or abs_tolerance < 0:
            raise InvalidArgumentError("tolerances cannot be negative")
        client = self._client()
        plan = self.plan_reproduction(run_id)  # refuses what cannot be re-run, first
        base = _fresh_folder(folder, plan.run_id)
        plan = self.plan_reproduction(plan.run_id, folder=base)
        notes: list[str] = []
        if plan.environment:
            notes.append(f"environment differs from the recorded one: {_summary(plan.environment)}")
        if plan.skipped:
            notes.append("inputs not materialized: " + ", ".join(plan.skipped))

        code_dir = base / "code"
        client.checkout_code(plan.run_id, code_dir)
        cwd = code_dir
        if plan.entry_point.endswith(".ipynb"):
            cwd = _place_notebook(client, plan, code_dir)
        for item in plan.inputs:
            shutil.copytree(client.dataset(item.ref).path(), item.path)

        python, venv_dir = sys.executable, None
        if venv:
            code = client.get_run_code(plan.run_id)
            packages = dict(code.environment.packages) if code.environment else {}
            made, venv_notes = _make_venv(base / ".venv", packages, venv_timeout)
            notes += venv_notes
            if made is not None:
                python, venv_dir = str(made), str(base / ".venv")

        started = int(time.time() * 1000) - 1
        returncode = _execute(
            [python, *plan.command[1:]],
            cwd,
            {**plan.variables, **({"VIRTUAL_ENV": venv_dir} if venv_dir else {})},
            base / "reproduce.log",
            timeout,
        )
        result = Verdict(
            reproduced=False,
            reason="",
            run_id=plan.run_id,
            new_run_id=None,
            folder=str(base),
            returncode=returncode,
            metrics=(),
            params={},
            tolerance=tolerance,
            abs_tolerance=abs_tolerance,
            plan=plan,
            venv=venv_dir,
            notes=tuple(notes),
            output=_tail(base / "reproduce.log"),
        )
        if returncode != 0:
            why = (
                f"the entry point ran longer than {timeout:g} s and was stopped"
                if returncode is None
                else f"the entry point exited with code {returncode}"
            )
            return replace(result, reason=why)
        page = client.search_runs(
            filter=f"tags.{REPRODUCES_TAG} = '{plan.run_id}' and start_time >= {started}",
            order_by=["start_time asc"],
            max_results=1,
        )
        if not len(page):
            why = (
                f"the entry point recorded no run tagged {REPRODUCES_TAG}={plan.run_id[:12]} "
                "(does it start its run with syllabus.start_run()?)"
            )
            return replace(result, reason=why)
        return _judge(result, client.get_run(page[0].id))


def _place_notebook(client: Client, plan: ReproducePlan, code_dir: Path) -> Path:
    """Put the run's notebook (its linked checkpoint, else the snapshot's file) in the
    checked-out code; returns the folder it runs in. NotFoundError when there is neither."""
    target = code_dir / plan.entry_point
    checkpoint = client.run_notebook_checkpoint(plan.run_id)
    if checkpoint is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.read_notebook_checkpoint(checkpoint))
    elif not target.is_file():
        raise NotFoundError(
            f"run {plan.run_id[:12]} was started from notebook {plan.entry_point}, which is "
            "neither checkpointed nor in its code snapshot; it cannot be re-run"
        )
    return target.parent


def _fresh_folder(folder: str | Path | None, run_id: str) -> Path:
    """``folder`` (new or empty, created), else a new temporary folder named after the run."""
    if folder is None:
        return Path(tempfile.mkdtemp(prefix=f"syllabus-reproduce-{run_id[:12]}-"))
    base = Path(folder).resolve()
    if base.exists() and (not base.is_dir() or any(base.iterdir())):
        raise ConflictError(f"{base} exists and is not empty; choose a new folder")
    base.mkdir(parents=True, exist_ok=True)
    return base


def _execute(
    command: list[str], cwd: Path, variables: Mapping[str, str], log: Path, timeout: float | None
) -> int | None:
    """Run ``command`` with ``variables`` added to this environment, its output in ``log``;
    the exit code, or None when it ran out of time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_INPUT_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(variables)
    with log.open("wb") as out:
        try:
            proc = subprocess.run(  # noqa: S603 - the recorded entry point, by request
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    return proc.returncode


def _judge(result: Verdict, new: Run) -> Verdict:
    """``result`` completed with the comparison of the original run's metrics and params
    with those of ``new``."""
    plan = result.plan
    new_metrics = _final_metrics(new)
    checks = tuple(
        MetricCheck(
            key,
            value,
            new_metrics.get(key),
            key in new_metrics
            and _close(value, new_metrics[key], result.tolerance, result.abs_tolerance),
        )
        for key, value in plan.metrics.items()
    )
    params = {
        k: (plan.params.get(k), new.params.get(k))
        for k in sorted(set(plan.params) | set(new.params))
        if plan.params.get(k) != new.params.get(k)
    }
    bad = [c for c in checks if not c.ok]
    if not bad and not params:
        why = f"reproduced: {len(checks)} metric(s) within tolerance, same params"
    else:
        parts = [_describe(c) for c in bad]
        parts += [f"param {k}: {a!r} -> {b!r}" for k, (a, b) in params.items()]
        why = "not reproduced: " + "; ".join(parts)
    return replace(
        result,
        reproduced=not bad and not params,
        reason=why,
        new_run_id=new.id,
        metrics=checks,
        params=params,
        extra_metrics=tuple(k for k in new_metrics if k not in plan.metrics),
    )


def _describe(check: MetricCheck) -> str:
    if check.new is None:
        return f"{check.key} is missing (was {check.original:g})"
    rel = check.rel_diff
    rel_text = f", {rel:.3g} relative" if rel is not None else ""
    return (
        f"{check.key} {check.original:.6g} -> {check.new:.6g} "
        f"(differs by {check.abs_diff:.3g}{rel_text})"
    )


def _summary(diff: EnvironmentDiff) -> str:
    parts = []
    if diff.changed:
        parts.append(f"{len(diff.changed)} package(s) at other versions")
    if diff.removed:
        parts.append(f"{len(diff.removed)} missing here")
    if diff.added:
        parts.append(f"{len(diff.added)} more here")
    parts += [f"{k} {a!r} recorded, {b!r} here" for k, (a, b) in diff.other.items()]
    return ", ".join(parts)


def _make_venv(
    dest: Path, packages: Mapping[str, str], timeout: float
) -> tuple[Path | None, list[str]]:
    """A virtual environment at ``dest`` with ``packages`` pinned, made with this
    interpreter's venv and pip in at most ``timeout`` seconds; returns its python (None when
    it could not be made) and notes for the verdict. Syllabus itself is made importable
    from this installation (a development version is in no registry)."""
    deadline = time.monotonic() + timeout
    wanted = {n: v for n, v in packages.items() if n not in _NOT_INSTALLABLE}
    fallback = "; the entry point runs with this interpreter instead"
    try:
        subprocess.run(  # noqa: S603 - this interpreter's venv module
            [sys.executable, "-m", "venv", "--without-pip", str(dest)],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, [f"could not create a venv at {dest}: {exc}{fallback}"]
    bindir = "Scripts" if os.name == "nt" else "bin"
    python = dest / bindir / ("python.exe" if os.name == "nt" else "python")
    requirements = dest / "requirements.txt"
    requirements.write_text("".join(f"{n}=={v}\n" for n, v in sorted(wanted.items())))
    if wanted:
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            proc = subprocess.run(  # noqa: S603 - this interpreter's pip, into the venv
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(python),
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                    str(requirements),
                ],
                capture_output=True,
                text=True,
                timeout=remaining,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, [
                f"could not create the venv: installing {len(wanted)} recorded packages took "
                f"longer than {timeout:g} s{fallback}"
            ]
        except OSError as exc:
            return None, [f"could not create the venv: {exc}{fallback}"]
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            last = next((ln for ln in reversed(lines) if "ERROR" in ln), lines[-1] if lines else "")
            return None, [
                f"could not create the venv: pip could not install the {len(wanted)} recorded "
                f"packages ({last.strip()}){fallback}"
            ]
    try:
        purelib = subprocess.run(  # noqa: S603 - the venv's own interpreter
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, [f"could not inspect the venv at {dest}: {exc}{fallback}"]
    import syllabus

    source = Path(syllabus.__file__).resolve().parent.parent
    Path(purelib).mkdir(parents=True, exist_ok=True)
    (Path(purelib) / "syllabus-reproduce.pth").write_text(f"{source}\n")
    notes = [
        f"ran in a venv with the {len(wanted)} recorded packages ({dest}); syllabus itself "
        f"from {source}"
    ]
    return python, notes
