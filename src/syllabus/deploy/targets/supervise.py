"""The local target's supervisor: keeps one ``syllabus serve --config`` process running.

``python -m syllabus.deploy.targets.supervise CONFIG`` starts the server as its child and
waits. SIGTERM (or SIGINT) is passed on to the server, which shuts down gracefully (the
prediction log is flushed), and the supervisor exits with it. A server that dies on its
own after it had become ready (its ready file named it) is started again, after a pause
that doubles from 1 s up to 30 s and resets once a server has stayed up for a minute. A
server that dies before it was ever ready is not retried: the supervisor exits, so the
rollout sees the failure at once.

Its output goes where the supervisor's goes (the revision's ``server.log``), with a line
per event.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Final

__all__ = ["main"]

MAX_PAUSE_S: Final = 30.0
STABLE_S: Final = 60.0


def _say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} supervisor: {message}\n")
    sys.stderr.flush()


def _was_ready(ready_file: Path | None, pid: int) -> bool:
    if ready_file is None:
        return False
    try:
        return bool(json.loads(ready_file.read_text()).get("pid") == pid)
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m syllabus.deploy.targets.supervise CONFIG.json\n")
        return 2
    config = Path(argv[0])
    try:
        ready = json.loads(config.read_text()).get("ready_file")
    except (OSError, ValueError) as exc:
        _say(f"cannot read {config}: {exc}")
        return 2
    ready_file = Path(ready) if ready else None
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pause = 1.0
    while not stopping.is_set():
        began = time.monotonic()
        child = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            [sys.executable, "-m", "syllabus", "serve", "--config", str(config)]
        )
        if stopping.is_set():  # the signal came before the child existed
            child.send_signal(signal.SIGTERM)
        code = child.wait()
        if stopping.is_set():
            return code if code >= 0 else 0
        if not _was_ready(ready_file, child.pid):
            _say(f"server {child.pid} exited with {code} before it was ready; not restarting")
            return code or 1
        if time.monotonic() - began > STABLE_S:
            pause = 1.0
        _say(f"server {child.pid} exited with {code}; restarting in {pause:g}s")
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and not stopping.is_set():
            time.sleep(0.1)
        if stopping.is_set():
            return 0
        pause = min(pause * 2, MAX_PAUSE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
