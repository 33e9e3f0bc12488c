"""The ``docker`` target: a Dockerfile and build context per revision; built and run where
a Docker daemon is reachable.

The context (``<revision folder>/docker/``)::

    Dockerfile          python base image, non-root user, pinned requirements, healthcheck,
                        entrypoint ``python -m syllabus.deploy.targets.container``
    requirements.txt    the models' captured requirements, each pinned (==), and syllabus
    serving.json        the server's config (models named by their pinned reference)
    models.json         each variant's reference, model file and content id
    models/<variant>/   each model version's folder, exported from the registry
    .dockerignore

Inside the image the server loads the baked model folders, checking each model file's
content id against the one the registry recorded (the pickle guard holds without a
registry), and writes its prediction log under ``/data/predictions`` (mount a volume).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from syllabus.deploy.models import Health
from syllabus.deploy.targets.base import Plan, serving_config
from syllabus.errors import DeploymentFailedError, TargetUnavailableError

__all__ = ["CONTAINER_PORT", "DockerTarget", "image_name", "pinned_requirements", "write_context"]

log = logging.getLogger(__name__)

CONTAINER_PORT: Final = 8080
APP_DIR: Final = "/app"
DATA_DIR: Final = "/data"
USER_ID: Final = 10001
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?\s*==\s*([^\s;#]+)")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?")


def image_name(plan: Plan) -> str:
    """``<docker.image or syllabus-<service>>:<env>-rev<n>`` (lowercase, as Docker wants)."""
    base = plan.config.get("docker", {}).get("image") or f"syllabus-{plan.name}"
    base = re.sub(r"[^a-z0-9._/-]+", "-", base.lower().split(":", 1)[0])
    return f"{base}:{plan.env}-rev{plan.revision}"


def _syllabus_version() -> str:
    from syllabus import __version__

    return __version__


def pinned_requirements(lines: list[str]) -> list[str]:
    """Requirements with exact versions: pinned lines as they are, unpinned ones pinned to
    the version installed here; syllabus with its server extra at this version."""
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        pinned = _PIN.match(line)
        if pinned:
            out[pinned.group(1).lower()] = line
            continue
        named = _NAME.match(line)
        if named is None:
            continue
        name = named.group(1)
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise DeploymentFailedError(
                f"requirement {line!r} has no version and {name} is not installed here to pin it"
            ) from None
        out[name.lower()] = f"{name}{named.group(2) or ''}=={version}"
    out["syllabus"] = f"syllabus[server]=={_syllabus_version()}"
    return [out[k] for k in sorted(out)]


def _dockerfile(base: str) -> str:
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}"
        "/v2/health/ready', timeout=2).status == 200 else 1)"
    )
    return f"""\
# Built by syllabus deploy (docker target); rebuild with: docker build -t IMAGE .
FROM {base}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 SYLLABUS_PREDICTIONS={DATA_DIR}/predictions
RUN groupadd --system --gid {USER_ID} syllabus \\
    && useradd --system --uid {USER_ID} --gid syllabus --home-dir {APP_DIR} \\
       --shell /usr/sbin/nologin syllabus
