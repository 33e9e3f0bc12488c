"""Prometheus metrics of the server process (text exposition format, no dependency).

Counters and histograms are per process: with ``--workers N`` each worker answers
``/metrics`` with its own (scrape them through the workers' shared port; counters add up).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Final

__all__ = ["Metrics"]

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts and latencies by route, and domain counters (points, blob bytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[float]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.counters: dict[str, float] = defaultdict(float)
        self.in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            buckets = self.latency.setdefault(route, [0.0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            buckets[-1] += 1
            self.latency_sum[route] += seconds

    def add(self, name: str, amount: float = 1.0) -> None:
        with self._lock:
            self.counters[name] += amount

    def render(self) -> str:
        lines = [
            "# HELP syllabus_http_requests_total HTTP requests answered, by method, route, status.",
            "# TYPE syllabus_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(
                    f'syllabus_http_requests_total{{method="{method}",route="{_escape(route)}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP syllabus_http_request_duration_seconds Time to answer, by route.",
                "# TYPE syllabus_http_request_duration_seconds histogram",
            ]
            hist = "syllabus_http_request_duration_seconds"
            for route, counts in sorted(self.latency.items()):
                r = _escape(route)
                for bound, count in zip(BUCKETS, counts, strict=False):
                    lines.append(f'{hist}_bucket{{route="{r}",le="{bound}"}} {count:g}')
                lines.append(f'{hist}_bucket{{route="{r}",le="+Inf"}} {counts[-1]:g}')
                lines.append(f'{hist}_sum{{route="{r}"}} {self.latency_sum[route]:.6f}')
                lines.append(f'{hist}_count{{route="{r}"}} {counts[-1]:g}')
            lines += [
                "# HELP syllabus_http_requests_in_flight Requests being answered now.",
                "# TYPE syllabus_http_requests_in_flight gauge",
                f"syllabus_http_requests_in_flight {self.in_flight}",
            ]
            for name, value in sorted(self.counters.items()):
                lines += [f"# TYPE syllabus_{name} counter", f"syllabus_{name} {value:g}"]
        lines += [
            "# HELP syllabus_process_start_time_seconds When this server process started.",
            "# TYPE syllabus_process_start_time_seconds gauge",
            f"syllabus_process_start_time_seconds {self.started:.3f}",
        ]
        try:
            import resource

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            lines += [
                "# TYPE syllabus_process_max_resident_memory_bytes gauge",
                f"syllabus_process_max_resident_memory_bytes {rss}",
            ]
        except ImportError:  # pragma: no cover - not on POSIX
            pass
        return "\n".join(lines) + "\n"
