"""Code capture at run start: how long ``capture_code`` adds to ``start_run``.

Workload (issue 5): a git repository of 1,000 source files (20 folders x 50 files), captured
the way ``syllabus.start_run()`` does (git state, entry point, Python environment, one
``run_code`` row) on the embedded SQLite store. Cases:

* clean       - committed tree, nothing changed
* dirty       - 3 tracked files edited, 5 untracked source files
* first       - the very first capture in a fresh process (distribution list not cached)
* no-git      - the same 1,000 files outside git (snapshot by globs; repeat capture)

MLflow, the peer, records only the commit hash and source name at run start (no patch,
no untracked files, no environment), so the ratio column compares against running
``git rev-parse HEAD`` as a subprocess: the floor of any git-aware capture.

Run: ``.venv/bin/python bench/code.py [--files N] [--reps N]``. Target: < 100 ms added.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
TARGET_MS = 100.0


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True)


def make_project(root: Path, files: int) -> None:
    per = 50
    for n in range(files):
        folder = root / f"pkg{n // per:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f{k}(x):\n    return x * {n} + {k}\n\n" for k in range(20))
        (folder / f"mod{n % per:03d}.py").write_text(body)


def timed(fn: object, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1000)
    return out


def first_capture_ms(repo: Path, db: Path) -> float:
    """One capture in a fresh interpreter (nothing cached), timed inside it."""
    code = f"""
import time
from pathlib import Path
from syllabus import Client
from syllabus.code import EntryPoint
c = Client(cwd=Path({str(repo)!r}))
run = c.create_run()
t = time.perf_counter()
c.capture_code(run.id, entry=EntryPoint("pkg00/mod000.py"))
print((time.perf_counter() - t) * 1000)
c.close()
"""
    env = {**ENV, "SYLLABUS_URI": f"sqlite:///{db}", "SYLLABUS_BLOBS": str(db) + ".blobs"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()

    from syllabus import Client, init_workspace
    from syllabus.code import EntryPoint

    with tempfile.TemporaryDirectory(prefix="syllabus-bench-code-") as tmp:
        base = Path(tmp)
        repo, plain, ws = base / "repo", base / "plain", base / "ws"
        make_project(repo, args.files)
        make_project(plain, args.files)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "bench")
        ws.mkdir()
        init_workspace(ws)
        entry = EntryPoint("pkg00/mod000.py", ("--lr", "0.1"))
        rows: list[tuple[str, float, float]] = []
        with Client(cwd=ws) as client:
            run = client.create_run()

            def capture(folder: Path) -> None:
                client.capture_code(run.id, folder=folder, entry=entry)

            capture(repo)  # warm: distribution list cached, snapshot stored
            clean = timed(lambda: capture(repo), args.reps)
            rows.append(("clean", statistics.median(clean), max(clean)))
            for n in range(3):
                with (repo / f"pkg00/mod00{n}.py").open("a") as fh:
                    fh.write("# edited\n")
            for n in range(5):
                (repo / f"new{n}.py").write_text(f"N = {n}\n")
            capture(repo)
            dirty = timed(lambda: capture(repo), args.reps)
            rows.append(("dirty", statistics.median(dirty), max(dirty)))
            t = time.perf_counter()
            capture(plain)
            first_plain = (time.perf_counter() - t) * 1000
            no_git = timed(lambda: capture(plain), args.reps)
            rows.append(("no-git", statistics.median(no_git), max(no_git)))
        floor = timed(lambda: git(repo, "rev-parse", "HEAD"), args.reps)
        floor_ms = statistics.median(floor)
        git(repo, "checkout", "-q", "--", ".")
        first = first_capture_ms(repo, base / "first.db")

    print(f"code capture at run start, {args.files} files, median of {args.reps} (ms)")
    print(
        f"{'case':<10} {'median':>8} {'max':>8} {'x git rev-parse':>16}  target < {TARGET_MS:.0f}"
    )
    for name, med, worst in rows:
        verdict = "PASS" if med < TARGET_MS else "MISS"
        print(f"{name:<10} {med:8.1f} {worst:8.1f} {med / floor_ms:16.1f}  {verdict}")
    verdict = "PASS" if first < TARGET_MS else "MISS"
    print(f"{'first':<10} {first:8.1f} {'':>8} {first / floor_ms:16.1f}  {verdict}")
    print(f"(no-git first capture, storing {args.files} files: {first_plain:.1f} ms; ", end="")
    print(f"git rev-parse HEAD alone: {floor_ms:.1f} ms)")


if __name__ == "__main__":
    main()
