"""McNemar, DeLong and the paired tests against hand-computed references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from syllabus.evaluation.stats import bootstrap_p, delong, mcnemar, paired_t, verdict


def _pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, dtype=bool)
    return a, b


def test_mcnemar_chi_square_with_continuity_correction() -> None:
    # The textbook table: 101 both, 121 only A, 59 only B, 33 neither.
    result = mcnemar(*_pairs(101, 121, 59, 33))
    assert result.test == "mcnemar"
    assert result.statistic == pytest.approx((abs(121 - 59) - 1) ** 2 / 180)
    assert result.p_value == pytest.approx(5.45e-6, rel=0.01)


def test_mcnemar_exact_for_few_discordant_pairs() -> None:
    result = mcnemar(*_pairs(50, 1, 6, 10))
    assert result.test == "mcnemar exact"
    assert result.p_value == pytest.approx(2 * (1 + 7) / 128)  # 2 * P(X <= 1), X ~ B(7, 1/2)
    assert mcnemar(*_pairs(5, 0, 0, 5)).p_value == 1.0


def _delong_reference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong by its definition: pairwise kernels, O(m n)."""
    pos, neg = y == 1, y == 0

    def components(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    a10, a01 = components(a)
    b10, b01 = components(b)
    m, n = pos.sum(), neg.sum()
    var = np.var(a10 - b10, ddof=1) / m + np.var(a01 - b01, ddof=1) / n
    diff = a10.mean() - b10.mean()
    return diff, diff / np.sqrt(var)


def test_delong_matches_the_definition() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    a = np.round(y + rng.normal(size=300), 1)
    b = np.round(y + 1.5 * rng.normal(size=300), 1)
    auc_a, auc_b, result = delong(y == 1, a, b)
    assert auc_a == pytest.approx(roc_auc_score(y, a))
    assert auc_b == pytest.approx(roc_auc_score(y, b))
    diff, z = _delong_reference(y, a, b)
    assert auc_a - auc_b == pytest.approx(diff)
    assert result.statistic == pytest.approx(z)
    assert result.p_value < 0.05


def test_delong_identical_scores() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    assert delong(y == 1, s, s)[2].p_value == 1.0


def test_paired_t_and_bootstrap_p() -> None:
    rng = np.random.default_rng(6)
    loss = rng.random(200)
    assert paired_t(loss, loss).p_value == 1.0
    assert paired_t(loss, loss + 0.1 + 0.01 * rng.random(200)).p_value < 1e-6
    assert bootstrap_p(np.zeros(100)).p_value == 1.0
    assert bootstrap_p(np.full(100, 0.3)).p_value < 0.05


def test_verdict() -> None:
    assert verdict(0.1, 0.01, higher_is_better=True, confidence=0.95) == "better"
    assert verdict(0.1, 0.01, higher_is_better=False, confidence=0.95) == "worse"
    assert verdict(0.1, 0.2, higher_is_better=True, confidence=0.95) == (
        "no significant difference"
    )
