"""Several processes on one SQLite workspace, and a process killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from syllabus import Client, init_workspace
from syllabus.errors import NotFoundError
from syllabus.tracking.models import Experiment, RunStatus

_ENV = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.tracking._logger", *args],
        cwd=Path(__file__).resolve().parents[2],
        env=_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_processes_lose_no_point(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    n = 20_000
    children = [_child("log", str(tmp_path), f"p{i}", str(n)) for i in range(4)]
    # Reap every child (closing its pipes) before judging any of them.
    errors = [child.communicate(timeout=120)[1] for child in children]
    for child, err in zip(children, errors, strict=True):
        assert child.returncode == 0, err
    with Client(tmp_path) as client:
        found = client.search_runs("concurrent", order_by=["name"])
        assert [r.name for r in found] == ["p0", "p1", "p2", "p3"]
        for run in found:
            assert run.status is RunStatus.FINISHED
            history = client.get_metric_history(run.id, "x")
            assert [p.step for p in history] == list(range(n))
            assert run.metrics["x"].value == n - 1


def test_sigkill_keeps_what_was_flushed(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    n = 5000
    child = _child("kill", str(tmp_path), str(n))
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert line[1:] == ["flushed"], child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)  # reaps it and closes the pipes
    assert child.returncode == -signal.SIGKILL
    with Client(tmp_path) as client:
        history = client.get_metric_history(line[0], "x")
        assert len(history) >= n
        assert [p.step for p in history[:n]] == list(range(n))
        run = client.get_run(line[0])
        assert run.params == {"flushed": str(n)}
        assert run.status is RunStatus.RUNNING  # until its heartbeat goes stale


def test_an_experiment_created_meanwhile_is_used_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interleaving two first runs race into: the lookup misses, then another process
    # creates the experiment before this one does. Replayed deterministically: the
    # experiment exists, and the first lookup is made to miss.
    init_workspace(tmp_path)
    with Client(tmp_path) as other:
        made = other.create_experiment("race")
    with Client(tmp_path) as client:
        service = client._tracking(write=True)
        store = service.store
        real = store.get_experiment
        calls = {"n": 0}

        def first_lookup_misses(ref: str, *, by_name: bool = False) -> Experiment:
            calls["n"] += 1
            if calls["n"] == 1:
                raise NotFoundError("no experiment 'race' (yet)")
            return real(ref, by_name=by_name)

        monkeypatch.setattr(store, "get_experiment", first_lookup_misses)
        assert service.get_or_create_experiment("race").id == made.id
