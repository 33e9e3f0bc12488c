"""Decision quality of the ``beats`` promotion gate: how often it promotes a challenger
that is truly worse, truly equal and truly better than the champion.

Issue 7 ("Decision quality"): point-value comparisons promote noise. This repeats the
experiment on synthetic data where the truth is known: every test set is a fresh sample
of ``--rows`` labelled rows from one population (half positives); the champion scores a
row ``y + e_a`` and the challenger ``mu * y + e_b``, with ``e_a, e_b`` standard normal and
correlated (``--rho``, models trained on similar features make correlated errors). The
true ROC AUC of a score ``mu * y + e`` is ``Phi(mu / sqrt(2))``, so the truth is exact:

* worse: ``mu`` gives a true AUC ``--worse`` (default 0.002) below the champion's;
* equal: ``mu = 1``, the same true AUC (a different model with the same skill);
* better: a true AUC ``--effect`` (default 0.01, the documented effect size) above it.

Each test set is scored by the evaluation service's own code (``score_classification``,
the paired ``bootstrap`` with ``--resamples`` resamples, ``EvaluationService._compare``:
DeLong's test for ROC AUC and the paired interval of the delta) and judged by the gate's
own rule (``syllabus.evaluation.gate._judge``, ``metric: roc_auc, min_delta: 1e-4,
confidence: 0.95, require: better``): a one-sided DeLong test of "improvement <= margin"
at 5 %. Only the ROC AUC metric is bootstrapped, for speed; the gate's decision on ROC AUC
does not use the bootstrap (DeLong's standard error), so ``--resamples`` only changes the
reported interval. Next to it, two other rules on the same test sets: the gate's
previous rule (two-sided DeLong at 5 %, i.e. one-sided at 2.5 %, and the two-sided 95 %
bootstrap interval above the margin), and the naive rule the issue warns about: promote
when the challenger's point AUC exceeds the champion's by more than the margin.

Targets: the gate promotes a worse or an equal challenger in at most 5 % of the test
sets, and a better one (at the documented effect size) in at least 70 %. Every rate is
printed with its 95 % Wilson interval (the sampling error of ``--sets`` test sets).

Run: ``.venv/bin/python bench/decisions.py`` (1,000 test sets of 5,000 rows per case;
``--sets 200`` for a quicker look).
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
console = Console(highlight=False, width=160)


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
    """(gate promotes, previous two-sided rule promotes, naive rule promotes, point
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
    two_sided = cmp.verdict == "better" and (
        settings.min_delta == 0 or (cmp.low is not None and cmp.low >= settings.min_delta)
    )
    se = float("nan") if cmp.se is None else cmp.se
    return promoted, two_sided, delta > settings.min_delta, delta, se


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=1000, help="test sets per case (>= 200)")
    ap.add_argument("--rows", type=int, default=5000, help="rows per test set")
    ap.add_argument("--resamples", type=int, default=200, help="bootstrap (interval only)")
    ap.add_argument("--rho", type=float, default=0.8, help="correlation of the two models' errors")
    ap.add_argument("--worse", type=float, default=0.002, help="true AUC deficit of 'worse'")
    ap.add_argument("--effect", type=float, default=0.01, help="true AUC gain of 'better'")
    ap.add_argument("--min-delta", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)

    settings = BeatsSettings(
        champion="production", metrics=("roc_auc",), min_delta=args.min_delta, confidence=0.95
    )
    base = true_auc(1.0)
    cases = {
        "worse": base - args.worse,
        "equal": base,
        "better": base + args.effect,
    }
    console.print(
        f"[bold]gate decisions[/]: {args.sets} test sets x {args.rows:,} rows per case, "
        f"{args.resamples:,} resamples, error correlation {args.rho}, beats roc_auc "
        f"min_delta {args.min_delta:g} at 95 %; champion's true AUC {base:.4f}"
    )
    table = Table(title="how often the challenger is promoted")
    for col in ("challenger", "true AUC delta", "gate (one-sided DeLong)", "95 % interval",
                "previous two-sided rule", "naive point check", "mean delta", "target",
                "verdict"):  # fmt: skip
        table.add_column(col, justify="left" if col == "challenger" else "right")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    for name, auc in cases.items():
        mu = mu_for(auc)
        gate = old = naive = 0
        deltas, ses = [], []
        for i in range(args.sets):
            y, s_a, s_b = draw_test_set(rng, args.rows, mu, args.rho)
            g, o, n, d, se = judge(y, s_a, s_b, settings, args.resamples, seed=args.seed + i)
            gate += g
            old += o
            naive += n
            deltas.append(d)
            ses.append(se)
        rate, naive_rate = gate / args.sets, naive / args.sets
        low, high = wilson(gate, args.sets)
        if name == "better":
            target, ok, sure = f">= {MIN_POWER:.0%}", rate >= MIN_POWER, low >= MIN_POWER
            unsure = high >= MIN_POWER
        else:
            target, ok, sure = f"<= {MAX_FALSE:.0%}", rate <= MAX_FALSE, high <= MAX_FALSE
            unsure = low <= MAX_FALSE
        verdict = "PASS" if sure else ("PASS (within sampling error)" if ok else (
            "MISS (within sampling error)" if unsure else "MISS"))  # fmt: skip
        # DeLong's standard error against the spread of the deltas over the test sets,
        # and the power an exact one-sided z-test at 5 % has with that spread
        spread, mean_se = float(np.std(deltas, ddof=1)), float(np.nanmean(ses))
        ideal = float(sps.norm.cdf((auc - base - args.min_delta) / spread - sps.norm.ppf(0.95)))
        summary[name] = {"gate": rate, "interval": (low, high), "previous": old / args.sets,
                         "naive": naive_rate, "sd": spread, "se": mean_se,
                         "ideal": ideal}  # fmt: skip
        table.add_row(
            name,
            f"{auc - base:+.4f}",
            f"{rate:.1%} ({gate}/{args.sets})",
            f"[{low:.1%}, {high:.1%}]",
            f"{old / args.sets:.1%}",
            f"{naive_rate:.1%}",
            f"{np.mean(deltas):+.4f}",
            target,
            verdict,
        )
    console.print(table)
    for name, row in summary.items():
        console.print(
            f"{name}: sd of the delta over test sets {row['sd']:.5f}, mean DeLong se "
            f"{row['se']:.5f}; an exact one-sided 5 % test with that spread promotes "
            f"{row['ideal']:.1%} (the gate: {row['gate']:.1%})"
        )
    console.print(f"{3 * args.sets} evaluations in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
