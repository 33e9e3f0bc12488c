"""docs/pipelines.md: its flows.py, YAML and Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from syllabus import Client

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.mark.slow
def test_the_guide_examples_run(workdir: Path) -> None:
    python = _blocks("python")
    flows = python[0]
    assert flows.startswith("# flows.py")
    (workdir / "flows.py").write_text(flows)
    (workdir / "flows.yaml").write_text(_blocks("yaml")[0])
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    rows = "".join(f"{a},{int(a > 0)}\n" for a in x)
    (workdir / "churn.csv").write_text("x,label\n" + rows)
    with Client(cwd=workdir) as client:
        client.add_dataset("churn", workdir / "churn.csv")
        first = client.run_pipeline("flows.py:churn", executor="inline")
        assert first.ok, [s.error for s in first.steps]
        assert first.ran == ["prepare", "fit", "score"]
        # the guide's Python example: a changed param re-runs fit and score only
        namespace: dict[str, object] = {}
        exec(compile(python[1], "pipelines.md", "exec"), namespace)
        result = namespace["result"]
        assert result.ran == ["fit", "score"]  # type: ignore[attr-defined]
        assert result.cached == ["prepare"]  # type: ignore[attr-defined]
        fit = result.step("fit")  # type: ignore[attr-defined]
        assert fit.reason == "param c changed (1.0 -> 0.5)"
        assert client.get_model_version("churn@latest").version == 2  # fit logged a model
        yaml_run = client.run_pipeline("flows.yaml", executor="inline")
        assert yaml_run.ok
        assert [t.name for t in client.list_triggers("churn-yaml")] == ["nightly"]
        assert [t.name for t in client.list_triggers("churn")] == ["new-data"]
