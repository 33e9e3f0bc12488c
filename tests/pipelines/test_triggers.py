"""Triggers and the agent: cron parsing, firing once per occurrence, leases, restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.errors import InvalidArgumentError
from syllabus.pipelines.triggers import AlertEvent, Cron, parse_trigger

TRIGGERED = """
from syllabus.pipelines import cron, dataset, on_alert, on_dataset, pipeline, step


@step
def count_rows(data):
    return len(data.to_pandas())


@pipeline(name="NAME", triggers=[on_dataset("numbers", name="new-data")])
def retrain():
    count_rows(dataset("numbers@latest"))
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_cron_expressions() -> None:
    every5 = Cron.parse("*/5 * * * *")
    assert every5.previous(_at("2026-03-04T10:07:30")) == _at("2026-03-04T10:05")
    assert every5.next(_at("2026-03-04T10:05:00")) == _at("2026-03-04T10:10")
    nightly = Cron.parse("30 3 * * mon-fri")
    assert nightly.previous(_at("2026-03-08T12:00")) == _at("2026-03-06T03:30")  # Sun -> Fri
    assert nightly.next(_at("2026-03-06T03:30")) == _at("2026-03-09T03:30")
    assert Cron.parse("@daily").next(_at("2026-12-31T23:59")) == _at("2027-01-01T00:00")
    assert Cron.parse("0 0 1,15 feb *").previous(_at("2026-03-04T00:00")) == _at("2026-02-15")
    # both day fields restricted: either matches (as in cron)
    either = Cron.parse("0 0 13 * fri")
    assert either.matches(_at("2026-03-13T00:00"))
    assert either.matches(_at("2026-03-06T00:00"))
    assert not either.matches(_at("2026-03-07T00:00"))
    assert Cron.parse("0 0 * * 7").matches(_at("2026-03-08T00:00"))  # 7 is Sunday
    for bad, message in [
        ("* * * *", "needs 5 fields"),
        ("61 * * * *", "out of range"),
        ("*/0 * * * *", "invalid step"),
        ("5-1 * * * *", "invalid range"),
        ("* * * foo *", "invalid month"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            Cron.parse(bad)


def test_trigger_declarations_are_checked() -> None:
    assert parse_trigger({"cron": "@hourly"}, default_name="t1") == (
        "t1",
        "cron",
        {"cron": "@hourly", "params": {}},
    )
    with pytest.raises(InvalidArgumentError, match="exactly one of"):
        parse_trigger({"cron": "@hourly", "dataset": "x"}, default_name="t")
    with pytest.raises(InvalidArgumentError, match="unknown key 'when'"):
        parse_trigger({"dataset": "x", "when": 1}, default_name="t")


def _add(client: Client, workdir: Path, rows: int) -> None:
    lines = "".join(f"{i},{i * 2}\n" for i in range(rows))
    (workdir / "numbers.csv").write_text("a,b\n" + lines)
    client.add_dataset("numbers", workdir / "numbers.csv")


def test_dataset_trigger_fires_once_per_new_version(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    _add(client, workdir, 2)
    mod = steps_module(TRIGGERED)
    client.register_pipeline(f"{mod}:retrain")
    (trigger,) = client.list_triggers(mod)
    assert (trigger.name, trigger.kind) == ("new-data", "dataset")
    assert trigger.state is not None  # starts at the current version: nothing to do yet
    assert client.run_agent(once=True, executor="inline") == []

    _add(client, workdir, 3)
    (event,) = client.run_agent(once=True, executor="inline")
    assert event.status == "succeeded"
    assert event.occurrence.startswith("numbers@2:")
    result = client.get_pipeline_run(event.pipeline_run_id or "")
    assert result.value("count_rows") == 3
    assert result.run.firing_id == event.firing_id
    tracked = client.get_run(result.run.run_id or "")
    assert tracked.tags["syllabus.trigger.firing"] == event.firing_id
    assert client.run_agent(once=True, executor="inline") == []  # fired once
    (firing,) = client.list_firings(mod)
    assert firing.status == "succeeded"
    assert firing.pipeline_run_id == result.run.id


AGENT = """
import json, sys, time
from pathlib import Path
from syllabus import Client
go = Path(sys.argv[1])
Path(sys.argv[2]).touch()
while not go.exists():
    time.sleep(0.01)
events = Client(cwd=Path.cwd()).run_agent(once=True, executor="inline")
print(json.dumps([e.to_dict() for e in events]))
"""


def test_two_concurrent_agents_fire_a_trigger_once(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    _add(client, workdir, 2)
    mod = steps_module(TRIGGERED)
    client.register_pipeline(f"{mod}:retrain")
    _add(client, workdir, 5)
    client.close()
    go = workdir / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AGENT, str(go), str(workdir / f"ready{i}")],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((workdir / f"ready{i}").exists() for i in range(2)):
            assert time.monotonic() < deadline, "agents did not start"
            time.sleep(0.02)
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    events = [e for out, _ in outputs for e in json.loads(out.strip().splitlines()[-1])]
    assert len(events) == 1
    assert events[0]["status"] == "succeeded"
    assert len(client.list_firings(mod)) == 1
    assert len(client.list_pipeline_runs(mod)) == 1


def test_a_restarted_agent_finishes_a_firing_instead_of_firing_again(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    _add(client, workdir, 2)
    mod = steps_module(TRIGGERED)
    client.register_pipeline(f"{mod}:retrain")
    _add(client, workdir, 4)
    # An agent that records the firing, then dies before running the pipeline.
    dead = client.pipeline_agent(executor="inline", lease_seconds=0.2, owner="dead-agent")
    (trigger,) = client.list_triggers(mod)
    now = int(time.time() * 1000)
    assert dead.store.claim_trigger(trigger.id, "dead-agent", now, 200)
    occurrence = dead.occurrence(trigger, now)
    assert occurrence is not None
    firing = dead.store.fire(trigger.id, "dead-agent", *occurrence, now=now, ttl_ms=200)
    assert firing is not None
    # while its lease runs, another agent neither fires nor takes the firing over
    clock = [now / 1000 + 0.1]
    other = client.pipeline_agent(executor="inline")
    other.clock = lambda: clock[0]
    assert other.tick() == []
    clock[0] += 1.0  # past the dead agent's leases
    (event,) = other.tick()
    assert event.resumed
    assert event.firing_id == firing.id
    assert event.status == "succeeded"
    assert other.tick() == []
    assert client.run_agent(once=True, executor="inline") == []
    assert [f.status for f in client.list_firings(mod)] == ["succeeded"]
    assert len(client.list_pipeline_runs(mod)) == 1


CRON = """
from syllabus.pipelines import cron, pipeline, step


@step(cache=False)
def tick():
    return 1


@pipeline(name="NAME", triggers=[cron("*/5 * * * *", name="every-5")])
def scheduled():
    tick()
"""


def test_cron_trigger_fires_once_per_scheduled_minute(
    client: Client, steps_module: Callable[..., str]
) -> None:
    mod = steps_module(CRON)
    client.register_pipeline(f"{mod}:scheduled")
    (trigger,) = client.list_triggers(mod)
    base = (trigger.created_at // 300_000 + 1) * 300 + 60  # a minute after the next slot
    clock = [float(base)]
    agent = client.pipeline_agent(executor="inline")
    agent.clock = lambda: clock[0]
    (event,) = agent.tick()
    slot = datetime.fromtimestamp(base - 60, UTC).strftime("%Y-%m-%dT%H:%MZ")
    assert event.occurrence == slot
    clock[0] += 120  # same slot
    assert agent.tick() == []
    clock[0] += 3600  # many slots missed: fires once, for the newest
    (late,) = agent.tick()
    assert late.occurrence > slot
    assert len(client.list_firings(mod)) == 2


class Alerts:
    """Alerts as monitoring would report them (monitoring's own source is wired by the
    client when it offers one)."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    def alerts_after(self, after: str | None, rule: str) -> Sequence[AlertEvent]:
        return [
            e
            for e in self.events
            if (after is None or e.id > after) and rule in ("*", e.rule, e.detail["monitor"])
        ]


ALERTED = """
from syllabus.pipelines import on_alert, pipeline, step


@step(cache=False)
def retrain():
    return "retrained"


@pipeline(name="NAME", triggers=[on_alert("churn-local")])
def on_drift():
    retrain()
"""


def test_alert_trigger_fires_once_per_alert(
    client: Client, steps_module: Callable[..., str]
) -> None:
    mod = steps_module(ALERTED)
    client.register_pipeline(f"{mod}:on_drift")
    alerts = Alerts()
    agent = client.pipeline_agent(executor="inline")
    agent.alerts = alerts
    assert agent.tick() == []
    alerts.events.append(AlertEvent("a1", "psi(age) > 0.2", {"monitor": "other"}))
    assert agent.tick() == []
    alerts.events.append(AlertEvent("a2", "psi(age) > 0.2", {"monitor": "churn-local"}))
    (event,) = agent.tick()
    assert event.occurrence == "a2"
    assert agent.tick() == []
    (firing,) = client.list_firings(mod)
    assert firing.detail["rule"] == "psi(age) > 0.2"
    assert firing.detail["monitor"] == "churn-local"


DIES = """
import os
from pathlib import Path

from syllabus.pipelines import dataset, on_dataset, pipeline, step


@step
def count_rows(data):
    return len(data.to_pandas())


@step
def publish(rows):
    if not Path("survive").exists():
        os._exit(9)  # the agent's process dies half-way through the pipeline
    return f"{rows} rows"


@pipeline(name="NAME", triggers=[on_dataset("numbers")])
def fragile():
    publish(count_rows(dataset("numbers@latest")))
"""

DYING_AGENT = """
from pathlib import Path
from syllabus import Client
Client(cwd=Path.cwd()).run_agent(once=True, executor="inline", lease_seconds=1)
"""


def test_a_pipeline_run_left_by_a_dead_agent_is_resumed(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    _add(client, workdir, 2)
    mod = steps_module(DIES)
    client.register_pipeline(f"{mod}:fragile")
    _add(client, workdir, 3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    died = subprocess.run(
        [sys.executable, "-c", DYING_AGENT],
        check=False,
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert died.returncode == 9
    (left,) = client.list_pipeline_runs(mod)
    assert left.status.value == "running"
    (workdir / "survive").touch()
    time.sleep(1.1)  # the dead agent's lease expires
    (event,) = client.run_agent(once=True, executor="inline")
    assert event.resumed
    assert event.status == "succeeded"
    resumed = client.get_pipeline_run(event.pipeline_run_id or "")
    assert resumed.run.resumes == left.id
    assert resumed.step("count_rows").reason.startswith("kept from run")
    assert resumed.ran == ["publish"]
    assert resumed.value("publish") == "3 rows"
    abandoned = client.get_pipeline_run(left.id)
    assert abandoned.run.status.value == "failed"
    assert abandoned.step("publish").status.value == "failed"
    assert client.get_run(abandoned.run.run_id or "").status.value == "killed"
    assert client.run_agent(once=True, executor="inline") == []
    assert [f.status for f in client.list_firings(mod)] == ["succeeded"]
