"""Environment capture: interpreter, distributions, allow-listed variables (never secrets),
stored once, and diffs with known answers."""

from __future__ import annotations

import dataclasses
import sys

from syllabus.code import CaptureOptions, CodeService
from syllabus.code.env import environment_record, installed_packages, is_secret_name


def test_packages_are_normalized_and_include_this_install() -> None:
    packages = installed_packages()
    assert "sqlalchemy" in packages
    assert "scikit-learn" in packages  # Scikit_Learn / scikit_learn normalized
    assert list(packages) == sorted(packages)


def test_variables_by_allow_list_only_and_never_secrets() -> None:
    environ = {
        "PYTHONHASHSEED": "0",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "MY_API_TOKEN": "t0k3n",
        "HOME": "/home/x",
    }
    record = environment_record(["PYTHONHASHSEED", "MY_API_TOKEN", "UNSET"], environ)
    assert record["variables"] == {"PYTHONHASHSEED": "0"}
    assert is_secret_name("DB_PASSWORD")
    assert is_secret_name("aws_secret_access_key")
    assert not is_secret_name("CUDA_VISIBLE_DEVICES")


def test_capture_is_stored_once(service: CodeService) -> None:
    options = CaptureOptions(env_vars=("PYTHONHASHSEED",))
    a = service.capture_environment(options, {"PYTHONHASHSEED": "0"})
    b = service.capture_environment(options, {"PYTHONHASHSEED": "0"})
    assert a.id == b.id
    assert a.python == ".".join(map(str, sys.version_info[:3]))
    assert service.get_environment(a.id[:8]) == a
    c = service.capture_environment(options, {"PYTHONHASHSEED": "1"})
    assert c.id != a.id


def test_environment_diff_known_answer(service: CodeService) -> None:
    a = service.capture_environment(CaptureOptions(env_vars=()))
    b = dataclasses.replace(
        a,
        python="3.99.0",
        packages={
            **{k: v for k, v in a.packages.items() if k != "click"},
            "sqlalchemy": "9.9.9",
            "brand-new": "1.0",
        },
    )
    diff = CodeService.diff_environments(a, b)
    assert diff.added == {"brand-new": "1.0"}
    assert diff.removed == {"click": a.packages["click"]}
    assert diff.changed == {"sqlalchemy": (a.packages["sqlalchemy"], "9.9.9")}
    assert diff.other == {"python": (a.python, "3.99.0")}
    assert not CodeService.diff_environments(a, a)
