"""The ``syllabus deploy`` commands through the real console script: errors on one line,
nothing recorded on bad input, JSON output, batch scoring with its summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syllabus import Client
from tests.deploy.conftest import SPEC, register_linear
from tests.fixtures.cli import Runner, init_here


def test_bad_spec_is_one_line_and_changes_nothing(syllabus: Runner, workdir: Path) -> None:
    init_here(workdir)
    (workdir / "bad.yaml").write_text(SPEC.replace("workers: 1", "wokers: 1"))
    result = syllabus("deploy", "apply", "bad.yaml", "--env", "staging")
    assert result.code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "bad.yaml:4: the spec: unknown key 'wokers'" in result.stderr
    result = syllabus("deploy", "status", "--json")
    assert (result.code, json.loads(result.stdout)) == (0, [])
    result = syllabus("deploy", "history", "churn")
    assert result.code == 1
    assert "no deployment named 'churn'" in result.stderr


def test_render_history_and_batch(syllabus: Runner, workdir: Path) -> None:
    init_here(workdir)
    with Client(cwd=workdir) as client:
        register_linear(client, "churn", 2.0)
        register_linear(client, "churn", 3.0)
        (workdir / "new.csv").write_text("x\n1\n2\n3\n4\n5\n")
        client.add_dataset("new", workdir / "new.csv")
    spec = SPEC.replace("target: local", "target: kubernetes")
    (workdir / "deploy.yaml").write_text(spec)
    result = syllabus("deploy", "render", "deploy.yaml", "--env", "production", "--out", "out")
    assert result.code == 0, result.stderr
    assert "out/manifests.yaml" in result.stdout
    result = syllabus("deploy", "apply", "deploy.yaml", "--env", "production", "--json")
    assert result.code == 0, result.stderr
    applied = json.loads(result.stdout)
    assert (applied["revision"], applied["status"], applied["model_ref"]) == (
        1, "rendered", "churn@2",
    )  # fmt: skip
    result = syllabus("deploy", "history", "churn", "--csv")
    assert result.stdout.splitlines()[0].startswith("service,env,revision,status,models")
    result = syllabus(
        "deploy", "batch", "churn@1", "--data", "new@1", "--output", "scored",
        "--chunk-rows", "2", "--workers", "1", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["output"], summary["rows"], summary["chunks"]) == ("scored@1", 5, 3)
    with Client(cwd=workdir) as client:
        out = client.dataset("scored@1").to_pandas()
    assert list(out["prediction"]) == pytest.approx([2.0 * x for x in range(1, 6)])
    result = syllabus("deploy", "batch", "churn@1", "--data", "new@9", "--output", "s")
    assert result.code == 1
    assert result.stderr.startswith("Error: ")
