"""The ``local`` target: ``syllabus serve --config`` processes on this machine.

Each revision has a folder ``<deployments>/<service>/<env>/rev-<n>/`` holding
``serving.json`` (the server's config), ``server.log`` (its output), ``server.pid`` and,
once the server is ready, ``ready.json`` (written by the server).

Rollout: the new revision starts next to the live one. With ``port: 0`` (the default) it
gets its own free port; with a fixed ``port: N`` every revision binds N with SO_REUSEPORT
(the kernel spreads connections over both while they overlap). The new revision counts as
ready when its own ``ready.json`` names its pid and ``/v2/health/ready`` answers 200 on its
address; only then is the previous revision stopped. A revision that exits, or is not ready
within ``readiness_timeout``, is killed; the previous one was never touched.

Each revision is a supervisor process (``python -m syllabus.deploy.targets.supervise``,
its pid in ``server.pid``) running the server as its child and starting it again if it
dies after it was ready (see :mod:`~syllabus.deploy.targets.supervise`). They run in their
own session (they outlive the command that started them); stopping sends SIGTERM (the
server flushes its prediction log) and SIGKILL to the session after a grace period.
A pid is only signalled while its command line still names the revision's config file, so
a recycled pid is never hit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from syllabus.deploy.models import Health
from syllabus.deploy.targets.base import Plan, serving_config
from syllabus.errors import DeploymentFailedError

__all__ = ["LocalTarget", "free_port", "process_alive"]

log = logging.getLogger(__name__)

CONFIG_FILE: Final = "serving.json"
LOG_FILE: Final = "server.log"
PID_FILE: Final = "server.pid"
READY_FILE: Final = "ready.json"
STOP_GRACE_S: Final = 10.0
_POLL_S: Final = 0.1
_LOAD_FAILED: Final = "failed to load"  # the server's reason when a model cannot load


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _reap(pid: int) -> None:
    """Collect an exited child of this process (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def process_alive(pid: int, config: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, with ``config``, still serves that file."""
    import psutil

    _reap(pid)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return config is None or config in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _server_pid(folder: Path) -> int | None:
    """The server pid the revision's ready file names (None before it is ready)."""
    try:
        doc = json.loads((folder / READY_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid = doc.get("pid") if isinstance(doc, dict) else None
    return pid if isinstance(pid, int) else None


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - display only
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}"


def _ready(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(f"{url}/v2/health/ready", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"no answer ({type(exc).__name__})"
    if response.status_code == 200:
        return True, "ready"
    try:
        detail = str(response.json().get("detail") or "")
    except ValueError:
        detail = response.text.strip().replace("\n", " ")[:200]
    return False, f"HTTP {response.status_code}: {detail}".strip(": ")


class LocalTarget:
    """Supervised server processes on this machine."""

    name = "local"

    def check(self) -> None:
        """Always available."""

    def render(self, plan: Plan) -> list[Path]:
        path = self._write_config(plan, plan.config["port"] or 0)
        return [path]

    def _write_config(self, plan: Plan, port: int) -> Path:
        plan.folder.mkdir(parents=True, exist_ok=True)
        doc = serving_config(
            plan,
            port=port,
            reuse_port=bool(plan.config["port"]),
            ready_file=str(plan.folder / READY_FILE),
        )
        path = plan.folder / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def _spawn(self, plan: Plan, config: Path) -> int:
        (plan.folder / READY_FILE).unlink(missing_ok=True)
        logfile = plan.folder / LOG_FILE
        argv = [sys.executable, "-m", "syllabus.deploy.targets.supervise", str(config)]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(logfile), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # posix_spawn (not Popen): the server outlives this process; a new session keeps
        # terminal signals (Ctrl-C on the command that started it) away from it. Its config
        # names the store explicitly, so the working folder does not matter.
        pid = os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
        (plan.folder / PID_FILE).write_text(f"{pid}\n")
        return pid

    def start(self, plan: Plan, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        host = str(plan.config["host"])
        fixed = int(plan.config["port"] or 0)
        port = fixed or free_port(host)
        config = self._write_config(plan, port)
        url = _url(host, port)
        runtime: dict[str, Any] = {
            "target": self.name,
            "folder": str(plan.folder),
            "config": str(config),
            "log": str(plan.folder / LOG_FILE),
            "host": host,
            "port": port,
            "url": url,
        }
        pid = self._spawn(plan, config)
        runtime["pid"] = pid
        try:
            why = self._wait(plan, runtime, fixed)
        except BaseException:  # interrupted (Ctrl+C): do not leave an orphan behind
            self.stop(runtime)
            raise
        if why is None:
            return runtime
        self.stop(runtime)
        raise DeploymentFailedError(
            f"revision {plan.revision} of {plan.name} ({plan.env}) failed: {why}; "
            f"log: {plan.folder / LOG_FILE}"
        )

    def _wait(self, plan: Plan, runtime: Mapping[str, Any], fixed: int) -> str | None:
        """None once the revision is ready, else why it never will be."""
        pid, url = int(runtime["pid"]), str(runtime["url"])
        timeout = float(plan.config["readiness_timeout"])
        deadline = time.monotonic() + timeout
        why = "it did not start"
        while True:
            if not process_alive(pid):
                why = f"the server exited: {_tail(plan.folder / LOG_FILE) or 'no output'}"
                break
            if self._own_ready_file(plan.folder, pid):
                ok, why = _ready(url)
                if ok:
                    return None
            else:
                ok, answer = _ready(url, timeout=0.5)
                why = f"not ready: {answer}" if not fixed else "its ready file is not written"
                if not fixed and _LOAD_FAILED in answer:
                    break  # it will never be ready: no need to wait for the timeout
            if time.monotonic() >= deadline:
                return f"not ready within {timeout:g}s ({why})"
            time.sleep(_POLL_S)
        return why

    @staticmethod
    def _own_ready_file(folder: Path, pid: int) -> bool:
        """Whether the ready file names a server that supervisor ``pid`` started."""
        import psutil

        server = _server_pid(folder)
        if server is None:
            return False
        try:
            return bool(psutil.Process(server).ppid() == pid)
        except psutil.Error:
            return False

    def stop(self, runtime: Mapping[str, Any]) -> None:
        pid = runtime.get("pid")
        config = runtime.get("config")
        if not isinstance(pid, int) or not process_alive(pid, config):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(_POLL_S)
        if process_alive(pid):
            log.warning("server %d did not stop within %gs; killing it", pid, STOP_GRACE_S)
        # The whole session: uvicorn's worker processes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(_POLL_S)
        folder = runtime.get("folder")
        if isinstance(folder, str):
            (Path(folder) / READY_FILE).unlink(missing_ok=True)

    def health(self, runtime: Mapping[str, Any]) -> Health:
        pid = runtime.get("pid")
        url = runtime.get("url")
        if not isinstance(pid, int) or not isinstance(url, str):
            return Health("unknown", "no process recorded")
        if not process_alive(pid, runtime.get("config")):
            return Health("not running", f"process {pid} is gone", pid=pid, url=url)
        ok, detail = _ready(url)
        folder = runtime.get("folder")
        server = _server_pid(Path(folder)) if isinstance(folder, str) else None
        if server is not None:
            detail = f"{detail}; server process {server}"
        return Health("ready" if ok else "unready", detail, pid=pid, url=url)
