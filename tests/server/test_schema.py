"""Schemathesis against the OpenAPI document: generated requests for every operation find
no 5xx and no answer that breaks the schema (bounded and deterministic)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from syllabus.server.app import create_app
from syllabus.server.state import ServerConfig

_ROOT = Path(tempfile.mkdtemp(prefix="syllabus-schema-"))
APP = create_app(
    ServerConfig(
        {"default": (f"sqlite:///{_ROOT / 'db.sqlite'}", str(_ROOT / "blobs"))},
        auth=False,
        ui=False,
    )
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


def test_the_document_covers_every_component() -> None:
    labels = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()  # an operation the document describes wrongly
        labels.append(result.ok().label)
    assert len(labels) > 100
    components = ("tracking", "datasets", "code", "registry", "evaluation", "deploy")
    for part in (*components, "monitoring", "pipelines", "blobs"):
        assert any(f"/api/v1/w/{{workspace}}/{part}/" in label for label in labels), part


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=4,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Any) -> None:
    if "workspace" in (case.path_parameters or {}):
        case.path_parameters["workspace"] = "default"  # reach the handlers, not just a 404
    case.call_and_validate(checks=CHECKS)
