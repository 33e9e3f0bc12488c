"""The end-to-end demo (``make demo``) on real components: the whole loop runs (data,
tracking, registry, deployment, monitoring, the retraining pipeline, maturity), it tells
the truth about the workspace it leaves behind, stops every server it started, and
refuses a folder that is not empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.demo import run_demo
from syllabus.errors import InvalidArgumentError
from tests.fixtures.cli import Runner
from tests.fixtures.demo import DemoRun, copy_demo, demo_client


@pytest.mark.slow
def test_demo_runs_the_whole_loop(demo_run: DemoRun) -> None:
    folder, out, err = demo_run.folder, demo_run.stdout, demo_run.stderr
    assert demo_run.code == 0, out[-3000:] + err[-3000:]
    assert "servers left running" not in err
    assert "syllabus maturity: level 3" in out
    assert "Explore it" in out
    assert "syllabus ui" in out

    with Client(folder / ".syllabus", cwd=folder, create=False) as client:
        # data: two versions of the scans and of the holdout; the new scanner moved means
        assert [v.version for v in client.list_dataset_versions("scans")] == [2, 1]
        assert [v.version for v in client.list_dataset_versions("holdout")] == [2, 1]
        diff = client.diff_datasets("scans@1", "scans@2")
        means = {c.column: (c.a, c.b) for t in diff.tables for c in t.stats if c.stat == "mean"}
        before, after = means["worst_area"]
        assert isinstance(before, float)
        assert isinstance(after, float)
        assert after > before * 1.3

        # tracking: three training runs with their data version, code and environment
        runs = {r.name: r for r in client.search_runs("scans")}
        assert {"logistic-2", "gbm-shallow", "gbm"} <= set(runs)
        for run in (runs["logistic-2"], runs["gbm-shallow"], runs["gbm"]):
            assert run.status == "finished"
            assert [(i.name, i.role) for i in client.list_inputs(run.id)] == [("scans@1", "train")]
            code = client.get_run_code(run.id)
            assert code.entry_point == "train.py"
            assert code.environment is not None
            if shutil.which("git"):
                assert code.snapshot.git is not None
                assert not code.snapshot.dirty
        reproduced = client.search_runs(
            "scans", filter=f"tags.syllabus.reproduces = '{runs['logistic-2'].id}'"
        )
        assert len(reproduced) == 1

        # registry: gbm was the champion; gbm-shallow was refused for production
        history = client.model_history("tumour")
        refused = [e for e in history if e.event == "promotion_refused"]
        assert [(e.version, e.to_stage) for e in refused] == [(2, "production")]
        to_production = [
            e.version for e in history if e.event == "stage_changed" and e.to_stage == "production"
        ]
        champion, challenger = to_production
        assert client.get_model_version(f"tumour@{champion}").run_id == runs["gbm"].id

        # monitoring: the drifted window fired the drift alert
        windows = client.monitor_windows("tumour-production")
        assert windows[0].summary["drift_share"] < 0.3
        assert windows[-1].summary["drift_share"] > 0.3
        assert "worst_area" in windows[-1].summary["drifted"]
        rules = {a.rule for a in client.list_alerts("tumour-production")}
        assert "drift_share > 0.3" in rules

        # the loop: one firing ran the pipeline; the challenger beat the champion with
        # significance, went out as a canary, then alone
        (firing,) = client.list_firings("retrain")
        assert firing.status == "succeeded"
        production = client.get_model_version("tumour@production")
        assert production.version == challenger
        evaluations = client.list_evaluations(f"tumour@{challenger}")
        better = {c.metric for e in evaluations for c in e.comparisons if c.verdict == "better"}
        assert {"roc_auc", "accuracy"} <= better
        revisions = sorted(
            client.deployment_history("tumour", "production"), key=lambda r: r.revision
        )
        assert [(r.model_ref, r.canary_ref) for r in revisions] == [
            (f"tumour@{champion}", None),
            (f"tumour@{champion}", f"tumour@{challenger}"),
            (f"tumour@{challenger}", None),
        ]
        assert client.maturity().level == 3
        assert client.fsck().ok


@pytest.mark.slow
def test_a_copy_of_the_demo_workspace_is_a_workspace_of_its_own(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    """The tests that change the demo's workspace (the web UI's) work on a copy: the copy
    reads and serves the demo's models, and what is written to it stays there."""
    copy = copy_demo(demo_run, tmp_path / "copy")
    with demo_client(copy) as client:
        assert client.fsck().ok
        assert client.settings.workspace == copy / ".syllabus"
        model = client.load_model("tumour@production")
        rows = client.dataset("holdout@2").to_arrow().slice(0, 5)
        assert (
            len(model.predict({c: rows.column(c).to_numpy() for c in rows.column_names[:-1]})) == 5
        )
        client.create_run("scans", name="only-in-the-copy")
        client.add_dataset("notes", copy / "train.py")
    with demo_client(demo_run.folder) as original:
        assert [
            r.name for r in original.search_runs("scans", filter="name = 'only-in-the-copy'")
        ] == []
        assert "notes" not in [d.name for d in original.list_datasets()]


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path, syllabus: Runner) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        run_demo(folder)
    result = syllabus("demo", "--dir", str(folder))
    assert result.code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "not empty" in lines[0]
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
