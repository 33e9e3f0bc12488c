"""System metrics: CPU, memory, disk and network I/O (psutil) and GPUs (NVML, when present).

A :class:`SystemMetrics` sampler runs on a daemon thread and hands each sample, as
``(key, value, step, timestamp)`` points under ``system/``, to a sink (the metric buffer).
Rates are per second since the previous sample. GPUs are read through ``pynvml`` when it
imports and finds a driver; otherwise they are skipped silently.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SystemMetrics", "sample_once"]

log = logging.getLogger(__name__)

Points = list[tuple[str, float, int, int]]


def _nvml() -> Any | None:
    try:
        import pynvml  # type: ignore[import-not-found,unused-ignore]

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no module, driver or GPU all mean "no GPU metrics"
        return None
    return pynvml


class _Sampler:
    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline
        self._last = time.monotonic()
        self._disk = self._counters(psutil.disk_io_counters)
        self._net = self._counters(psutil.net_io_counters)
        self._nvml = _nvml()

    @staticmethod
    def _counters(read: Callable[[], Any]) -> Any:
        with contextlib.suppress(Exception):
            return read()
        return None

    def sample(self) -> dict[str, float]:
        ps = self._psutil
        now = time.monotonic()
        elapsed = max(now - self._last, 1e-6)
        self._last = now
        vm = ps.virtual_memory()
        out: dict[str, float] = {
            "system/cpu_percent": float(ps.cpu_percent(interval=None)),
            "system/memory_percent": float(vm.percent),
            "system/memory_used_mb": vm.used / 2**20,
            "system/process_rss_mb": self._process.memory_info().rss / 2**20,
        }
        disk = self._counters(ps.disk_io_counters)
        if disk is not None and self._disk is not None:
            out["system/disk_read_mb_s"] = (
                (disk.read_bytes - self._disk.read_bytes) / 2**20 / elapsed
            )
            out["system/disk_write_mb_s"] = (
                (disk.write_bytes - self._disk.write_bytes) / 2**20 / elapsed
            )
        self._disk = disk
        net = self._counters(ps.net_io_counters)
        if net is not None and self._net is not None:
            out["system/net_recv_mb_s"] = (net.bytes_recv - self._net.bytes_recv) / 2**20 / elapsed
            out["system/net_sent_mb_s"] = (net.bytes_sent - self._net.bytes_sent) / 2**20 / elapsed
        self._net = net
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                nv = self._nvml
                for i in range(nv.nvmlDeviceGetCount()):
                    handle = nv.nvmlDeviceGetHandleByIndex(i)
                    util = nv.nvmlDeviceGetUtilizationRates(handle)
                    mem = nv.nvmlDeviceGetMemoryInfo(handle)
                    out[f"system/gpu{i}_percent"] = float(util.gpu)
                    out[f"system/gpu{i}_memory_mb"] = mem.used / 2**20
        return out


def sample_once() -> dict[str, float]:
    """One sample of every available system metric (rates are zero on a first sample)."""
    return _Sampler().sample()


class SystemMetrics:
    """Samples every ``interval`` seconds into ``sink`` until :meth:`stop`."""

    def __init__(self, sink: Callable[[Points], None], *, interval: float = 10.0) -> None:
        self._sink = sink
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="syllabus-sysmetrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            sampler = _Sampler()
        except Exception:
            log.warning("syllabus: system metrics are unavailable", exc_info=True)
            return
        while not self._stop.wait(self._interval):
            self.emit(sampler)

    def emit(self, sampler: _Sampler) -> None:
        try:
            values = sampler.sample()
        except Exception:
            log.warning("syllabus: sampling system metrics failed", exc_info=True)
            return
        ts = time.time_ns() // 1_000_000
        self._sink([(k, v, self._step, ts) for k, v in values.items()])
        self._step += 1

    def stop(self) -> None:
        """Stop sampling (waits for the thread; at most one sample is taken meanwhile)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
