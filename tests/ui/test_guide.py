"""docs/ui.md's Python (a server mounting the UI) runs as written: the app it builds asks
for a token, signs its user in and refuses a wrong one."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.ui.conftest import serving

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "ui.md"


def test_the_guides_server_snippet_runs(workdir: Path) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    namespace: dict[str, object] = {"__name__": "guide"}
    exec(compile(block, str(GUIDE), "exec"), namespace)  # our own docs
    with serving(namespace["app"]) as url, httpx.Client(base_url=url) as http:
        assert http.get("/ui/models").headers["location"].startswith("/ui/login")
        page = http.get("/ui/login")
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        wrong = http.post("/ui/login", data={"csrf_token": token.group(1), "token": "nope"})
        assert wrong.status_code == 401
        right = http.post("/ui/login", data={"csrf_token": token.group(1), "token": "t0k3n"})
        assert right.status_code == 303
        assert right.headers["location"] == "/ui/"
