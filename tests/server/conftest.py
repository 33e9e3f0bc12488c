"""Server fixtures: a live server with auth on two workspaces, users of every role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syllabus.server.state import ServerConfig
from tests.server.live import LiveServer, live_server, start_server

__all__ = ["AuthServer", "auth_server", "live_server"]


@dataclass
class AuthServer:
    live: LiveServer
    tokens: dict[str, str]  # who -> token secret

    @property
    def url(self) -> str:
        return self.live.url

    def uri(self, workspace: str = "default") -> str:
        return f"{self.live.url}/w/{workspace}"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """Auth on; workspaces ``default`` and ``other``; one user per role in ``default``,
    a server admin, and tokens: one per user, an expired one, a revoked one, and one of the
    maintainer bound to ``other``."""
    root: Path = tmp_path_factory.mktemp("auth-server")
    config = ServerConfig(
        {
            "default": (f"sqlite:///{root / 'main.db'}", str(root / "blobs")),
            "other": (f"sqlite:///{root / 'other.db'}", str(root / "other-blobs")),
        },
        auth=True,
        ui=False,
    )
    live = start_server(config)
    store = live.state.auth_store
    tokens: dict[str, str] = {}
    for role in ("viewer", "editor", "maintainer", "admin"):
        store.add_user(role)
        store.grant(role, "default", role)
        secret = store.create_token(role, name="tests").secret
        assert secret is not None
        tokens[role] = secret
    store.add_user("root", admin=True)
    tokens["root"] = str(store.create_token("root").secret)
    tokens["expired"] = str(store.create_token("editor", expires_in=0.001).secret)
    revoked = store.create_token("editor")
    store.revoke_token(revoked.id)
    tokens["revoked"] = str(revoked.secret)
    store.grant("maintainer", "other", "maintainer")
    tokens["maintainer-other"] = str(store.create_token("maintainer", workspace="other").secret)
    yield AuthServer(live, tokens)
    live.stop()


_ = live_server
