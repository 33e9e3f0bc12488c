"""Prometheus metrics of one server process, in the text exposition format (0.0.4).

Counters are plain integers updated on the event loop (and by the shadow thread under a
lock); a scrape formats them. With several workers each process answers for itself, like
any multi-process Python server without a shared registry.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable

__all__ = ["BUCKETS", "Metrics"]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class _Histogram:
    __slots__ = ("counts", "sum", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.total = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds
        self.total += 1


class Metrics:
    """Requests, errors, latency, in-flight requests, predictions and the served versions."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.requests: dict[tuple[str, str, int], int] = {}  # (endpoint, method, status)
        self.latency: dict[str, _Histogram] = {}
        self.predictions: dict[tuple[str, str, int], int] = {}  # (variant, model, version) rows
        self.in_flight = 0
        self.shadow_dropped = 0
        self.shadow_errors = 0
        self._lock = threading.Lock()
        self.models: list[tuple[str, str, int]] = []  # (variant, model, version)
        self.gauges: dict[str, Callable[[], float]] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(endpoint)
        if hist is None:
            hist = self.latency[endpoint] = _Histogram()
        hist.observe(seconds)

    def count_predictions(self, variant: str, model: str, version: int, rows: int) -> None:
        key = (variant, model, version)
        with self._lock:
            self.predictions[key] = self.predictions.get(key, 0) + rows

    def count_shadow(self, *, dropped: int = 0, errors: int = 0) -> None:
        with self._lock:
            self.shadow_dropped += dropped
            self.shadow_errors += errors

    def render(self, *, ready: bool) -> str:
        svc = ("service", self.service)
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        head(
            "syllabus_requests_total", "counter", "HTTP requests answered, by endpoint and status."
        )
        for (endpoint, method, status), n in sorted(self.requests.items()):
            lbl = _labels(
                [svc, ("endpoint", endpoint), ("method", method), ("status", str(status))]
            )
            out.append(f"syllabus_requests_total{lbl} {n}")
        head("syllabus_request_errors_total", "counter", "HTTP requests answered with 4xx or 5xx.")
        errors: dict[tuple[str, str], int] = {}
        for (endpoint, _method, status), n in self.requests.items():
            if status >= 400:
                key = (endpoint, "client" if status < 500 else "server")
                errors[key] = errors.get(key, 0) + n
        for (endpoint, kind), n in sorted(errors.items()):
            lbl = _labels([svc, ("endpoint", endpoint), ("kind", kind)])
            out.append(f"syllabus_request_errors_total{lbl} {n}")
        head(
            "syllabus_request_duration_seconds",
            "histogram",
            "Time from request start to the end of the response, by endpoint.",
        )
        for endpoint, hist in sorted(self.latency.items()):
            base = [svc, ("endpoint", endpoint)]
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lbl = _labels([*base, ("le", le)])
                out.append(f"syllabus_request_duration_seconds_bucket{lbl} {running}")
            out.append(f"syllabus_request_duration_seconds_sum{_labels(base)} {hist.sum!r}")
            out.append(f"syllabus_request_duration_seconds_count{_labels(base)} {hist.total}")
        head("syllabus_requests_in_flight", "gauge", "Requests being answered now.")
        out.append(f"syllabus_requests_in_flight{_labels([svc])} {self.in_flight}")
        head("syllabus_predictions_total", "counter", "Rows predicted, by variant and version.")
        with self._lock:
            predictions = sorted(self.predictions.items())
            dropped, shadow_errors = self.shadow_dropped, self.shadow_errors
        for (variant, model, version), n in predictions:
            lbl = _labels([svc, ("variant", variant), ("model", model), ("version", str(version))])
            out.append(f"syllabus_predictions_total{lbl} {n}")
        head("syllabus_model_info", "gauge", "The model versions this server serves (value 1).")
        for variant, model, version in self.models:
            lbl = _labels([svc, ("variant", variant), ("model", model), ("version", str(version))])
            out.append(f"syllabus_model_info{lbl} 1")
        head("syllabus_ready", "gauge", "1 when every model is loaded and requests are served.")
        out.append(f"syllabus_ready{_labels([svc])} {int(ready)}")
        head("syllabus_shadow_dropped_total", "counter", "Shadow copies dropped (queue full).")
        out.append(f"syllabus_shadow_dropped_total{_labels([svc])} {dropped}")
        head("syllabus_shadow_errors_total", "counter", "Shadow copies the shadow model failed.")
        out.append(f"syllabus_shadow_errors_total{_labels([svc])} {shadow_errors}")
        for name, read in sorted(self.gauges.items()):
            head(name, "gauge", name.replace("_", " "))
            out.append(f"{name}{_labels([svc])} {read()!r}")
        return "\n".join(out) + "\n"
