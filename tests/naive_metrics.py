"""Plain, loop-based references for riskgrid.metrics (independent of its code)."""

from __future__ import annotations

import math


def n_flagged(n_cells, coverage):
    k = int(math.floor(n_cells * coverage + 1e-9))
    return min(n_cells, max(1, k))


def ranking(risk):
    """Indices sorted by (risk descending, index ascending) with a plain sort."""
    return sorted(range(len(risk)), key=lambda i: (-float(risk[i]), i))


def metrics(risk, observed, area, coverage):
    """Dict of hit_rate, pai, pei, pei_star, auc for one coverage; NaN for no events."""
    n = len(risk)
    k = n_flagged(n, coverage)
    order = ranking(risk)
    flagged = order[:k]
    total = float(sum(observed))
    hits = float(sum(observed[i] for i in flagged))
    a = float(sum(area[i] for i in flagged))
    A = float(sum(area))
    # oracle: most events first, then smaller area, then index
    best = sorted(range(n), key=lambda i: (-float(observed[i]), float(area[i]), i))[:k]
    n_star = float(sum(observed[i] for i in best))
    a_star = float(sum(area[i] for i in best))
    nan = float("nan")
    if total == 0:
        return {"hit_rate": nan, "pai": nan, "pei": nan, "pei_star": nan, "auc": nan, "n_cells_flagged": k}
    hr = hits / total
    pai = hr / (a / A)
    pei = (hits / a) / (n_star / a_star)
    pei_star = hits / n_star
    # hit-rate curve point by point, trapezoids of width 1/n, normalised by k/n
    area_under = 0.0
    prev = 0.0
    running = 0.0
    for j in range(k):
        running += observed[order[j]]
        cur = running / total
        area_under += (prev + cur) / 2 * (1.0 / n)
        prev = cur
    auc = area_under / (k / n)
    return {"hit_rate": hr, "pai": pai, "pei": pei, "pei_star": pei_star, "auc": auc, "n_cells_flagged": k}


def poisson_loglik(expected, observed, floor=1e-9):
    total = 0.0
    for mu, y in zip(expected, observed):
        mu = max(float(mu), floor)
        total += y * math.log(mu) - mu - math.lgamma(y + 1)
    return total
