"""``syllabus reproduce`` end to end: a training script committed in a real git repository
reads a dataset version and runs once through the fluent API; reproducing it re-runs the
script from its code snapshot in a fresh folder and compares the metrics."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from syllabus import Client
from tests.code.conftest import GIT_ENV, make_repo, notebook, write_nb
from tests.fixtures.cli import Runner

TRAIN = """\
import os
import shlex
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

import syllabus
import syllabus.data

C = float(sys.argv[1])
with syllabus.start_run(params={"C": C}) as run:
    version = syllabus.data.get("churn@1")
    run.log_input(version, role="train")
    folder = Path(os.environ.get("SYLLABUS_INPUT_TRAIN") or version.path())
    data = np.loadtxt(folder / "train.csv", delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1]
    model = LogisticRegression(C=C).fit(x, y)
    syllabus.log_metric("accuracy", float(model.score(x, y)))
    syllabus.log_metric("coef", float(model.coef_[0, 0]))
    syllabus.log_metric("rows", float(len(y)))
"""

NOISY = """\
import os
import shlex

import syllabus

with syllabus.start_run():
    syllabus.log_metric("stable", 1.0)
    syllabus.log_metric("noise", int.from_bytes(os.urandom(4), "big") / 2**32)
"""

ROWS = "x1,x2,y\n" + "".join(
    f"{i / 10:.1f},{(i * 7 % 11) / 10:.1f},{int(i % 3 == 0)}\n" for i in range(30)
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")} | GIT_ENV


def _run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a script in ``workdir`` and return the id of the run it started."""
    full = _env() | (env or {})
    subprocess.run([sys.executable, *args], cwd=workdir, env=full, check=True, timeout=120)
    with Client(cwd=workdir) as client:
        return client.search_runs(order_by=["start_time desc"], max_results=1)[0].id


@pytest.fixture
def project(workdir: Path) -> Path:
    """A repository with ``train.py`` and ``noisy.py`` committed, a workspace, and dataset
    ``churn@1`` added from ``data/train.csv`` (not in git)."""
    make_repo(
        workdir,
        {"train.py": TRAIN, "noisy.py": NOISY, ".gitignore": ".syllabus/\ndata/\n"},
    )
    (workdir / "data").mkdir()
    (workdir / "data" / "train.csv").write_text(ROWS)
    with Client(cwd=workdir) as client:
        client.add_dataset("churn", workdir / "data")
    return workdir


def test_reproduce_round_trip(project: Path, tmp_path: Path) -> None:
    original = _run(project, "train.py", "0.5")
    out = tmp_path / "repro"
    with Client(cwd=project) as client:
        assert [i.name for i in client.list_inputs(original)] == ["churn@1"]
        verdict = client.reproduce(original, folder=out)
        assert verdict.reproduced, (verdict.reason, verdict.output)
        assert verdict.reason.startswith("reproduced: 3 metric(s)")
        assert {m.key for m in verdict.metrics} == {"accuracy", "coef", "rows"}
        assert all(m.ok and m.abs_diff is not None and m.abs_diff < 1e-12 for m in verdict.metrics)
        assert verdict.new_run_id is not None
        assert verdict.new_run_id != original
        new = client.get_run(verdict.new_run_id)
        assert new.tags["syllabus.reproduces"] == original
        assert new.params == client.get_run(original).params
        # the code came from the snapshot and the data from the version, into the folder
        assert (out / "code" / "train.py").read_text() == TRAIN
        assert (out / "inputs" / "train" / "train.csv").read_text() == ROWS
        assert verdict.plan.inputs[0].variable == "SYLLABUS_INPUT_TRAIN"
        # the reproduction read its input from the folder it was given and logged it too
        assert [i.name for i in client.list_inputs(verdict.new_run_id)] == ["churn@1"]
        # a tighter check on a reproduction of the reproduction still passes: exact match
        again = client.reproduce(verdict.new_run_id, tolerance=0, abs_tolerance=0)
        assert again.reproduced, again.reason


