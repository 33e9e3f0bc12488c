"""Webhooks against a real HTTP server on 127.0.0.1: signed, retried, filtered."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from syllabus import Client
from syllabus.errors import InvalidArgumentError
from tests.fixtures.webhooks import Receiver, receiving
from tests.registry.conftest import log_run_model


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    with receiving(fail_first=1) as found:
        yield found


def test_events_are_signed_retried_and_filtered(
    client: Client, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    client.add_webhook(url, "s3cret", events=["stage_changed"], model="churn")
    version = log_run_model(client, "churn")
    log_run_model(client, "other")
    client.transition_stage(version.ref, "staging", comment="go")
    assert client.flush_webhooks(10)
    assert state.calls == 2  # the first attempt got a 503 and was retried
    assert len(state.received) == 1
    headers, body = state.received[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Syllabus-Signature"] == expected
    assert headers["X-Syllabus-Event"] == "stage_changed"
    doc = json.loads(body)
    assert (doc["model"], doc["version"], doc["from_stage"], doc["to_stage"]) == (
        "churn",
        1,
        "development",
        "staging",
    )
    assert doc["comment"] == "go"
    assert doc["actor"]
    assert doc["details"]["gates"][0]["gate"] == "integrity"


def test_webhook_validation(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="must start with http"):
        client.add_webhook("file:///etc/passwd", "x")
    with pytest.raises(InvalidArgumentError, match="shared secret"):
        client.add_webhook("http://127.0.0.1:9/", "")
    for bad, why in [
        ("", "is empty"),
        ("http://", "names no host"),
        ("https:///path", "names no host"),
        ("ftp://127.0.0.1/", "must start with http"),
        ("http://127.0.0.1:99999/", "does not parse"),
        ("http://127.0.0.1/a b", "spaces or control"),
    ]:
        with pytest.raises(InvalidArgumentError, match=why):
            client.add_webhook(bad, "x")
    assert client.list_webhooks() == []


def test_a_bad_stored_url_fails_its_delivery_and_the_thread_goes_on(
    receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    from syllabus.registry.models import Event, Webhook
    from syllabus.registry.webhooks import WebhookDispatcher

    state, url = receiver
    state.fail_first = 0
    hooks = [  # as if written to the database before URLs were checked
        Webhook("bad1", "", "s", (), None, 1, "me"),
        Webhook("bad2", "http://", "s", (), None, 1, "me"),
        Webhook("good", url, "s", (), None, 1, "me"),
    ]
    dispatcher = WebhookDispatcher(lambda: hooks, backoff=0.0)
    try:
        with caplog.at_level("WARNING", logger="syllabus.registry.webhooks"):
            dispatcher.send(Event("e1", "stage_changed", "me", 1))
            assert dispatcher.flush(10)
            dispatcher.send(Event("e2", "stage_changed", "me", 2))
            assert dispatcher.flush(10)
    finally:
        dispatcher.close()
    assert (dispatcher.failed, dispatcher.delivered) == (4, 2)
    assert len(state.received) == 2
    assert sum("not sending event" in r.getMessage() for r in caplog.records) == 4
