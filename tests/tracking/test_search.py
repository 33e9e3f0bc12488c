"""The filter language: results on real data (SQLite and PostgreSQL), errors with positions,
and injection attempts that stay values."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from syllabus.blobs.store import open_blob_store
from syllabus.errors import InvalidArgumentError
from syllabus.meta import create_engine, ensure_schema
from syllabus.tracking import search
from syllabus.tracking.service import TrackingService
from syllabus.tracking.sql import SqlTrackingStore


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def searched(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TrackingService, dict[str, str]]]:
    """One store per backend for the whole module (searches do not change it)."""
    tmp = tmp_path_factory.mktemp("search")
    dropped = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'search.db'}"
    else:
        server: sa.Engine = request.getfixturevalue("pg_server")
        name = f"syllabus_t_{uuid.uuid4().hex[:12]}"
        with server.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = server.url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )
        dropped = (server, name)
    engine = create_engine(url)
    ensure_schema(engine)
    blobs = open_blob_store(str(tmp / "blobs"))
    service = TrackingService(SqlTrackingStore(engine), lambda: blobs)
    yield service, _make_runs(service)
    service.close()
    blobs.close()
    engine.dispose()
    if dropped is not None:
        with dropped[0].connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{dropped[1]}" WITH (FORCE)')


@pytest.fixture
def service(searched: tuple[TrackingService, dict[str, str]]) -> TrackingService:
    return searched[0]


@pytest.fixture
def runs(searched: tuple[TrackingService, dict[str, str]]) -> dict[str, str]:
    return searched[1]


def _make_runs(service: TrackingService) -> dict[str, str]:
    """Six runs in experiment ``s``: name -> id."""
    specs = [
        ("a", {"model": "rf", "lr": "0.1"}, {"team": "risk"}, {"auc": 0.91, "loss": 0.3}),
        ("b", {"model": "rf", "lr": "0.01"}, {"team": "growth"}, {"auc": 0.85, "loss": 0.5}),
        ("c", {"model": "gbm", "lr": "0.1"}, {"team": "risk"}, {"auc": 0.70}),
        ("d", {"model": "Rf"}, {}, {"auc": 0.95, "loss": 0.1}),
        ("e", {"model": "o'brien"}, {"team": "risk"}, {}),
        ("f", {}, {"Team Name": "x"}, {"auc": float("nan")}),
    ]
    out = {}
    for name, params, tags, metrics in specs:
        run = service.create_run("s", name=name, params=params, tags=tags)
        service.log_metrics(run.id, metrics)
        out[name] = run.id
    service.end_run(out["a"])
    service.end_run(out["b"], "failed")
    return out


def names(service: TrackingService, filter: str, order_by: list[str] | None = None) -> list[str]:
    page = service.search_runs("s", filter=filter, order_by=order_by or ["name"])
    return [r.name for r in page]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.auc > 0.8", ["a", "b", "d"]),
        ("metrics.auc > 0.8 and params.model = 'rf'", ["a", "b"]),
        ("metrics.auc >= 0.85 AND params.model == 'rf' and tags.team = 'risk'", ["a"]),
        ("params.model = 'rf' or params.model = 'gbm'", ["a", "b", "c"]),
        ("(params.lr = '0.1' or tags.team = 'growth') and not name = 'c'", ["a", "b"]),
        ("params.model in ('rf', 'gbm')", ["a", "b", "c"]),
        ("params.model not in ('rf', 'gbm')", ["d", "e", "f"]),
        ("params.model like 'r%'", ["a", "b"]),  # like is case-sensitive everywhere
        ("params.model ilike 'r%'", ["a", "b", "d"]),
        ("params.model not like 'r%'", ["c", "d", "e", "f"]),
        ("params.model = 'o''brien'", ["e"]),
        ("params.model = 'o\\'brien'", ["e"]),
        ("params.lr = 0.1", ["a", "c"]),  # a number compared with a param compares as text
        ("metrics.loss is null", ["c", "e", "f"]),
        ("metrics.loss is not null and metrics.loss < 0.4", ["a", "d"]),
        ("tags.team is null", ["d", "f"]),
        ("tags.`Team Name` = 'x'", ["f"]),
        ("metrics.auc in (0.7, 0.95)", ["c", "d"]),
        ("metrics.unknown > 0", []),
        ("status = 'finished'", ["a"]),
        ("status in ('failed', 'finished')", ["a", "b"]),
        ("attributes.status != 'running'", ["a", "b"]),
        ("end_time is not null", ["a", "b"]),
        ("name like '_'", ["a", "b", "c", "d", "e", "f"]),
        (
            "start_time > '2000-01-01' and start_time < 99999999999999",
            ["a", "b", "c", "d", "e", "f"],
        ),
    ],
)
def test_filters(
    service: TrackingService, runs: dict[str, str], filter: str, expected: list[str]
) -> None:
    assert names(service, filter) == expected


def test_order_by_metric_param_and_attribute(
    service: TrackingService, runs: dict[str, str]
) -> None:
    assert names(service, "", ["metrics.auc desc"])[:4] == ["d", "a", "b", "c"]
    assert names(service, "metrics.auc > 0", ["metrics.auc asc"]) == ["c", "b", "a", "d"]
    assert names(service, "", ["params.model", "name desc"])[:4] == ["d", "c", "e", "b"]
    assert names(service, "", ["name desc"]) == ["f", "e", "d", "c", "b", "a"]
    newest_first = [r.name for r in service.search_runs("s")]
    assert newest_first == ["f", "e", "d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("filter", "order", "expected"),
    [
        # the filter needs auc, so ordering joins it (no outer join): same answers
        ("metrics.auc > 0.8", "metrics.auc desc", ["d", "a", "b"]),
        ("metrics.auc is not null", "metrics.auc desc", ["d", "a", "b", "c", "f"]),
        ("metrics.auc in (0.7, 0.85)", "metrics.auc", ["c", "b"]),
        ("metrics.auc > 0 or metrics.loss > 0", "metrics.loss", ["d", "a", "b", "c"]),
        ("not metrics.auc > 0.8", "metrics.auc desc", ["c", "e", "f"]),
        ("metrics.auc is null", "metrics.auc desc", ["e"]),
    ],
)
def test_order_by_a_metric_the_filter_needs(
    service: TrackingService, runs: dict[str, str], filter: str, order: str, expected: list[str]
) -> None:
    assert names(service, filter, [order, "name"]) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["metrics.auc desc"], ["d", "a", "b", "c", "f", "e"]),  # e has no auc, f NaN
        (["metrics.auc"], ["c", "b", "a", "d", "f", "e"]),
        (["metrics.auc desc", "name"], ["d", "a", "b", "c", "e", "f"]),
        (["metrics.loss", "metrics.auc desc"], ["d", "a", "b", "c", "f", "e"]),
    ],
)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7])
def test_metric_order_pages_runs_with_values_then_the_rest(
    service: TrackingService, runs: dict[str, str], order: list[str], expected: list[str], size: int
) -> None:
    got: list[str] = []
    token = None
    while True:
        page = service.search_runs("s", order_by=order, max_results=size, page_token=token)
        got += [r.name for r in page]
        token = page.next_page_token
        if token is None:
            break
    assert got == expected


@pytest.mark.parametrize(
    ("filter", "required"),
    [
        ("metrics.a > 1 and params.x = 'y'", {"a"}),
        ("metrics.a > 1 or metrics.b < 2", set()),
        ("metrics.a > 1 or (metrics.a < 0 and metrics.b = 1)", {"a"}),
        ("not metrics.a > 1", set()),
        ("metrics.a is null", set()),
        ("metrics.a is not null and metrics.b != 3", {"a", "b"}),
        ("metrics.a in (1, 2)", {"a"}),
        ("metrics.a not in (1, 2)", set()),
        ("params.a = '1'", set()),
    ],
)
def test_metrics_a_filter_requires(filter: str, required: set[str]) -> None:
    assert search.metrics_required(search.parse_filter(filter)) == required


def test_pages_cover_everything_once(service: TrackingService, runs: dict[str, str]) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = service.search_runs("s", order_by=["name"], max_results=4, page_token=token)
        seen += [r.name for r in page]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["a", "b", "c", "d", "e", "f"]
    first = service.search_runs("s", order_by=["name"], max_results=4)
    with pytest.raises(InvalidArgumentError, match="different search"):
        service.search_runs(
            "s", order_by=["name desc"], max_results=4, page_token=first.next_page_token
        )
    with pytest.raises(InvalidArgumentError, match="invalid page token"):
        service.search_runs("s", page_token="!!not-a-token")


@pytest.mark.parametrize(
    "attack",
    [
        "params.x = '1'; drop table runs",
        "params.x = '1''; drop table runs; --'",
        "params.model = 'rf' or 1=1",
        "name = 'a' union select * from params",
        "tags.`x; drop table runs` = 'y'",
        "params.x = '1' -- comment",
    ],
)
def test_injection_attempts_are_errors_or_values(
    service: TrackingService, runs: dict[str, str], attack: str
) -> None:
    try:
        found = names(service, attack)
    except InvalidArgumentError as exc:
        message = str(exc)
        found = []
    else:
        message = "invalid filter"  # no error: the text was compared as a value
    assert found == []
    assert "invalid filter" in message
    assert len(service.search_runs("s")) == 6  # and the tables are all still there


@pytest.mark.parametrize(
    ("filter", "position", "why"),
    [
        ("metrics.auc >", 14, "end of filter"),
        ("metrics.auc > 0.5 and", 22, "end of filter"),
        ("metrics.auc > 0.5 params.x = '1'", 19, "expected 'and', 'or'"),
        ("(metrics.auc > 0.5", 19, "expected ')'"),
        ("params.x = 'open", 12, "unterminated string"),
        ("colour = 'red'", 1, "unknown attribute 'colour'"),
        ("metrics.auc = 'high'", 1, "compares with numbers"),
        ("params.lr > 0.1", 1, "params are text"),
        ("status = 'sleeping'", 1, "unknown status"),
        ("metrics.auc ! 3", 13, "unexpected '!'"),
        ("params.x in 'a'", 13, "expected '('"),
        ("start_time > 'yesterday'", 1, "not a time"),
        ("name is null", 1, "never null"),
        ("params.x = rf", 12, "quote strings"),
        ("`x` = 1", 1, "needs a prefix"),
        ("params. = 'x'", 8, "expected a key"),
    ],
)
def test_malformed_filters_point_at_the_error(filter: str, position: int, why: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        search.parse_filter(filter)
    message = str(info.value)
    assert why in message
    assert f"at character {position}:" in message
    assert "\n" not in message


def test_order_by_errors() -> None:
    with pytest.raises(InvalidArgumentError, match=r"invalid order_by 'metrics\.auc sideways'"):
        search.parse_order_by(["metrics.auc sideways"])
    with pytest.raises(InvalidArgumentError, match="unknown attribute"):
        search.parse_order_by(["size"])


def test_huge_filter_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="longer than"):
        search.parse_filter("name = 'a' or " * 2000 + "name = 'b'")


def test_like_to_glob_escapes() -> None:
    assert search._like_to_glob("a%b_c*d?[e\\%") == "a*b?c[*]d[?][[]e%"