def test_non_deterministic_run_names_the_metric(
    project: Path, syllabus_here: Runner, tmp_path: Path
) -> None:
    original = _run(project, "noisy.py")
    with Client(cwd=project) as client:
        verdict = client.reproduce(original, folder=tmp_path / "a")
    assert not verdict.reproduced
    assert [m.key for m in verdict.differing] == ["noise"]
    noise = verdict.differing[0]
    assert noise.new is not None
    assert noise.abs_diff == pytest.approx(abs(noise.new - noise.original))
    assert "noise" in verdict.reason
    assert "stable" not in verdict.reason
    assert f"differs by {noise.abs_diff:.3g}" in verdict.reason

    # the CLI prints the verdict and exits 1; a loose enough tolerance reproduces
    result = syllabus_here("reproduce", original)
    assert result.code == 1, result.stderr
    assert "not reproduced: noise" in result.stdout
    loose = syllabus_here("reproduce", original, "--abs-tolerance", "1", "--json")
    assert loose.code == 0, loose.stdout + loose.stderr
    data = json.loads(loose.stdout)
    assert data["reproduced"] is True
    assert data["new_run_id"]


def test_dry_run_changes_nothing(project: Path, syllabus_here: Runner, tmp_path: Path) -> None:
    original = _run(project, "train.py", "1.0")
    ws = project / ".syllabus"

    def state() -> tuple[int, list[tuple[str, int]]]:
        with Client(cwd=project) as client:
            runs = len(client.search_runs())
        files = sorted(
            (str(p.relative_to(ws)), p.stat().st_size)
            for p in ws.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))
        )
        return runs, files

    before = state()
    folder = tmp_path / "planned"
    result = syllabus_here("reproduce", "latest", "--dry-run", "--folder", str(folder))
    assert result.code == 0, result.stderr
    assert "train.py 1.0" in result.stdout
    assert "input train" in result.stdout
    assert "churn@1" in result.stdout
    assert "dry run" in result.stderr
    plan = syllabus_here("reproduce", "latest", "--dry-run", "--json")
    assert plan.code == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["run_id"] == original
    assert data["command"][1:] == ["train.py", "1.0"]
    assert data["variables"]["SYLLABUS_REPRODUCE_OF"] == original
    assert json.loads(data["variables"]["SYLLABUS_PARAMS"]) == {"C": "1.0"}
    assert data["environment"] is not None
    assert not folder.exists()
    assert state() == before


