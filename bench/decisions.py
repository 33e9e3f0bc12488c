"""Decision quality of the ``beats`` promotion gate: how often it promotes a challenger
that is truly worse, truly equal and truly better than the champion, and its power curve.

Issue 7 ("Decision quality"): point-value comparisons promote noise. This repeats the
experiment on synthetic data where the truth is known: every test set is a fresh sample
of ``--rows`` labelled rows from one population (half positives); the champion scores a
row ``y + e_a`` and the challenger ``mu * y + e_b``, with ``e_a, e_b`` standard normal and
correlated (``--rho``, models trained on similar features make correlated errors). The
true ROC AUC of a score ``mu * y + e`` is ``Phi(mu / sqrt(2))``, so the truth is exact:

* worse: ``mu`` gives a true AUC ``--worse`` (default 0.002) below the champion's;
* equal: ``mu = 1``: the same true AUC, but a different model (its own errors, correlated
  ``--rho`` with the champion's), so the two disagree on every test set;
* better: a true AUC ``--effect`` (default 0.0125, the documented effect size) above it.

Each test set is scored by the evaluation service's own code (``score_classification``,
the paired ``bootstrap``, ``EvaluationService._compare``: DeLong's test for ROC AUC) and
judged by the gate's own rule (``syllabus.evaluation.gate._judge``, ``beats: {metric:
roc_auc, min_delta: 0.0, confidence: 0.95}``, the issue's policy): the two-sided 95 %
interval of the improvement must lie above ``min_delta``, i.e. a one-sided DeLong test at
2.5 %. The gate's decision on ROC AUC uses DeLong's standard error, not the bootstrap, so
the bootstrap is skipped by default (``--resamples N`` computes it, for the interval the
evaluation would also store; it does not change a decision). Next to the gate, on the same
test sets: the previous rule (one-sided at 5 %) and the naive rule the issue warns about
(promote when the challenger's point AUC is ahead by more than ``min_delta``).
Then ``require: not_worse`` with ``--margin`` (0.01): a challenger truly worse by exactly
the margin (the null's boundary: passes at most 5 %, nominally 2.5 %) and an equal one
(how often non-inferiority is shown; no target).

Targets: the gate promotes a worse or an equal challenger in at most 5 % of the test sets,
and a better one at the documented effect size in at least 70 %. Each rate is printed
with its 95 % Wilson interval (the sampling error of ``--sets`` test sets); the verdict
compares the point estimate with the target. Then the power curve: the gate's promotion
rate at several true AUC gains (``--curve``, ``--curve-sets`` test sets each) next to the
power of an exact one-sided 2.5 % z-test with the delta's spread measured in the equal
case, ``Phi(gain / sd - 1.96)``: the effect size documented for 70 % power is read off
this curve.

Run: ``.venv/bin/python bench/decisions.py`` (2,000 test sets of 5,000 rows per case and
1,000 per point of the curve; about 2 minutes).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats as sps

from syllabus.evaluation.gate import BeatsSettings, _judge
from syllabus.evaluation.metrics import bootstrap, score_classification
from syllabus.evaluation.service import EvaluationService

MAX_FALSE = 0.05  # worse and equal challengers: promoted at most 5 % of the time
MIN_POWER = 0.70  # a better challenger at the documented effect size: at least 70 %
console = Console(highlight=False, width=170)


def true_auc(mu: float) -> float:
    """ROC AUC of the score ``mu * y + e`` (``e`` standard normal)."""
    return float(sps.norm.cdf(mu / math.sqrt(2)))


def mu_for(auc: float) -> float:
    return float(math.sqrt(2) * sps.norm.ppf(auc))


def draw_test_set(
    rng: np.random.Generator, rows: int, mu: float, rho: float
) -> tuple[np.ndarray, ...]:
    y = rng.integers(0, 2, rows)
    e_a = rng.normal(size=rows)
    e_b = rho * e_a + math.sqrt(1 - rho**2) * rng.normal(size=rows)
    return y, 1.0 * y + e_a, mu * y + e_b


def wilson(hits: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a rate."""
    if total == 0:
        return 0.0, 1.0
    rate = hits / total
    centre = (rate + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total))
    half /= 1 + z * z / total
    return max(0.0, centre - half), min(1.0, centre + half)


