"""Alert delivery (signed webhooks) and the Prometheus exposition of monitor state.

A webhook gets ``POST <url>`` with ``{"event": "monitor.alert.fired" | "monitor.alert.resolved",
...the alert event...}`` and the registry's headers: ``X-Syllabus-Event``,
``X-Syllabus-Delivery`` (``<alert id>-<seq>``) and ``X-Syllabus-Signature: sha256=<hex>``,
the HMAC-SHA256 of the body under the webhook's secret (see
:func:`syllabus.registry.webhooks.sign`). Deliveries are retried on connection errors, 5xx
and 429, with backoff, a bounded number of times; failures are logged, never raised.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from syllabus.monitoring.models import Alert, AlertEvent, Monitor, Window
from syllabus.registry.webhooks import sign

__all__ = ["Notifier", "prometheus_text"]

log = logging.getLogger(__name__)

ATTEMPTS: Final = 3
TIMEOUT_S: Final = 5.0


class Notifier:
    """Sends alert events to a monitor's webhooks (synchronously, at the end of a run)."""

    def __init__(self, *, backoff: float = 0.2) -> None:
        self._backoff = backoff
        self.delivered = 0
        self.failed = 0

    def send(self, monitor: Monitor, events: Sequence[AlertEvent]) -> None:
        for hook in monitor.config.get("webhooks", ()):
            for event in events:
                self._deliver(hook, event)

    def _deliver(self, hook: Mapping[str, str], event: AlertEvent) -> None:
        name = f"monitor.alert.{event.event}"
        body = json.dumps({**event.to_dict(), "event": name}, sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "syllabus-webhooks",
            "X-Syllabus-Event": name,
            "X-Syllabus-Delivery": f"{event.alert_id}-{event.seq}",
        }
        if hook.get("secret"):
            headers["X-Syllabus-Signature"] = sign(hook["secret"], body)
        for attempt in range(1, ATTEMPTS + 1):
            # Only http(s) URLs are accepted when a monitor is created.
            url = hook["url"]
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                status = int(exc.code)
            except (urllib.error.URLError, OSError) as exc:
                status = 0
                log.info("webhook %s attempt %d: %s", hook["url"], attempt, exc)
            if 200 <= status < 300:
                self.delivered += 1
                return
            if status and status < 500 and status != 429:
                break
            if attempt < ATTEMPTS:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        self.failed += 1
        log.warning("webhook %s: could not deliver %s of alert %s", hook["url"], event.event,
                    event.alert_id)  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(
    latest: Iterable[tuple[Monitor, Window | None]], alerts: Iterable[Alert]
) -> str:
    """Gauges in the Prometheus text format: per monitor its latest window's rows, drift
    share, per-feature drift score and flag, latency quantiles and performance metrics,
    and 1 for each firing alert."""
    out: dict[str, list[str]] = {}
    helps = {
        "syllabus_monitor_rows": "Rows in the monitor's latest window.",
        "syllabus_monitor_drift_share": "Share of drifted features in the latest window.",
        "syllabus_monitor_feature_drift_score": "A feature's drift score (its method's).",
        "syllabus_monitor_feature_drifted": "1 when the feature is flagged as drifted.",
        "syllabus_monitor_feature_null_rate": "A feature's null rate in the latest window.",
        "syllabus_monitor_latency_ms": "Request latency quantile in the latest window.",
        "syllabus_monitor_performance": "A performance metric of the latest window.",
        "syllabus_monitor_alert_firing": "1 while an alert rule is firing.",
    }

    def add(metric: str, labels: Mapping[str, str], value: float | None) -> None:
        if value is None:
            return
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        out.setdefault(metric, []).append(f"{metric}{{{text}}} {float(value):.10g}")

    for monitor, window in latest:
        m = {"monitor": monitor.name}
        if window is None:
            continue
        s = window.summary
        add("syllabus_monitor_rows", m, s.get("rows"))
        add("syllabus_monitor_drift_share", m, s.get("drift_share"))
        for name, f in s.get("features", {}).items():
            labels = {**m, "feature": name}
            add("syllabus_monitor_feature_drift_score", labels, f.get("score"))
            flag = f.get("drifted")
            add("syllabus_monitor_feature_drifted", labels, None if flag is None else float(flag))
            add("syllabus_monitor_feature_null_rate", labels, f.get("null_rate"))
        for q in ("50", "95", "99"):
            add("syllabus_monitor_latency_ms", {**m, "quantile": f"0.{q}"}, s.get(f"latency_p{q}"))
        for key, value in s.get("performance", {}).items():
            if isinstance(value, int | float):
                add("syllabus_monitor_performance", {**m, "metric": key}, value)
    for alert in alerts:
        if alert.state == "firing":
            add("syllabus_monitor_alert_firing", {"monitor": alert.monitor, "rule": alert.rule}, 1)
    lines = []
    for metric, samples in out.items():
        lines += [f"# HELP {metric} {helps[metric]}", f"# TYPE {metric} gauge", *samples]
    return "\n".join(lines) + ("\n" if lines else "")
