"""Provision DVC in its own venv and drive it as a subprocess, for side-by-side benchmarks.

DVC is never a dependency of Syllabus: it is installed with pip into ``bench/.venv-dvc``
(gitignored) and only ever run as ``<venv>/bin/dvc``. When it cannot be installed (no
network, a build failure, no ``git``), :func:`provision` returns ``None`` and a reason, and
the benchmark drops the DVC column instead of failing.

Every repository made here is isolated: its own ``git init`` + ``dvc init`` in a temp
folder, analytics and the update check off, the site cache inside the temp folder, and no
remote (``dvc add`` never talks to one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DVC_VERSION", "VENV_DIR", "Dvc", "provision"]

DVC_VERSION = "3.67.1"
"""The version measured in the research anchor (shared/research/anchor_dvc.md)."""

VENV_DIR = Path(__file__).resolve().parent / ".venv-dvc"

_PIP_TIMEOUT = 900  # seconds; a cold install of dvc and its ~80 dependencies


def _run(cmd: list[str], *, timeout: float | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def _installed_version(dvc_bin: Path) -> str | None:
    if not dvc_bin.exists():
        return None
    try:
        proc = _run([str(dvc_bin), "--version"], timeout=120, env=_base_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return out.splitlines()[-1].strip() if proc.returncode == 0 and out else None


def _base_env(site_cache_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_NO_UPDATER"] = "1"  # harmless where unknown; core.check_update is set too
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.pop("VIRTUAL_ENV", None)
    if site_cache_dir is not None:
        env["DVC_SITE_CACHE_DIR"] = str(site_cache_dir)
    return env


def provision(*, log=print, venv_dir: Path = VENV_DIR) -> tuple[Dvc | None, str]:
    """Return a ready :class:`Dvc` and a one-line status, or ``(None, reason)``.

    Reuses an existing venv; otherwise creates it and runs ``pip install dvc==DVC_VERSION``,
    falling back to the newest ``dvc`` if that pin cannot be installed.
    """
    if shutil.which("git") is None:
        return None, "git is not installed"
    dvc_bin = venv_dir / "bin" / "dvc"
    version = _installed_version(dvc_bin)
    if version is not None:
        return Dvc(dvc_bin, version), f"DVC {version} from {venv_dir}"

    log(f"DVC: installing dvc=={DVC_VERSION} into {venv_dir} (separate venv; once) ...")
    started = time.perf_counter()
    try:
        if not (venv_dir / "bin" / "python").exists():
            proc = _run([sys.executable, "-m", "venv", str(venv_dir)], timeout=300)
            if proc.returncode != 0:
                return None, f"could not create {venv_dir}: {_tail(proc.stderr)}"
        pip = [str(venv_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
        pip += ["--disable-pip-version-check"]
        proc = _run([*pip, f"dvc=={DVC_VERSION}"], timeout=_PIP_TIMEOUT)
        if proc.returncode != 0:
            log(f"DVC: dvc=={DVC_VERSION} did not install ({_tail(proc.stderr, 1)}); trying dvc")
            proc = _run([*pip, "dvc"], timeout=_PIP_TIMEOUT)
            if proc.returncode != 0:
                return None, f"pip install dvc failed: {_tail(proc.stderr)}"
    except subprocess.TimeoutExpired as exc:
        return None, f"pip install dvc timed out after {exc.timeout:.0f} s (no network?)"
    except OSError as exc:
        return None, f"could not install dvc: {exc}"
    version = _installed_version(dvc_bin)
    if version is None:
        return None, f"dvc installed into {venv_dir} but `dvc --version` fails"
    took = time.perf_counter() - started
    log(f"DVC: {version} installed in {took:.0f} s")
    return Dvc(dvc_bin, version), f"DVC {version} from {venv_dir} (installed now)"


class DvcError(RuntimeError):
    """A DVC or git command failed; the message carries its stderr."""


@dataclass(frozen=True)
class Dvc:
    """The ``dvc`` executable of the bench venv."""

    binary: Path
    version: str

    def init_repo(self, repo: Path) -> Repo:
        """``git init`` + ``dvc init`` in ``repo`` (created), with an isolated site cache."""
        repo.mkdir(parents=True, exist_ok=True)
        site_cache = repo.parent / f".{repo.name}-dvc-site-cache"
        site_cache.mkdir(exist_ok=True)
        env = _base_env(site_cache)
        r = Repo(self, repo, env)
        r.git("init", "-q")
        r.dvc("init", "-q")
        r.dvc("config", "--local", "core.site_cache_dir", str(site_cache))
        r.dvc("config", "--local", "core.check_update", "false")
        r.dvc("config", "--local", "core.analytics", "false")
        return r


@dataclass(frozen=True)
class Repo:
    """One fresh git + DVC repository."""

    tool: Dvc
    root: Path
    env: dict[str, str]

    def git(self, *args: str) -> None:
        self._check(["git", *args])

    def dvc(self, *args: str) -> None:
        self._check([str(self.tool.binary), *args])

    def _check(self, cmd: list[str]) -> None:
        proc = subprocess.run(
            cmd,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if proc.returncode != 0:
            raise DvcError(f"`{' '.join(cmd[-3:])}` exited {proc.returncode}: {_tail(proc.stderr)}")

    def timed(self, *args: str) -> float:
        """Wall-clock seconds of one ``dvc`` CLI call (start-up included, as a user pays it)."""
        started = time.perf_counter()
        self.dvc(*args)
        return time.perf_counter() - started

    def add(self, target: str) -> float:
        """Time ``dvc add -q target``."""
        return self.timed("add", "-q", target)

    @property
    def cache_dir(self) -> Path:
        return self.root / ".dvc" / "cache"
