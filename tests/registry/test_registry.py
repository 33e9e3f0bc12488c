"""Registry behaviour through the Client: registration, references, gates, stages,
approvals, retirement, rollback, corruption and the content-id guard."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from syllabus import Client
from syllabus.client.workspace import init_workspace
from syllabus.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidReferenceError,
    NotFoundError,
    PromotionRefusedError,
    UnsafeLoadError,
)
from syllabus.meta import BlobRefs
from syllabus.registry.models import GateResult, ModelVersion
from syllabus.registry.packaging import save_model
from tests.registry.conftest import Scaled, log_run_model


def test_versions_references_aliases_tags(client: Client, tmp_path: Path) -> None:
    v1 = log_run_model(client, "churn", metrics={"val_auc": 0.9})
    save_model(Scaled(3.0), tmp_path / "m", input_example={"x": [1.0]})
    v2 = client.register_model(tmp_path / "m", "churn", description="from disk")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.stage.value == "development"
    assert v1.source == f"run:{v1.run_id}/model"
    assert client.get_model_version("churn").version == 2
    assert client.get_model_version("churn@latest").version == 2
    client.set_model_alias("churn", "champion", 1)
    assert client.get_model_version("churn@champion").version == 1
    assert client.get_model_version("churn@1").aliases == ("champion",)
    client.set_model_tag("churn", "team", "growth")
    client.set_model_tag("churn", "reviewed", "yes", version=2)
    client.describe_model("churn", "predicts churn")
    model = client.get_registered_model("churn")
    assert (model.description, model.tags, model.aliases) == (
        "predicts churn",
        {"team": "growth"},
        {"champion": 1},
    )
    assert client.get_model_version("churn@2").tags == {"reviewed": "yes"}
    assert client.load_model("churn@1").predict({"x": [2.0]}) == [4.0]
    assert client.load_model("churn@champion").predict({"x": [1]}) == [2.0]
    with pytest.raises(NotFoundError, match=r"model 'churn' has no version 9 \(latest is 2\)"):
        client.get_model_version("churn@9")
    with pytest.raises(NotFoundError, match="model 'nope' does not exist"):
        client.get_model_version("nope@1")
    with pytest.raises(NotFoundError, match="has no version in production"):
        client.get_model_version("churn@production")
    with pytest.raises(NotFoundError, match="has no alias 'blue'"):
        client.get_model_version("churn@blue")
    with pytest.raises(InvalidReferenceError, match="versions start at 1"):
        client.get_model_version("churn@0")
    with pytest.raises(InvalidReferenceError):
        client.get_model_version("churn@@1")
    with pytest.raises(InvalidArgumentError, match="reads as a version or stage"):
        client.set_model_alias("churn", "production", 1)
    events = [e.event for e in client.model_history("churn")]
    assert events[:3] == ["model_created", "registered", "registered"]
    assert {"alias_set", "tag_set", "described"} <= set(events)


def test_register_from_run_without_model_and_bad_folder(client: Client, tmp_path: Path) -> None:
    run = client.create_run("x")
    with pytest.raises(NotFoundError, match="has no model under 'model'"):
        client.register_model(f"run:{run.id}", "churn")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="is not a model folder"):
        client.register_model(tmp_path / "empty", "churn")


POLICY = """\
policy: churn
stages:
  testing:
    from: [development]
    gates:
      - metric: val_auc >= 0.80
      - signature: required
  staging:
    from: [testing]
    gates:
      - smoke_test: true
      - latency: {max_ms: 5000, percentile: 95, runs: 5}
      - artifacts: [requirements.txt, "run:reports/eval.txt"]
  production:
    from: [staging]
    gates:
      - approvals: {count: 1, role: ml-lead}
retention:
  archived: 30d
