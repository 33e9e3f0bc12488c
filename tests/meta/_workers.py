"""Functions run in child processes by the concurrency tests (importable under spawn)."""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from typing import Any

from syllabus.meta import BlobRef, BlobRefs, create_engine, ensure_schema

Result = tuple[int, str, str]  # (worker index, "ok" | "error", detail)


def _report(queue: Any, index: int, work: Callable[[], str]) -> None:
    try:
        queue.put((index, "ok", work()))
    except BaseException:
        queue.put((index, "error", traceback.format_exc()))


def ensure_worker(url: str, index: int, barrier: Barrier, queue: Any) -> None:
    """Call ensure_schema on ``url`` at the same moment as the other workers."""

    def work() -> str:
        engine = create_engine(url)
        try:
            barrier.wait(timeout=60)
            ensure_schema(engine)
            return "done"
        finally:
            engine.dispose()

    _report(queue, index, work)


def digest(n: int) -> str:
    """A valid-looking digest for the number ``n``."""
    return f"{n:064x}"


def refs_worker(url: str, index: int, barrier: Barrier, queue: Any, rounds: int) -> None:
    """Write blob refs in many small transactions; digests overlap between workers."""

    def work() -> str:
        engine = create_engine(url)
        try:
            refs = BlobRefs(engine)
            barrier.wait(timeout=60)
            for r in range(rounds):
                # Shared digests (r) and the worker's own (index, r): duplicates across
                # workers are ignored, each worker's owner rows are distinct.
                refs.add(
                    [
                        BlobRef(digest(r), "dataset", "worker", f"w{index}"),
                        BlobRef(
                            digest(1_000_000 + index * 10_000 + r), "model", "worker", f"w{index}"
                        ),
                        BlobRef(digest(r), "dataset", "shared", "all"),
                    ]
                )
                if r % 10 == 9:
                    refs.remove_owner("scratch", f"w{index}")
                    refs.add([BlobRef(digest(r), "artifact", "scratch", f"w{index}")])
            return "done"
        finally:
            engine.dispose()

    _report(queue, index, work)


def run_workers(target: Callable[..., None], n: int, *args: Any) -> list[Result]:
    """Run ``target(*args, index, barrier, queue, ...)`` in ``n`` spawned processes."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    url, *rest = args
    procs = [
        ctx.Process(target=target, args=(url, i, barrier, queue, *rest), daemon=True)
        for i in range(n)
    ]
    for p in procs:
        p.start()
    try:
        results: list[Result] = [queue.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():  # pragma: no cover - only on a hang
                p.kill()
                p.join()
            p.close()
        queue.close()
        queue.join_thread()
    return sorted(results)
