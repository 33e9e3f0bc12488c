"""docs/serving.md runs: its Python against a real server, its config through ServingConfig."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syllabus.deploy.serving import ServingConfig
from syllabus.deploy.serving.config import LogSpec
from tests.deploy.serving.conftest import config_for, running

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "serving.md"


def test_guide_python_runs_against_a_server(
    model_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GUIDE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    config = config_for(model_workspace, "churn@1", tmp_path)
    config = ServingConfig.from_dict(
        {
            **config.to_dict(),
            "log": LogSpec(path=str(tmp_path / ".syllabus" / "predictions")).to_dict(),
        }
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "guide"}
    with running(config) as server:
        for n, block in enumerate(blocks[:3]):
            code = block.replace('"http://127.0.0.1:8080"', repr(server.url))
            exec(compile(code, f"{GUIDE}[{n}]", "exec"), namespace)
        assert namespace["answer"]["model_version"] == "1"  # type: ignore[index]
        assert namespace["columns"]["predictions"] == [0, 1]  # type: ignore[index]
        assert namespace["csv"]["predictions"] == [0]  # type: ignore[index]
        server.app.writer.flush()  # type: ignore[union-attr]
        exec(compile(blocks[3], f"{GUIDE}[3]", "exec"), namespace)
    labelled = namespace["labelled"]
    assert sorted(labelled.column("request_id").to_pylist()) == [  # type: ignore[attr-defined]
        "order-1", "order-1", "order-1", "order-2", "order-2",
    ]  # fmt: skip


def test_guide_config_is_a_valid_serving_config() -> None:
    text = GUIDE.read_text()
    (block,) = [b for b in re.findall(r"```json\n(.*?)```", text, flags=re.S) if '"models"' in b]
    config = ServingConfig.from_json(block)
    assert config.models.canary is not None
    assert config.models.canary.percent == 10
    assert config.models.shadow is not None
    assert ServingConfig.from_dict(config.to_dict()) == config