def test_environment_mismatches_and_venv_that_cannot_be_made(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allow-listed variable that differs is listed as a mismatch; with venv=True and no
    package index reachable, the verdict says the venv could not be made and runs here."""
    allow = {"SYLLABUS_CODE_ENV_VARS": "REPRO_FLAVOUR"}
    original = _run(project, "train.py", "0.5", env={**allow, "REPRO_FLAVOUR": "vanilla"})
    monkeypatch.setenv("SYLLABUS_CODE_ENV_VARS", "REPRO_FLAVOUR")
    monkeypatch.setenv("REPRO_FLAVOUR", "mint")
    with Client(cwd=project) as client:
        plan = client.plan_reproduction(original)
        assert plan.environment is not None
        assert dict(plan.environment.other) == {"env.REPRO_FLAVOUR": ("vanilla", "mint")}
        assert not plan.environment.changed
        assert not plan.environment.removed
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-packages"))
        verdict = client.reproduce(original, folder=tmp_path / "v", venv=True, venv_timeout=120)
    assert verdict.reproduced, verdict.reason
    assert verdict.venv is None
    assert any("environment differs" in n for n in verdict.notes), verdict.notes
    cannot = [n for n in verdict.notes if "could not create the venv" in n]
    assert cannot, verdict.notes
    assert "runs with this interpreter instead" in cannot[0]


def test_not_reproducible_runs_say_why(project: Path, tmp_path: Path) -> None:
    from syllabus.code import EntryPoint
    from syllabus.errors import InvalidArgumentError

    with Client(cwd=project) as client:
        run = client.create_run()
        client.capture_code(run.id, folder=project, entry=EntryPoint(None, ()))
        client.end_run(run.id)
        with pytest.raises(InvalidArgumentError, match="no entry script"):
            client.plan_reproduction(run.id)
        with pytest.raises(InvalidArgumentError, match="no entry script"):
            client.reproduce(run.id, folder=tmp_path / "never")
        assert not (tmp_path / "never").exists()
        failing = client.create_run()
        client.capture_code(failing.id, folder=project, entry=EntryPoint("train.py", ("x",)))
        client.end_run(failing.id)
        verdict = client.reproduce(failing.id, folder=tmp_path / "f")
    assert not verdict.reproduced
    assert verdict.reason == "the entry point exited with code 1"
    assert "ValueError" in verdict.output


def test_guide_commands_run(project: Path, syllabus_here: Runner) -> None:
    """The console lines of docs/code.md's reproduce section, on the training script."""
    guide = Path(__file__).resolve().parents[2] / "docs" / "code.md"
    section = guide.read_text().split("## Reproducing a run", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.removeprefix("$ ").split("  #", 1)[0].strip()
        for line in section.splitlines()
        if line.startswith("$ syllabus ")
    ]
    assert len(commands) == 3
    original = _run(project, "train.py", "0.5")
    for command in commands:
        result = syllabus_here(*shlex.split(command)[1:])
        assert result.code == 0, f"{command!r}: {result.stdout}{result.stderr}"
    with Client(cwd=project) as client:
        runs = client.search_runs(order_by=["start_time asc"])
    # the dry run made none; the second reproduced `latest`, the first reproduction
    assert [r.tags.get("syllabus.reproduces") for r in runs] == [None, original, runs[1].id]


NOTEBOOK_CELLS = (
    ("markdown", "# Analysis\nA notebook that trains and logs one run."),
    ("code", "%load_ext syllabus"),
    ("code", "import numpy as np\nimport syllabus\nscale = 0.5"),
    (
        "code",
        "with syllabus.start_run(experiment='nb') as run:\n"
        "    syllabus.log_param('scale', scale)\n"
        "    syllabus.log_metric('score', float(np.arange(10).sum() * scale))",
    ),
)


def test_notebook_run_is_reproduced_from_its_checkpoint(project: Path, tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    nb_path = write_nb(project / "nb" / "analysis.ipynb", notebook(*NOTEBOOK_CELLS))
    subprocess.run(["git", "add", "-A"], cwd=project, env=_env(), check=True)
    subprocess.run(["git", "commit", "-qm", "nb"], cwd=project, env=_env(), check=True)
    # run it headless the way a kernel does: the notebook is the entry point
    original = _run(project / "nb", "-m", "syllabus.code.nbrun", "analysis.ipynb")
    # then edit the notebook without committing: the run's checkpoint still has 0.5
    nb_path.write_text(nb_path.read_text().replace("scale = 0.5", "scale = 0.7"))
    with Client(cwd=project) as client:
        code = client.get_run_code(original)
        assert code.entry_point == "nb/analysis.ipynb"
        checkpoint = client.run_notebook_checkpoint(original)
        assert checkpoint is not None
        assert checkpoint.path == "nb/analysis.ipynb"
        plan = client.plan_reproduction(original)
        assert plan.command[1:] == ("-m", "syllabus.code.nbrun", "analysis.ipynb")
        verdict = client.reproduce(original, folder=tmp_path / "r")
        assert verdict.reproduced, (verdict.reason, verdict.output)
        assert [(m.key, m.new) for m in verdict.metrics] == [("score", 22.5)]
        restored = (tmp_path / "r" / "code" / "nb" / "analysis.ipynb").read_text()
        assert "scale = 0.5" in restored
        # the reproduction ran the notebook itself (it is its entry point, in the folder)
        assert client.get_run_code(verdict.new_run_id or "").entry_point.endswith("analysis.ipynb")


def test_failing_notebook_cell_is_named(project: Path, tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    cells = (
        *NOTEBOOK_CELLS,
        ("code", "import os\nif os.environ.get('SYLLABUS_REPRODUCE_OF'):\n    1 / 0"),
    )
    write_nb(project / "nb.ipynb", notebook(*cells))
    original = _run(project, "-m", "syllabus.code.nbrun", "nb.ipynb")
    with Client(cwd=project) as client:
        verdict = client.reproduce(original, folder=tmp_path / "f")
    assert not verdict.reproduced
    assert verdict.reason == "the entry point exited with code 1"
    assert "cell 4 failed: ZeroDivisionError" in verdict.output


def test_nbrun_without_ipython_runs_plain_cells_and_refuses_magics(tmp_path: Path) -> None:
    from syllabus.code.nbrun import code_cells, needs_ipython

    nb = notebook(("code", "x = 1"), ("markdown", "text"), ("code", "%time y = 2"), ("code", " "))
    assert code_cells(nb) == ["x = 1", "%time y = 2"]
    assert [needs_ipython(c) for c in code_cells(nb)] == [False, True]
    assert needs_ipython("!ls")
    assert needs_ipython("len?")
    assert not needs_ipython("# why?")
    plain = write_nb(
        tmp_path / "plain.ipynb", notebook(("code", "open('out.txt', 'w').write('ok')"))
    )
    blocker = tmp_path / "noipython"
    blocker.mkdir()
    (blocker / "IPython.py").write_text("raise ImportError('hidden for this test')\n")
    env = _env() | {"PYTHONPATH": str(blocker)}
    cmd = [sys.executable, "-m", "syllabus.code.nbrun"]
    done = subprocess.run(
        [*cmd, str(plain)], cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text() == "ok"
    magic = write_nb(tmp_path / "magic.ipynb", notebook(("code", "x = 1"), ("code", "%time x")))
    refused = subprocess.run(
        [*cmd, str(magic)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "cell 2 uses IPython syntax" in refused.stderr


def test_venv_gets_the_recorded_packages_from_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--venv``'s environment: a real venv, real pip, a local index (a folder of wheels)
    holding the recorded version; syllabus itself comes from this installation."""
    from syllabus.client.reproduce import _make_venv

    project = tmp_path / "probe"
    (project / "syllabus_probe").mkdir(parents=True)
    (project / "syllabus_probe" / "__init__.py").write_text("VALUE = 'probe'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "syllabus-probe"\nversion = "1.2.3"\n'
        '[tool.setuptools]\npackages = ["syllabus_probe"]\n'
    )
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "--no-index", "-w", str(wheels), str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    packages = {"syllabus-probe": "1.2.3", "pip": "0.0.1", "syllabus": "0.0.0"}
    python, notes = _make_venv(tmp_path / "venv", packages, 300)
    assert python is not None, notes
    assert python.is_relative_to(tmp_path / "venv")
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, importlib.util as u, syllabus_probe; "
            "print(m.version('syllabus-probe'), syllabus_probe.VALUE, "
            "u.find_spec('syllabus').origin)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert probe[:2] == ["1.2.3", "probe"]
    import syllabus

    assert probe[2] == syllabus.__file__  # from this installation, not from an index
    assert "ran in a venv with the 1 recorded packages" in notes[0]

    # a version the index does not have: no venv, and the note says why
    missing, why = _make_venv(tmp_path / "venv2", {"syllabus-probe": "9.9.9"}, 300)
    assert missing is None
    assert "pip could not install the 1 recorded packages" in why[0]