def judge(
    y: np.ndarray,
    s_a: np.ndarray,
    s_b: np.ndarray,
    settings: BeatsSettings,
    resamples: int,
    seed: int,
) -> tuple[bool, bool, bool, float, float]:
    """(gate promotes, previous one-sided 5 % rule promotes, naive rule promotes, point
    delta, DeLong's standard error) for challenger ``s_b``."""
    scored = []
    for s in (s_b, s_a):  # candidate first, as the service orders them
        proba = 1 / (1 + np.exp(-(s - 0.5)))
        p = np.column_stack([1 - proba, proba])
        sc = score_classification(y, (proba > 0.5).astype(np.int64), p, [0, 1], curves=False)
        sc.metrics = [m for m in sc.metrics if m.name == "roc_auc"]
        scored.append(sc)
    values = bootstrap(scored, len(y), count=resamples, seed=seed, confidence=settings.confidence)
    (cmp,) = EvaluationService._compare(scored, values, y, settings.confidence)
    promoted, _text = _judge(cmp, "roc_auc", settings)
    delta = float(cmp.delta or 0.0)
    se = float("nan") if cmp.se is None else cmp.se
    previous = math.isfinite(se) and delta - float(sps.norm.ppf(0.95)) * se > settings.min_delta
    return promoted, previous, delta > settings.min_delta, delta, se


