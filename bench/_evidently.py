"""Provision Evidently in its own venv and run its data drift report in a child process.

Evidently is never a dependency of Syllabus and is never imported into the project's
venv: it is installed with pip into ``bench/.venv-evidently`` (gitignored) together with
``pandas<3`` (Evidently 0.7 does not import under pandas 3, see
shared/research/anchor_monitoring.md). This file, run by that venv's interpreter with
``--worker``, makes the benchmark data (:func:`make_data`, shared with the Syllabus side),
runs ``Report([DataDriftPreset()])`` on it, times it inside the process and prints one JSON
line. The parent measures the child's peak RSS with ``os.wait4``.

The top of this module imports only the standard library so both interpreters can load it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["EVIDENTLY_VERSION", "VENV_DIR", "make_data", "provision", "rss_mib", "run_child"]

EVIDENTLY_VERSION = "0.7.23"
VENV_DIR = Path(__file__).resolve().parent / ".venv-evidently"
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SHIFTED = [*NUMERIC[:5], *CATEGORICAL[:2]]
_PIP_TIMEOUT = 1200


def make_data(n: int, seed: int, shift: bool) -> dict[str, Any]:
    """Columns as numpy arrays: 20 numeric (cycling N(0,1), lognormal(0,0.5), U(0,1),
    Exp(1), N(10,3)), 5 categorical with 10..50 Zipf-like categories; with ``shift`` the
    first 5 numeric means move by 0.5 population SD and cat_0/cat_1 frequencies become
    0.5 p + 0.5 reversed(p) (the research anchor's data)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    sd = [1.0, float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))), float(np.sqrt(1 / 12)), 1.0, 3.0]
    for i, name in enumerate(NUMERIC):
        kind = i % 5
        if kind == 0:
            x = rng.normal(0, 1, n)
        elif kind == 1:
            x = rng.lognormal(0, 0.5, n)
        elif kind == 2:
            x = rng.uniform(0, 1, n)
        elif kind == 3:
            x = rng.exponential(1, n)
        else:
            x = rng.normal(10, 3, n)
        if shift and i < 5:
            x = x + 0.5 * sd[kind]
        out[name] = x
    for i, name in enumerate(CATEGORICAL):
        k = 10 * (i + 1)
        p = 1 / np.arange(1, k + 1) ** 1.1
        p /= p.sum()
        if shift and i < 2:
            p = 0.5 * p + 0.5 * p[::-1]
        labels = np.array([f"c{j:02d}" for j in range(k)], dtype=object)
        out[name] = labels[rng.choice(k, n, p=p)]
    return out


def rss_mib() -> float:
    """This process's resident set now (MiB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_child(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run one measurement in a fresh process: its JSON answer plus ``peak_mib``, the
    child's peak RSS from ``os.wait4``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            raise RuntimeError(f"{cmd[1:3]} timed out after {timeout:.0f} s")
        time.sleep(0.05)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[1:4])} failed: {err.strip().splitlines()[-3:]}")
    answer = json.loads(out.strip().splitlines()[-1])
    answer["peak_mib"] = usage.ru_maxrss / 1024  # kB on Linux
    return answer


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DO_NOT_TRACK"] = "1"
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    return env


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    code = "import importlib.metadata as m, evidently; print(m.version('evidently'))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          timeout=300, env=worker_env(), check=False)  # fmt: skip
    out = proc.stdout.strip()
    return out.splitlines()[-1] if proc.returncode == 0 and out else None


def provision(*, log: Any = print, venv_dir: Path = VENV_DIR) -> tuple[Path | None, str]:
    """The venv's interpreter and a status line, or ``(None, reason)``; installs
    ``evidently==EVIDENTLY_VERSION`` and ``pandas<3`` the first time."""
    python = venv_dir / "bin" / "python"
    version = _installed_version(python)
    if version is not None:
        return python, f"Evidently {version} from {venv_dir}"
    log(f"Evidently: installing evidently=={EVIDENTLY_VERSION} into {venv_dir} (once) ...")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True, timeout=300)
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"evidently=={EVIDENTLY_VERSION}", "pandas<3"],
            capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not install Evidently: {exc}"
    if proc.returncode != 0:
        return None, f"pip install evidently failed: {proc.stderr.strip().splitlines()[-1:]}"
    version = _installed_version(python)
    if version is None:
        return None, "Evidently installed but cannot be imported"
    return python, f"Evidently {version} from {venv_dir} (installed now)"


def _worker(rows: int) -> None:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref = pd.DataFrame(make_data(rows, 42, False))
    cur = pd.DataFrame(make_data(rows, 43, True))
    data_mib = rss_mib()
    started = time.perf_counter()
    cpu = time.process_time()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, value = config["method"], float(metric["value"])
            p_value = "p_value" in method or "test" in method.lower()
            if (value < config["threshold"]) if p_value else (value >= config["threshold"]):
                drifted.append(config["column"])
    print(json.dumps({"seconds": seconds, "cpu": cpu, "data_mib": data_mib,
                      "drifted": sorted(drifted)}))  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker" and sys.argv[2] == "--rows":
        _worker(int(sys.argv[3]))
    else:
        sys.exit("usage: _evidently.py --worker --rows N")
