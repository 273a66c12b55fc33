"""Property tests of the allocator against the exact dynamic program, on random small profiles.

Every instance: 2-8 tensors, 2-6 rows each (random integer bytes, random D, sometimes ties,
sometimes a 16-bit-like row of most bytes and D = 0), a random fixed cost, budgets between the
smallest and the largest achievable size. Then instances where one tensor holds 30-90% of the bytes
(the tied embedding of a small model), for the bound tightened by branching.
"""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ram.allocator import (
    Allocation,
    _prepare,
    _solve,
    achievable_range,
    allocate,
    allocate_sweep,
    exact_dp,
    hulls,
    synthetic_table,
)

N_INSTANCES = 300


def random_table(rng):
    T = int(rng.integers(2, 9))
    scale = int(rng.choice([1, 1, 4, 64]))              # common factors exercise the gcd in exact_dp
    rows = []
    for t in range(T):
        k = int(rng.integers(2, 7))
        nbytes = rng.integers(1, 80, k) * scale
        D = rng.random(k) * rng.choice([1.0, 10.0, 1000.0])
        if rng.random() < 0.3: D = D.round(1)            # ties in D and in ratios
        if rng.random() < 0.5:                           # a kept row: most bytes, no distortion
            nbytes[-1], D[-1] = nbytes.max() + scale * int(rng.integers(0, 40)), 0.0
        for j in range(k):
            rows.append((f't{t}', f'c{j}', int(nbytes[j]), float(D[j]), 'x'))
    tab = pd.DataFrame(rows, columns=['tensor', 'config', 'bytes', 'D', 'extra'])
    if rng.random() < 0.5: tab = tab.sample(frac=1, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
    return tab


def instances(n=N_INSTANCES, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        tab = random_table(rng)
        fixed = int(rng.integers(0, 20))
        lo, hi = achievable_range(tab, fixed)
        yield rng, tab, fixed, lo, hi


def d_range(tab):
    g = tab.groupby('tensor').D
    return float((g.max() - g.min()).max())


def test_against_exact_dp():
    excess, rel, rel_plain = [], [], []
    for rng, tab, fixed, lo, hi in instances():
        budget = int(rng.integers(lo, hi + 1))
        a, e = allocate(tab, budget, fixed), exact_dp(tab, budget, fixed)
        u = _solve(_prepare(tab), budget, fixed, branch=False)   # the method without branching
        chosen = tab.iloc[a.rows]
        # (1) within budget, one row per tensor, totals consistent with the table
        assert a.total_bytes <= budget and e.total_bytes <= budget
        assert list(chosen.tensor) == list(pd.unique(tab.tensor))
        assert a.total_bytes == fixed + chosen.bytes.sum()
        assert np.isclose(a.total_D, chosen.D.sum(), rtol=1e-12, atol=1e-12)
        # (2) the DP optimum lies between the dual bound and what allocate found
        assert a.total_D >= e.total_D - 1e-9
        assert a.dual_bound <= e.total_D + 1e-9
        assert a.gap >= -1e-9
        # the certificate is never looser than one tensor's whole distortion range (see the notebook)
        assert a.gap <= d_range(tab) + 1e-9
        # the tightened bound too, and branching never gives a worse plan
        assert a.dual_bound == u.dual_bound and a.dual_bound <= a.bound <= e.total_D + 1e-9
        assert a.total_D <= u.total_D and u.total_D >= e.total_D - 1e-9
        excess.append(a.total_D - e.total_D)
        rel.append((a.total_D - e.total_D) / max(e.total_D, 1e-12))
        rel_plain.append((u.total_D - e.total_D) / max(e.total_D, 1e-12))
    rel, rel_plain = np.array(rel), np.array(rel_plain)
    exact, exact_plain = float(np.mean(rel <= 1e-9)), float(np.mean(rel_plain <= 1e-9))
    within1 = float(np.mean(rel_plain <= 0.01))
    print(f'\n{len(rel)} instances: optimal on {exact:.1%} (without branching {exact_plain:.1%}, within 1% on '
          f'{within1:.1%}, median excess {np.median(rel_plain):.2%}, worst {rel_plain.max():.1%})')
    # (3) these instances are adversarial for a Lagrangian method (a handful of tensors, each step a
    # large share of the budget). Measured (seed 0, 300 instances), without branching: optimal on 98%,
    # within 1% on 99%; the path point alone, without the greedy fill, is optimal on 62% and within 1%
    # on 81%, so these thresholds fail if the fill (or the hull or multiplier under it) is broken.
    assert exact_plain >= 0.85 and within1 >= 0.92, (exact_plain, within1)
    # with branching: optimal on 100% (measured)
    assert exact >= 0.99, exact


def test_larger_instances_close_to_dp():
    "With 150 tensors each step is small next to the budget: within 1% of the optimum at low and mid budgets."
    for seed in range(3):
        tab = synthetic_table(150, seed=seed, numel_range=(128, 128 * 20))
        lo, hi = achievable_range(tab)
        for frac in (0.1, 0.2, 0.5, 0.8, 0.95):
            b = int(lo + frac * (hi - lo))
            a, e = allocate(tab, b), exact_dp(tab, b)
            assert a.dual_bound - 1e-12 <= e.total_D <= a.total_D + 1e-12
            assert a.gap <= d_range(tab)
            # measured: excess <= 0.5% up to 80% of the range. Near the top the remaining distortion
            # sits in a few tensors and the relative excess grows (up to ~8% at 95%), so no bound there.
            if frac <= 0.8: assert a.total_D <= e.total_D * 1.01, (seed, frac, a.total_D, e.total_D)


def test_sweep_is_monotonic_and_matches_allocate():
    for i, (rng, tab, fixed, lo, hi) in enumerate(instances(100, seed=1)):
        budgets = list(range(lo, hi + 3, max(1, (hi - lo) // 150)))   # every budget when the range is small
        sweep = allocate_sweep(tab, budgets, fixed)
        Ds = [s.total_D for s in sweep]
        # (4) a bigger budget never gives a larger total D
        assert all(b <= a + 1e-12 for a, b in zip(Ds, Ds[1:])), (i, Ds)
        assert all(s.total_bytes <= b for s, b in zip(sweep, budgets))
        assert all(t.dual_bound <= s.dual_bound + 1e-9 for s, t in zip(sweep, sweep[1:]))  # the bound falls too
        k = int(rng.integers(len(budgets)))
        assert sweep[k] == allocate(tab, budgets[k], fixed)


def test_budget_above_largest_gives_least_distortion():
    for rng, tab, fixed, lo, hi in instances(150, seed=2):
        a = allocate(tab, hi + int(rng.integers(0, 1000)), fixed)
        # (5) every tensor at its least-D row, ties broken by fewer bytes; zero gap
        best = tab.sort_values(['D', 'bytes'], kind='stable').groupby('tensor', sort=False).head(1)
        got = tab.iloc[a.rows]
        assert got.D.sum() == pytest.approx(best.D.sum(), abs=1e-12)
        assert sorted(zip(got.tensor, got.bytes, got.D)) == sorted(zip(best.tensor, best.bytes, best.D))
        assert a.total_bytes == hi and a.gap == 0 and a.lam == 0


def test_smallest_budget_and_infeasible():
    for rng, tab, fixed, lo, hi in instances(150, seed=3):
        a = allocate(tab, lo, fixed)
        assert a.total_bytes == lo and a.gap <= 1e-9
        # (6) below the smallest achievable size: a clear error naming the range
        with pytest.raises(ValueError, match='smallest') as err:
            allocate(tab, lo - 1 - int(rng.integers(0, 100)), fixed)
        assert f'{lo:,}' in str(err.value) and f'{hi:,}' in str(err.value) and 'GB' in str(err.value)


def test_deterministic_and_row_order():
    rng = np.random.default_rng(5)
    for _ in range(50):
        tab = random_table(rng)
        tab['D'] += rng.random(len(tab)) * 1e-6            # no exact ties: the order of rows must not matter
        lo, hi = achievable_range(tab)
        b = int(rng.integers(lo, hi + 1))
        a = allocate(tab, b)
        assert a == allocate(tab.copy(), b)
        sh = tab.sample(frac=1, random_state=int(rng.integers(1 << 30)))
        s = allocate(sh, b)
        assert sorted(tab.index[a.rows]) == sorted(sh.index[s.rows])
        assert (a.total_bytes, a.total_D) == (s.total_bytes, pytest.approx(s.total_D, rel=1e-12))


def test_hulls_are_convex_and_undominated():
    tab = synthetic_table(300, n_configs=12, seed=4)
    h = hulls(tab)
    for name, g in h.groupby('tensor', sort=False):
        assert g.bytes.is_monotonic_increasing and g.D.is_monotonic_decreasing
        s = g.slope.to_numpy()[:-1]
        assert np.all(np.diff(s) < 0) and np.isnan(g.slope.iloc[-1])
        # every row of the tensor lies on or above the hull
        allr = tab[tab.tensor == name]
        xs, ys = g.bytes.to_numpy(), g.D.to_numpy()
        inside = (allr.bytes >= xs[0]) & (allr.bytes <= xs[-1])
        assert np.all(allr.D[inside] >= np.interp(allr.bytes[inside], xs, ys) - 1e-12)
    assert len(pd.unique(h.tensor)) == 300


def test_pass_through_columns():
    tab = synthetic_table(40, seed=6)
    lo, hi = achievable_range(tab)
    a = allocate(tab, (lo + hi) // 2)
    chosen = a.chosen(tab)
    assert list(chosen.columns) == list(tab.columns) and len(chosen) == 40


def dominant_table(rng, share):
    """3-8 tensors, one of which holds `share` of the weights (so of the bytes at any one config); bytes and D from
    bit-widths 2-16 as in a profile, a random subset of them per tensor. Small enough for the exact DP."""
    T = int(rng.integers(3, 9))
    numel = rng.integers(2, 40, T) * 32
    big = int(rng.integers(T))
    numel[big] = max(32, round(share / (1 - share) * (numel.sum() - numel[big]) / 32) * 32)
    bits = np.array([2, 3, 4, 5, 6, 8, 16])
    rows = []
    for t in range(T):
        keep = np.sort(rng.choice(len(bits), int(rng.integers(2, len(bits) + 1)), replace=False))
        w = rng.lognormal(0.0, 1.0)
        for b in bits[keep]:
            nbytes = numel[t] * b // 8 + (numel[t] // 32) * 4 * (b < 16)   # a 4-byte scale and bias per 32 weights
            D = 0.0 if b == 16 else w * 4.0 ** -float(b) * rng.lognormal(0.0, 0.3)
            rows.append((f't{t}', f'{b}b', int(nbytes), float(D)))
    return pd.DataFrame(rows, columns=['tensor', 'config', 'bytes', 'D']), int(numel[big]) / int(numel.sum())


N_DOMINANT = 200
EXACT = 1e-9            # a relative gap this small: the bound is the optimum


def test_dominant_tensor_against_exact_dp():
    "One tensor holds 30-90% of the bytes: bound <= optimum <= plan, and the tightened gap is the plain one or less."
    rng = np.random.default_rng(11)
    plain, tight, optimal = [], [], []
    for _ in range(N_DOMINANT):
        tab, share = dominant_table(rng, rng.uniform(0.3, 0.9))
        assert 0.29 <= share <= 0.91
        fixed = int(rng.integers(0, 20))
        lo, hi = achievable_range(tab, fixed)
        budget = int(rng.integers(lo, hi + 1))
        a, e = allocate(tab, budget, fixed), exact_dp(tab, budget, fixed)
        u = _solve(_prepare(tab), budget, fixed, branch=False)
        tol = 1e-9 * max(1.0, e.total_D)
        assert a.total_bytes <= budget and a.total_bytes == fixed + tab.iloc[a.rows].bytes.sum()
        assert a.dual_bound == u.dual_bound and a.dual_bound <= a.bound + tol
        assert a.bound <= e.total_D + tol and e.total_D <= a.total_D + tol
        assert a.total_D <= u.total_D                   # the better plan of any branch, the unbranched one included
        assert a.tight_gap <= a.gap + tol and a.tight_gap <= u.gap + tol and a.tight_gap >= 0
        plain.append(u.rel_gap)
        tight.append(a.rel_tight_gap)
        optimal.append(a.total_D <= e.total_D + tol)
    plain, tight = np.array(plain), np.array(tight)
    print(f'\n{N_DOMINANT} instances: median gap {np.median(plain):.2%} by the dual bound alone, '
          f'{np.median(tight):.2%} tightened; bound exact on {np.mean(tight < EXACT):.0%}, plan optimal on '
          f'{np.mean(optimal):.0%}')
    # measured (seed 11): the dual bound alone has a median gap of 12% and is exact on none of them; tightened, the
    # median gap is 0 (exact on 60%), and the plan is optimal on 100% (91.5% without branching)
    assert np.median(plain) > 0.05 and np.mean(plain < EXACT) < 0.05
    assert np.median(tight) < EXACT and np.mean(tight < EXACT) >= 0.5
    assert np.mean(optimal) >= 0.99


def test_tightening_matters_on_a_dominant_embedding():
    "A small model's profile with a tied embedding of 63% of the weights: a plain gap of percents, tightened to ~0."
    tab = synthetic_table(126, seed=2, numel_range=(1.6e5, 1.3e6), embed_share=0.63)
    n = int(tab.groupby('tensor').numel.first().sum())
    a = allocate(tab, int(4.5 * n / 8))
    u = _solve(_prepare(tab), int(4.5 * n / 8), 0, branch=False)
    # measured: 6.78% by the dual bound alone, 0.013% tightened (the layers' own relaxation gap)
    assert u.rel_gap > 0.05 and a.rel_gap > 0.05 and a.rel_tight_gap < 0.001, (a.rel_gap, a.rel_tight_gap)
    assert a.dual_bound == u.dual_bound and a.total_D <= u.total_D
    d = a.to_dict()
    old = {k: v for k, v in d.items() if k != 'bound'}             # a plan saved before the tightened bound
    assert Allocation.from_dict(d) == a and Allocation.from_dict(old).bound == a.dual_bound


def test_never_imports_mlx():
    code = "import ram.allocator, sys; assert 'mlx' not in sys.modules, [m for m in sys.modules if 'mlx' in m]"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