def run_case(
    rng: np.random.Generator,
    args: argparse.Namespace,
    settings: BeatsSettings,
    mu: float,
    sets: int,
) -> dict[str, Any]:
    gate = old = naive = 0
    deltas, ses = [], []
    for i in range(sets):
        y, s_a, s_b = draw_test_set(rng, args.rows, mu, args.rho)
        g, o, n, d, se = judge(y, s_a, s_b, settings, args.resamples, seed=args.seed + i)
        gate += g
        old += o
        naive += n
        deltas.append(d)
        ses.append(se)
    return {
        "hits": gate,
        "sets": sets,
        "gate": gate / sets,
        "interval": wilson(gate, sets),
        "previous": old / sets,
        "naive": naive / sets,
        "mean": float(np.mean(deltas)),
        "sd": float(np.std(deltas, ddof=1)),
        "se": float(np.nanmean(ses)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=2000, help="test sets per case (>= 200)")
    ap.add_argument("--rows", type=int, default=5000, help="rows per test set")
    ap.add_argument("--resamples", type=int, default=0, help="bootstrap (interval only)")
    ap.add_argument("--rho", type=float, default=0.8, help="correlation of the two models' errors")
    ap.add_argument("--worse", type=float, default=0.002, help="true AUC deficit of 'worse'")
    ap.add_argument("--effect", type=float, default=0.0125, help="true AUC gain of 'better'")
    ap.add_argument("--min-delta", type=float, default=0.0)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument(
        "--margin", type=float, default=0.01, help="not_worse margin (0: skip that table)"
    )
    ap.add_argument(
        "--curve",
        default="0.005,0.0075,0.01,0.0125,0.015,0.02",
        help="true AUC gains of the power curve (comma-separated; empty: none)",
    )
    ap.add_argument("--curve-sets", type=int, default=1000, help="test sets per curve point")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    if args.sets < 200:
        ap.error("--sets must be at least 200")

    settings = BeatsSettings(
        champion="production",
        metrics=("roc_auc",),
        min_delta=args.min_delta,
        confidence=args.confidence,
    )
    alpha = (1 - args.confidence) / 2
    base = true_auc(1.0)
    cases = {"worse": base - args.worse, "equal": base, "better": base + args.effect}
    console.print(
        f"[bold]gate decisions[/]: {args.sets} test sets x {args.rows:,} rows per case, "
        f"error correlation {args.rho}, beats roc_auc min_delta {args.min_delta:g} at "
        f"confidence {args.confidence:g} (one-sided {alpha:.3g}); champion's true AUC {base:.4f}"
    )
    table = Table(title="how often the challenger is promoted")
    for col in ("challenger", "true AUC delta", "gate", "95 % Wilson interval",
                "previous rule (one-sided 5 %)", "naive point check", "mean delta",
                "target", "verdict"):  # fmt: skip
        table.add_column(col, justify="left" if col == "challenger" else "right")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    summary: dict[str, dict[str, Any]] = {}
    for name, auc in cases.items():
        row = run_case(rng, args, settings, mu_for(auc), args.sets)
        summary[name] = row
        rate, (low, high) = row["gate"], row["interval"]
        if name == "better":
            target, ok = f">= {MIN_POWER:.0%}", rate >= MIN_POWER
        else:
            target, ok = f"<= {MAX_FALSE:.0%}", rate <= MAX_FALSE
        table.add_row(
            name,
            f"{auc - base:+.4f}",
            f"{rate:.2%} ({row['hits']}/{row['sets']})",
            f"[{low:.2%}, {high:.2%}]",
            f"{row['previous']:.2%}",
            f"{row['naive']:.2%}",
            f"{row['mean']:+.5f}",
            target,
            "PASS" if ok else "MISS",
        )
    console.print(table)
    z = float(sps.norm.ppf(1 - alpha))
    for name, row in summary.items():
        gain = cases[name] - base - args.min_delta
        ideal = float(sps.norm.cdf(gain / row["sd"] - z))
        console.print(
            f"{name}: sd of the delta over test sets {row['sd']:.5f}, mean DeLong se "
            f"{row['se']:.5f}; an exact one-sided {alpha:.3g} z-test with that spread promotes "
            f"{ideal:.2%} (the gate: {row['gate']:.2%})"
        )
    if args.margin > 0:
        nonworse = BeatsSettings(
            metrics=("roc_auc",),
            confidence=args.confidence,
            require="not_worse",
            margin=args.margin,
        )
        nw = Table(title=f"require: not_worse, margin {args.margin:g} ({args.sets} test sets)")
        for col in ("challenger", "true AUC delta", "gate passes", "95 % Wilson interval",
                    "target", "verdict"):  # fmt: skip
            nw.add_column(col, justify="left" if col == "challenger" else "right")
        for name, delta in (("worse by the margin", -args.margin), ("equal", 0.0)):
            row = run_case(rng, args, nonworse, mu_for(base + delta), args.sets)
            low, high = row["interval"]
            bad = delta <= -args.margin
            nw.add_row(
                name,
                f"{delta:+.4f}",
                f"{row['gate']:.2%} ({row['hits']}/{row['sets']})",
                f"[{low:.2%}, {high:.2%}]",
                f"<= {MAX_FALSE:.0%}" if bad else "-",
                ("PASS" if row["gate"] <= MAX_FALSE else "MISS") if bad else "-",
            )
        console.print(nw)
    gains = [float(g) for g in args.curve.split(",") if g.strip()]
    if gains:
        sd = summary["equal"]["sd"]
        curve = Table(title=f"power curve ({args.curve_sets} test sets per gain)")
        for col in ("true AUC gain", "gain / sd", "gate promotes", "95 % Wilson interval",
                    f"exact z-test, Phi(gain/sd - {z:.2f})", ">= 70 %"):  # fmt: skip
            curve.add_column(col, justify="right")
        for gain in gains:
            row = run_case(rng, args, settings, mu_for(base + gain), args.curve_sets)
            low, high = row["interval"]
            ideal = float(sps.norm.cdf((gain - args.min_delta) / sd - z))
            curve.add_row(
                f"+{gain:.4f}",
                f"{gain / sd:.2f}",
                f"{row['gate']:.1%}",
                f"[{low:.1%}, {high:.1%}]",
                f"{ideal:.1%}",
                "yes" if row["gate"] >= MIN_POWER else "no",
            )
        console.print(curve)
    console.print(f"finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
