"""The drift engine: exact statistics, known shifts found exactly, false-positive rate."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as sps

from syllabus.errors import InvalidArgumentError
from syllabus.monitoring.profile import DataState, Profile, compare, profile_table
from syllabus.monitoring.rules import parse_rule
from syllabus.monitoring.stats import to_float


def _data(rng: np.random.Generator, n: int, shift: bool) -> pa.Table:
    cols = {}
    for i in range(8):
        mean = 0.5 if shift and i < 3 else 0.0
        cols[f"num_{i}"] = rng.normal(mean, 1.0, n)
    p = 1 / np.arange(1, 11) ** 1.1
    p /= p.sum()
    q = 0.5 * p + 0.5 * p[::-1] if shift else p
    cats = np.array([f"c{k}" for k in range(10)])
    cols["cat_0"] = cats[rng.choice(10, n, p=q)]
    cols["cat_1"] = cats[rng.choice(10, n, p=p)]
    return pa.table(cols)


def _report(ref: pa.Table, cur: pa.Table, batches: int = 1):  # type: ignore[no-untyped-def]
    profile = profile_table(ref)
    profile = Profile.from_json(profile.to_json())  # stored and read back
    state = profile.state()
    for batch in cur.to_batches(max_chunksize=max(1, cur.num_rows // batches)):
        state.add(profile, batch)
    return compare(profile, DataState.from_json(state.to_json()))


def test_statistics_equal_scipy_on_an_exact_grid() -> None:
    rng = np.random.default_rng(1)
    ref = pa.table({"x": rng.integers(0, 50, 800).astype(float)})
    cur = pa.table({"x": rng.integers(5, 60, 600).astype(float)})
    f = _report(ref, cur, batches=3).feature("x")
    a, b = ref["x"].to_numpy(), cur["x"].to_numpy()
    assert f.stats["ks"] == pytest.approx(sps.ks_2samp(a, b).statistic)
    w = sps.wasserstein_distance(a, b) / np.std(a, ddof=1)
    assert f.stats["wasserstein"] == pytest.approx(w)
    assert f.out_of_range == pytest.approx(np.mean((b < a.min()) | (b > a.max())))


@pytest.mark.parametrize("n", [2_000, 50_000])
def test_known_shifts_are_flagged_exactly(n: int) -> None:
    rng = np.random.default_rng(n)
    report = _report(_data(rng, n, False), _data(rng, n, True), batches=4)
    assert set(report.drifted) == {"num_0", "num_1", "num_2", "cat_0"}
    assert report.drift_share == pytest.approx(4 / 10)


@pytest.mark.slow
def test_false_positive_rate_on_same_distribution_is_low() -> None:
    """Documented in docs/monitoring.md: 0 of 2,000 feature tests flagged here."""
    flagged = tests = 0
    for seed in range(200):
        rng = np.random.default_rng(10_000 + seed)
        n = int(rng.choice([50, 200, 1000, 5000]))
        report = _report(_data(rng, n, False), _data(rng, n, False))
        flagged += len(report.drifted)
        tests += len(report.features)
    assert tests == 2000
    assert flagged / tests <= 0.005


def test_tiny_and_empty_current_data_are_not_judged() -> None:
    rng = np.random.default_rng(3)
    ref = _data(rng, 1000, False)
    tiny = _report(ref, _data(rng, 5, True))
    assert all(f.drifted is None for f in tiny.features)
    assert tiny.drift_share is None
    empty = _report(ref, ref.slice(0, 0))
    assert empty.rows == 0
    assert all(f.drifted is None and f.null_rate is None for f in empty.features)


def test_unseen_categories_nulls_and_type_errors() -> None:
    ref = pa.table({"city": ["a", "b"] * 500, "age": [30.0, 40.0] * 500})
    cur = pa.table({"city": ["a", "z", None, "b"] * 250,
                    "age": ["31", "x", None, "45"] * 250})  # fmt: skip
    report = _report(ref, cur)
    city, age = report.feature("city"), report.feature("age")
    assert city.new_categories == (("z", 250),)
    assert city.null_rate == pytest.approx(0.25)
    assert city.drifted is True
    assert age.type_errors == 250
    assert age.null_rate == pytest.approx(0.25)
    assert age.out_of_range == pytest.approx(0.5)  # 45 is above the reference max
    values, nulls, errors = to_float(pa.array(["1.5", "nan", None, "bad"]))
    assert values.tolist() == [1.5]
    assert (nulls, errors) == (2, 1)


def test_rule_language() -> None:
    r = parse_rule("psi(age) > 0.2 for 2 windows")
    assert (r.metric, r.feature, r.op, r.value, r.windows) == ("psi", "age", ">", 0.2, 2)
    assert parse_rule("latency_p99 > 0.2s").value == 200
    assert parse_rule("null_rate(income) > 5%").value == pytest.approx(0.05)
    assert parse_rule("accuracy < 0.85").text == "accuracy < 0.85"
    for bad, why in [("psi > 0.2", "needs a feature"), ("drift_share 0.3", "no comparison"),
                     ("foo > 1", "unknown metric"), ("accuracy < 0.8ms", "latency metrics"),
                     ("drift_share > 0.3 for two windows", "for N windows")]:  # fmt: skip
        with pytest.raises(InvalidArgumentError, match=why):
            parse_rule(bad)