WORKDIR {APP_DIR}
COPY requirements.txt {APP_DIR}/requirements.txt
RUN pip install --no-cache-dir -r {APP_DIR}/requirements.txt
COPY --chown=root:root models {APP_DIR}/models
COPY --chown=root:root serving.json models.json {APP_DIR}/
RUN mkdir -p {DATA_DIR} && chown {USER_ID}:{USER_ID} {DATA_DIR}
VOLUME ["{DATA_DIR}"]
USER {USER_ID}:{USER_ID}
EXPOSE {CONTAINER_PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
    CMD ["python", "-c", "{probe}"]
ENTRYPOINT ["python", "-m", "syllabus.deploy.targets.container", "{APP_DIR}/serving.json"]
"""


def write_context(plan: Plan, folder: Path) -> list[Path]:
    """Write the build context for ``plan`` into ``folder`` (replacing what was there)."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "models").mkdir(parents=True)
    requirements: list[str] = []
    models: dict[str, Any] = {}
    refs: dict[str, str] = {}
    for m in plan.models:
        if m.folder is None:
            raise DeploymentFailedError(f"model {m.ref} was not exported for the docker target")
        dest = folder / "models" / m.variant
        shutil.copytree(m.folder, dest)
        req = dest / "requirements.txt"
        if req.is_file():
            requirements.extend(req.read_text(encoding="utf-8").splitlines())
        refs[m.variant] = m.ref
        models[m.ref] = {
            "folder": f"models/{m.variant}",
            "name": m.name,
            "version": m.version,
            "model_path": m.model_path,
            "model_digest": m.model_digest,
        }
    doc = serving_config(
        plan,
        host="0.0.0.0",  # noqa: S104 - inside the container; the port mapping decides exposure
        port=CONTAINER_PORT,
        log_path=f"{DATA_DIR}/predictions",
        store=False,
    )
    (folder / "serving.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (folder / "models.json").write_text(json.dumps(models, indent=2) + "\n", encoding="utf-8")
    (folder / "requirements.txt").write_text(
        "\n".join(pinned_requirements(requirements)) + "\n", encoding="utf-8"
    )
    base = str(plan.config.get("docker", {}).get("base") or "python:3.11-slim")
    (folder / "Dockerfile").write_text(_dockerfile(base), encoding="utf-8")
    (folder / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _docker(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker")
    if exe is None:
        raise TargetUnavailableError("docker target: the docker command is not installed")
    return subprocess.run(  # noqa: S603 - fixed executable, arguments we built
        [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class DockerTarget:
    """Images built from the revision's context, run as containers."""

    name = "docker"

    def check(self) -> None:
        if shutil.which("docker") is None:
            raise TargetUnavailableError(
                "docker target: the docker command is not installed here; "
                "`syllabus deploy render` writes the build context without it"
            )
        try:
            done = _docker("info", "--format", "{{.ServerVersion}}", timeout=15)
        except subprocess.TimeoutExpired:
            raise TargetUnavailableError(
                "docker target: the Docker daemon did not answer within 15s"
            ) from None
        if done.returncode != 0:
            raise TargetUnavailableError(
                f"docker target: no Docker daemon reachable ({_last_line(done.stderr)}); "
                "`syllabus deploy render` writes the build context without one"
            )

    def render(self, plan: Plan) -> list[Path]:
        return write_context(plan, plan.folder / "docker")

    def start(self, plan: Plan, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        from syllabus.deploy.targets.local import _ready, _url, free_port

        context = plan.folder / "docker"
        write_context(plan, context)
        image = image_name(plan)
        built = _docker("build", "--tag", image, str(context), timeout=3600)
        if built.returncode != 0:
            raise DeploymentFailedError(
                f"docker build of {image} failed: {_last_line(built.stderr or built.stdout)}"
            )
        host = str(plan.config["host"])
        port = int(plan.config["port"] or 0) or free_port(host)
        name = f"syllabus-{plan.name}-{plan.env}-rev{plan.revision}".lower()
        resources = plan.config.get("resources", {}).get("limits", {})
        limits = []
        if "cpu" in resources:
            cpu = str(resources["cpu"])
            limits += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else cpu)]
        if "memory" in resources:
            limits += ["--memory", str(resources["memory"]).replace("i", "").lower()]
        ran = _docker(
            "run", "--detach", "--name", name, "--restart", "unless-stopped",
            "--publish", f"{host}:{port}:{CONTAINER_PORT}",
            "--label", f"syllabus.service={plan.name}", "--label", f"syllabus.env={plan.env}",
            "--label", f"syllabus.revision={plan.revision}", *limits, image,
            timeout=120,
        )  # fmt: skip
        if ran.returncode != 0:
            raise DeploymentFailedError(f"docker run of {image} failed: {_last_line(ran.stderr)}")
        url = _url(host, port)
        runtime: dict[str, Any] = {
            "target": self.name,
            "folder": str(plan.folder),
            "image": image,
            "container": name,
            "host": host,
            "port": port,
            "url": url,
        }
        deadline = time.monotonic() + float(plan.config["readiness_timeout"])
        why = "not ready"
        while time.monotonic() < deadline:
            ok, why = _ready(url)
            if ok:
                return runtime
            time.sleep(0.5)
        logs = _docker("logs", "--tail", "3", name, timeout=30)
        self.stop(runtime)
        raise DeploymentFailedError(
            f"revision {plan.revision} of {plan.name} ({plan.env}) failed: container {name} "
            f"not ready ({why}): {_last_line(logs.stderr or logs.stdout)}"
        )

    def stop(self, runtime: Mapping[str, Any]) -> None:
        name = runtime.get("container")
        if isinstance(name, str):
            _docker("rm", "--force", name, timeout=60)

    def health(self, runtime: Mapping[str, Any]) -> Health:
        from syllabus.deploy.targets.local import _ready

        name = runtime.get("container")
        url = runtime.get("url")
        if not isinstance(name, str) or not isinstance(url, str):
            return Health("unknown", "no container recorded")
        try:
            state = _docker("inspect", "--format", "{{.State.Status}}", name, timeout=15)
        except (TargetUnavailableError, subprocess.TimeoutExpired) as exc:
            return Health("unknown", str(exc), url=url)
        if state.returncode != 0 or state.stdout.strip() != "running":
            return Health("not running", _last_line(state.stderr or state.stdout), url=url)
        ok, detail = _ready(url)
        return Health("ready" if ok else "unready", detail, url=url)
