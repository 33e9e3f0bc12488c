"""Webhooks: registry events sent as signed JSON POSTs, retried, off the caller's thread.

Each delivery is ``POST <url>`` with the event's JSON (see
:meth:`~syllabus.registry.models.Event.to_dict`) and the headers
``X-Syllabus-Event`` (event name), ``X-Syllabus-Delivery`` (event id) and
``X-Syllabus-Signature: sha256=<hex>``, the HMAC-SHA256 of the body under the webhook's
secret. A receiver recomputes it with :func:`sign` and compares with
``hmac.compare_digest``. Failed deliveries (connection errors, 5xx, 429) are retried
with backoff; failures are logged, never raised into the registry call that made the
event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import urlsplit

from syllabus.errors import InvalidArgumentError
from syllabus.registry.models import Event, Webhook

__all__ = ["WebhookDispatcher", "check_url", "sign"]

log = logging.getLogger(__name__)

ATTEMPTS: Final = 4
TIMEOUT_S: Final = 5.0


def sign(secret: str, body: bytes) -> str:
    """The ``X-Syllabus-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_url(url: object) -> str:
    """``url`` if a webhook can send to it: an ``http://`` or ``https://`` URL with a host
    (and a valid port, no spaces or control characters); else a one-line error."""
    if not isinstance(url, str):
        raise InvalidArgumentError(f"a webhook URL must be text, not {type(url).__name__}")
    why = None
    if not url:
        why = "is empty"
    elif any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        why = "contains spaces or control characters"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises on a port that is not a number from 0 to 65535
        except ValueError:
            why = "does not parse"
        else:
            if parts.scheme not in ("http", "https"):
                why = "must start with http:// or https://"
            elif not parts.hostname:
                why = "names no host"
    if why is not None:
        raise InvalidArgumentError(f"webhook URL {url!r} {why}")
    return url


def _wants(hook: Webhook, event: Event) -> bool:
    if hook.model_name is not None and hook.model_name != event.model_name:
        return False
    return not hook.events or event.event in hook.events


class WebhookDispatcher:
    """Sends events to the webhooks ``hooks()`` returns, on one background thread."""

    def __init__(self, hooks: Callable[[], Sequence[Webhook]], *, backoff: float = 0.2) -> None:
        self._hooks = hooks
        self._backoff = backoff
        self._queue: queue.Queue[tuple[Webhook, Event] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def send(self, event: Event) -> None:
        """Queue ``event`` for every webhook that wants it; returns at once."""
        hooks = [h for h in self._hooks() if _wants(h, event)]
        if not hooks:
            return
        for hook in hooks:
            self._queue.put((hook, event))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="syllabus-webhooks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            except Exception:  # one bad delivery must never stop the thread
                self.failed += 1
                log.exception("webhook delivery failed unexpectedly")
            finally:
                self._queue.task_done()

    def _deliver(self, hook: Webhook, event: Event) -> None:
        try:  # a URL stored before URLs were checked, or written into the database by hand
            check_url(hook.url)
        except InvalidArgumentError as exc:
            self.failed += 1
            log.warning("webhook %s: not sending event %s: %s", hook.id, event.id, exc)
            return
        import urllib.error  # here: the store checks URLs without loading the HTTP client
        import urllib.request

        body = json.dumps(event.to_dict(), sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "syllabus-webhooks",
            "X-Syllabus-Event": event.event,
            "X-Syllabus-Delivery": event.id,
            "X-Syllabus-Signature": sign(hook.secret, body),
        }
        for attempt in range(1, ATTEMPTS + 1):
            # Only http(s) URLs are accepted when a webhook is added.
            request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                status = int(exc.code)
            except (urllib.error.URLError, OSError) as exc:
                status = 0
                log.info("webhook %s attempt %d: %s", hook.url, attempt, exc)
            if 200 <= status < 300:
                self.delivered += 1
                return
            if status and status < 500 and status != 429:
                break  # the receiver refused it; retrying will not help
            time.sleep(self._backoff * 2 ** (attempt - 1))
        self.failed += 1
        log.warning("webhook %s: could not deliver event %s (%s)", hook.url, event.id, event.event)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery is done (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``) and stop the thread."""
        self.flush(timeout)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout)
            self._thread = None
