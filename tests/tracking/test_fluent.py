"""The fluent API: start_run, nesting, failures, threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import syllabus
from syllabus import Client, fluent, init_workspace
from syllabus.errors import InvalidArgumentError
from syllabus.tracking.models import RunStatus


@pytest.fixture
def client(workdir: Path) -> Iterator[Client]:
    init_workspace(workdir)
    with Client(workdir) as c:
        fluent.set_client(c)
        yield c
        fluent.set_client(None)


def test_start_run_logs_and_ends(client: Client, tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("weights")
    with syllabus.start_run(experiment="fluent", params={"lr": 0.1}, tags={"t": 1}) as run:
        assert syllabus.active_run() is run
        syllabus.log_param("depth", 3)
        syllabus.log_params({"n": 10})
        syllabus.set_tag("stage", "dev")
        syllabus.set_tags({"owner": "me"})
        for step in range(50):
            syllabus.log_metric("loss", 1 / (step + 1), step=step)
        syllabus.log_metrics({"acc": 0.9, "f1": 0.8})
        syllabus.log_artifact(tmp_path / "model.txt")
        syllabus.log_text("hello", "notes/hello.txt")
        syllabus.log_dict({"a": [1, 2]}, "config.json")
        syllabus.flush()
    assert syllabus.active_run() is None
    got = client.get_run(run.id)
    assert got.status is RunStatus.FINISHED
    assert got.params == {"lr": "0.1", "depth": "3", "n": "10"}
    assert got.tags == {"t": "1", "stage": "dev", "owner": "me"}
    assert set(got.metrics) == {"loss", "acc", "f1"}
    assert len(client.get_metric_history(run.id, "loss")) == 50
    assert [a.path for a in client.list_artifacts(run.id)] == [
        "config.json",
        "model.txt",
        "notes/hello.txt",
    ]
    assert client.read_artifact(run.id, "config.json").startswith(b"{")


def test_exception_marks_failed_with_error_text(client: Client) -> None:
    def train() -> str:
        with syllabus.start_run() as run:
            syllabus.log_metric("before", 1.0)
            _ = 1 / 0
        return run.id

    with pytest.raises(ZeroDivisionError):
        train()
    (run,) = client.search_runs(filter="status = 'failed'")
    got = client.get_run(run.id)
    assert got.status is RunStatus.FAILED
    assert got.error is not None
    assert "ZeroDivisionError: division by zero" in got.error
    assert got.metrics["before"].value == 1.0  # flushed before the run ended


def test_nested_runs_are_children(client: Client) -> None:
    with syllabus.start_run(experiment="sweep") as parent:
        for lr in (0.1, 0.01):
            with syllabus.start_run(name=f"lr={lr}", params={"lr": lr}) as child:
                assert syllabus.active_run() is child
                syllabus.log_metric("score", lr * 10)
            assert syllabus.active_run() is parent
    children = client.search_runs("sweep", parent=parent.id, order_by=["metrics.score desc"])
    assert [r.name for r in children] == ["lr=0.1", "lr=0.01"]


def test_logging_without_a_run_is_a_clear_error(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match=r"no active run; call syllabus\.start_run"):
        syllabus.log_metric("x", 1.0)


def test_threads_with_their_own_runs_and_into_the_main_run(client: Client) -> None:
    errors: list[BaseException] = []
    ids: dict[int, str] = {}

    def own_run(k: int) -> None:
        try:
            fluent.set_client(client)
            with syllabus.start_run(experiment="threads", name=f"t{k}") as run:
                ids[k] = run.id
                for i in range(2000):
                    syllabus.log_metric("i", float(i), step=i)
        except BaseException as exc:
            errors.append(exc)

    def into_main(k: int) -> None:
        try:
            for i in range(500):
                syllabus.log_metric(f"w{k}", float(i), step=i)
        except BaseException as exc:
            errors.append(exc)

    with syllabus.start_run(experiment="threads", name="main") as main:
        threads = [threading.Thread(target=own_run, args=(k,)) for k in range(4)]
        threads += [threading.Thread(target=into_main, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    for k, run_id in ids.items():
        run = client.get_run(run_id)
        assert run.name == f"t{k}"
        assert run.parent_id == main.id  # started while main's run is active: a child
        assert len(client.get_metric_history(run_id, "i")) == 2000
    got = client.get_run(main.id)
    assert {f"w{k}" for k in range(4)} <= set(got.metrics)
    for k in range(4):
        assert len(client.get_metric_history(main.id, f"w{k}")) == 500


def test_system_metrics_are_sampled(client: Client) -> None:
    run = client.create_run("sys")
    client._tracking().start_system_metrics(run.id, interval=0.05)
    import time

    time.sleep(0.3)
    client.end_run(run.id)
    keys = set(client.get_run(run.id).metrics)
    assert {"system/cpu_percent", "system/memory_percent", "system/process_rss_mb"} <= keys


def test_system_metrics_on_by_setting(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("SYLLABUS_SYSTEM_METRICS", "true")
    monkeypatch.setenv("SYLLABUS_SYSTEM_METRICS_INTERVAL", "50ms")
    init_workspace(workdir)
    with Client(workdir) as client:
        run = client.create_run("sys")
        time.sleep(0.3)
        client.end_run(run.id)
        assert "system/cpu_percent" in client.get_run(run.id).metrics
        quiet = client.create_run("sys", system_metrics=False)
        time.sleep(0.15)
        client.end_run(quiet.id)
        assert client.get_run(quiet.id).metrics == {}