"""


def test_gates_pass_and_fail(client: Client) -> None:
    policy = client.apply_policy(POLICY)
    assert (policy.name, policy.version) == ("churn", 1)
    assert client.apply_policy(POLICY).version == 1  # unchanged text: same version
    good = log_run_model(
        client, "churn", metrics={"val_auc": 0.91}, artifacts={"reports/eval.txt": "ok"}
    )
    weak = log_run_model(client, "churn", metrics={"val_auc": 0.70}, example=None)
    # metric and signature gates failing, with measured values
    with pytest.raises(PromotionRefusedError) as info:
        client.transition_stage(weak.ref, "testing")
    message = str(info.value)
    assert "metric val_auc: FAILED, measured 0.7, required >= 0.8" in message
    assert "signature: FAILED, measured missing" in message
    refused = client.model_history("churn")[-1]
    assert refused.event == "promotion_refused"
    assert (refused.from_stage, refused.to_stage) == ("development", "testing")
    # source stage not allowed
    with pytest.raises(PromotionRefusedError, match="source stage: FAILED, measured development"):
        client.transition_stage(good.ref, "staging")
    moved = client.transition_stage(good.ref, "testing", comment="looks good")
    assert moved.version.stage.value == "testing"
    assert [g.gate for g in moved.gates] == ["integrity", "metric val_auc", "signature"]
    assert moved.policy_version == 1
    moved = client.transition_stage(good.ref, "staging")
    assert [g.gate for g in moved.gates] == ["integrity", "smoke test", "latency", "artifacts"]
    assert all(g.passed for g in moved.gates)
    # approvals: refused without, then the request moves it once approved by the role
    with pytest.raises(PromotionRefusedError, match="approvals: FAILED, measured 0, required 1"):
        client.transition_stage(good.ref, "production")
    request = client.request_transition(good.ref, "production", comment="ship it")
    req, result, _ = client.approve_transition(request.id[:8], role="analyst")
    assert result is None
    assert req.status == "pending"
    with pytest.raises(ConflictError, match="has already decided"):
        client.approve_transition(request.id, role="ml-lead")
    other = Client(cwd=client._cwd)
    other._registry = _as_user(other, "lead")  # type: ignore[method-assign]
    req, result, _gates = other.approve_transition(request.id, role="ml-lead")
    assert result is not None
    assert req.status == "done"
    assert result.version.stage.value == "production"
    last = client.model_history("churn")[-1]
    assert (last.event, last.from_stage, last.to_stage) == (
        "stage_changed",
        "staging",
        "production",
    )
    assert last.policy_name == "churn"
    assert last.policy_version == 1
    assert any(g["gate"] == "approvals" and g["passed"] for g in last.details["gates"])
    other.close()


def _as_user(client: Client, user: str) -> Any:
    original = client._registry

    def registry(*, write: bool = False) -> Any:
        service = original(write=write)
        service.actor = user
        return service

    return registry


def test_smoke_latency_and_evaluation_gates_fail(client: Client) -> None:
    client.apply_policy(
        "policy: churn\nstages:\n  staging:\n    gates:\n      - smoke_test: true\n"
        "  production:\n    gates:\n      - latency: {max_ms: 0}\n"
        "      - beats: {champion: production, metric: roc_auc}\n"
    )
    broken = log_run_model(client, "churn", Scaled(fail=True))
    with pytest.raises(PromotionRefusedError, match=r"smoke test: FAILED.*model is broken"):
        client.transition_stage(broken.ref, "staging")
    fine = log_run_model(client, "churn")
    results = client.check_transition(fine.ref, "production")
    by_gate = {r.gate: r for r in results}
    assert not by_gate["latency"].passed
    assert by_gate["latency"].required == "p95 <= 0 ms"
    assert by_gate["evaluation"].passed  # the beats gate: no production champion yet
    assert by_gate["evaluation"].measured == "no champion"
    bare = client._registry()
    bare.evaluation = None
    (without,) = [r for r in bare.check(fine.ref, "production")[2] if r.gate == "evaluation"]
    assert not without.passed
    assert "no evaluation component" in without.detail

    class Evaluation:
        def check(self, version: ModelVersion, params: Any) -> GateResult:
            return GateResult("evaluation", True, "+0.02 roc_auc", f"beats {params['champion']}")

    service = client._registry(write=True)
    service.evaluation = Evaluation()
    _, _, results = service.check(fine.ref, "production")
    assert {r.gate: r.passed for r in results}["evaluation"] is True


def test_production_is_exclusive_with_rollback_and_retirement(client: Client) -> None:
    versions = [log_run_model(client, "churn") for _ in range(3)]
    client.transition_stage(versions[0].ref, "production")
    result = client.transition_stage(versions[1].ref, "production")
    assert [v.version for v in result.archived] == [1]
    model = client.get_registered_model("churn")
    assert (model.production, model.rollback_version) == ((2,), 1)
    assert client.get_model_version("churn@production").version == 2
    back = client.rollback_model("churn", comment="v2 misbehaves")
    assert back.version.version == 1
    assert [v.version for v in back.archived] == [2]
    assert client.get_model_version("churn@production").version == 1
    # retirement releases blob references; metadata and audit stay
    client.archive_model_version("churn@3")
    client.set_model_alias("churn", "old", 3)
    refs = BlobRefs(client._open(write=False).engine)
    v3 = client.get_model_version("churn@3")
    assert refs.owners(v3.tree)
    retired = client.retire_model_version("churn@3")
    assert retired.retired
    assert not refs.owners(v3.tree)
    assert "old" not in client.get_registered_model("churn").aliases
    with pytest.raises(ConflictError, match="is retired"):
        client.load_model("churn@3")
    with pytest.raises(ConflictError, match="is retired"):
        client.transition_stage("churn@3", "staging")
    with pytest.raises(ConflictError, match="archive it first"):
        client.retire_model_version("churn@1")
    assert client.get_model_version("churn@latest").version == 2  # retired ones are skipped
    assert client.model_history("churn")[-1].event == "retired"


def test_retention_period_and_multiple_production(client: Client) -> None:
    client.apply_policy(
        "policy: churn\nstages:\n  production:\n    allow_multiple: true\n"
        "retention:\n  archived: 7d\n"
    )
    a, b = log_run_model(client, "churn"), log_run_model(client, "churn")
    client.transition_stage(a.ref, "production")
    assert not client.transition_stage(b.ref, "production").archived
    assert client.get_registered_model("churn").production == (1, 2)
    client.archive_model_version(a.ref)
    with pytest.raises(ConflictError, match="keeps archived versions"):
        client.retire_model_version(a.ref)
    assert client.retire_expired_models() == []
    assert client.retire_model_version(a.ref, force=True).retired


def _promote_in_thread(client: Client, ref: str, errors: list[BaseException]) -> None:
    try:
        client.transition_stage(ref, "production")
    except BaseException as exc:
        errors.append(exc)


def concurrent_promotions(clients: list[Client], refs: list[str]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(refs))

    def run(c: Client, ref: str) -> None:
        barrier.wait()
        _promote_in_thread(c, ref, errors)

    threads = [
        threading.Thread(target=run, args=(c, r)) for c, r in zip(clients, refs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_two_concurrent_promotions_leave_exactly_one(client: Client, workdir: Path) -> None:
    versions = [log_run_model(client, "churn") for _ in range(4)]
    for _ in range(3):
        current = {v.version for v in client.list_model_versions("churn", stage="production")}
        refs = [v.ref for v in versions if v.version not in current]
        others = [Client(cwd=workdir) for _ in refs]
        try:
            concurrent_promotions(others, refs)
        finally:
            for c in others:
                c.close()
        production = client.list_model_versions("churn", stage="production")
        assert len(production) == 1


def _flip_payload(blobs_dir: Path, payload: bytes) -> None:
    for pack in blobs_dir.rglob("*"):
        if not pack.is_file():
            continue
        data = bytearray(pack.read_bytes())
        at = data.find(payload[:64])
        if at >= 0:
            data[at + 10] ^= 0x55
            pack.write_bytes(bytes(data))
            return
    raise AssertionError("payload not found in the blob store")


def test_corrupt_blobs_refuse_promotion(client: Client, workdir: Path) -> None:
    model = Scaled()
    version = log_run_model(client, "churn", model)
    client.close()
    _flip_payload(workdir / ".syllabus" / "blobs", model.payload)
    with Client(cwd=workdir) as fresh:
        with pytest.raises(PromotionRefusedError, match="integrity: FAILED, measured 1 damaged"):
            fresh.transition_stage(version.ref, "staging")
        assert fresh.get_model_version(version.ref).stage.value == "development"
        assert fresh.model_history("churn")[-1].event == "promotion_refused"


def test_pickle_guard_trusts_registry_record_only(client: Client, tmp_path: Path) -> None:
    version = log_run_model(client, "churn", Scaled(5.0))
    assert version.unsafe
    assert version.flavor == "python"
    assert client.load_model(version.ref).predict({"x": [1.0]}) == [5.0]
    # a local copy with the registered bytes is trusted through the registry's record
    copy = tmp_path / "copy"
    shutil.copytree(client._registry().materialize(version), copy)
    assert client.load_model(copy).predict({"x": [2.0]}) == [10.0]
    # the same folder with other bytes is not
    (copy / "model.pkl").write_bytes((copy / "model.pkl").read_bytes() + b"\x00")
    with pytest.raises(UnsafeLoadError, match="matches no registered model version"):
        client.load_model(copy)
    # tampering with the cached copy of a registered version is caught as well
    cached = client._registry().materialize(version)
    (cached / "model.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(UnsafeLoadError):
        client.load_model(version.ref)
    assert client.load_model(copy, trust=True) is not None


def test_signature_is_enforced_through_registry(client: Client) -> None:
    version = log_run_model(client, "churn", example={"x": np.array([1.0, 2.0])})
    loaded = client.load_model(version.ref)
    assert loaded.signature is not None
    with pytest.raises(InvalidArgumentError, match=r"missing column 'x' \(expected float64\)"):
        loaded.predict({"y": [1.0]})
    assert version.signature is not None
    assert version.signature["inputs"]["columns"] == [{"name": "x", "type": "float64"}]


def test_reject_closes_request(client: Client) -> None:
    version = log_run_model(client, "churn")
    request = client.request_transition(version.ref, "staging")
    with pytest.raises(Exception, match="already has a pending request"):
        client.request_transition(version.ref, "staging")
    assert client.reject_transition(request.id, comment="no").status == "rejected"
    with pytest.raises(ConflictError, match="is rejected already"):
        client.approve_transition(request.id)
    assert client.model_history("churn")[-1].event == "rejected"


def test_fluent_log_register_load(workdir: Path) -> None:
    import syllabus
    from syllabus.fluent import set_client

    with Client(cwd=workdir) as c:
        set_client(c)
        try:
            with syllabus.start_run(experiment="fluent"):
                syllabus.log_metric("val_auc", 0.9)
                info = syllabus.log_model(
                    Scaled(4.0), input_example={"x": [1.0]}, registered_name="fluent"
                )
            assert info.flavor == "python"
            assert syllabus.load_model("fluent@1").predict({"x": [1.0]}) == [4.0]
            run_id = c.get_model_version("fluent@1").run_id
            assert syllabus.register_model(f"run:{run_id}", "fluent").version == 2
        finally:
            set_client(None)
    with pytest.raises(InvalidArgumentError, match="no active run"):
        syllabus.log_model(Scaled())


def _promote_in_process(uri: str, blobs: str, ref: str, start: Any, out: Any) -> None:
    """A separate process: its own interpreter, engine and connections."""
    from syllabus import Client as ProcessClient

    with ProcessClient(uri, blobs=blobs) as c:
        start.wait()
        try:
            c.transition_stage(ref, "production")
            out.put(("ok", ref))
        except BaseException as exc:
            out.put(("error", f"{type(exc).__name__}: {exc}"))


def _cross_process_promotions(uri: str, blobs: str) -> None:
    import multiprocessing

    with Client(uri, blobs=blobs) as client:
        versions = [log_run_model(client, "churn") for _ in range(3)]
    ctx = multiprocessing.get_context("spawn")  # no state shared with this process
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_promote_in_process, args=(uri, blobs, v.ref, start, out))
        for v in versions
    ]
    for p in procs:
        p.start()
    try:
        start.set()
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [r for r in results if r[0] == "error"] == []
    with Client(uri, blobs=blobs) as client:
        production = client.list_model_versions("churn", stage="production")
        assert len(production) == 1
        archived = client.list_model_versions("churn", stage="archived")
        assert len(archived) == 2  # each earlier winner was archived by the next promotion
        history = client.model_history("churn")
        promoted = [e for e in history if e.event == "stage_changed" and e.to_stage == "production"]
        assert len(promoted) == 3


def test_promotions_from_three_processes_leave_one_in_production_sqlite(workdir: Path) -> None:
    init_workspace(workdir)
    ws = workdir / ".syllabus"
    _cross_process_promotions(str(workdir), str(ws / "blobs"))


@pytest.mark.postgres
def test_promotions_from_three_processes_leave_one_in_production_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    _cross_process_promotions(pg_url, str(tmp_path / "blobs"))
