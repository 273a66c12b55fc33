"""Allocator speed and quality: `ram.allocator.allocate` on a synthetic 100,000-tensor profile, against a naive greedy
and the exact DP.

    python bench/allocator_speed.py [--n 100000] [--configs 19] [--repeat 3] [--naive-n 10000] [--dp-n 200]

1. `allocate` on synthetic_table(n, configs) at budgets 25%, 50%, 75% of the way from the smallest
   to the largest achievable size: seconds per call (table in, Allocation out: hulls included),
   relative gap to the Lagrangian dual bound and to the tightened bound; and `allocate_sweep` over
   the three budgets.
2. Baseline: the naive greedy (every tensor at its cheapest row, then repeatedly the single upgrade
   of best dD/dBytes that fits, from a Python heap) on a `--naive-n`-tensor profile, beside
   `allocate` on the same profile: time, total D, excess over the dual bound.
3. Quality: on a `--dp-n`-tensor profile with small tensors (so the exact DP over byte units is
   tractable), allocate's total D against the exact optimum.
4. One tensor most of the model: 126 layer tensors and a tied embedding of 63% of the weights, at
   3.5 to 6.5 bpw: the gap by the dual bound alone and tightened by branching, and the seconds per
   call with and without branching (hulls prepared once).
Pure numpy; no MLX. Timings are wall-clock, best of `--repeat`.
"""
import argparse
import heapq
import os
import platform
import time

import numpy as np

from ram.allocator import _prepare, _solve, achievable_range, allocate, allocate_sweep, exact_dp, synthetic_table

FRACS = (0.25, 0.5, 0.75)


def best_of(f, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter(); out = f(); times.append(time.perf_counter() - t0)
    return min(times), float(np.mean(times)), out


def naive_greedy(table, budget, fixed=0):
    "Start every tensor at its cheapest row; repeatedly apply the single best-ratio upgrade that fits (Python heap)."
    rows = {}
    for pos, (t, b, d) in enumerate(zip(table['tensor'].tolist(), table['bytes'].tolist(), table['D'].tolist())):
        rows.setdefault(t, []).append((b, d, pos))
    opts = [sorted(v) for v in rows.values()]                    # by bytes, then D, then position
    cur = [0] * len(opts)
    room = budget - fixed - sum(o[0][0] for o in opts)
    if room < 0: raise ValueError('infeasible')

    def best(t):
        b0, d0, _ = opts[t][cur[t]]
        key = None
        for i, (b, d, pos) in enumerate(opts[t]):
            db, dd = b - b0, d0 - d
            if 0 < db <= room and dd > 0:
                k = (-dd / db, db, pos, i)
                if key is None or k < key: key = k
        return key

    heap, version = [], [0] * len(opts)
    for t in range(len(opts)):
        k = best(t)
        if k: heap.append((*k, t, 0))
    heapq.heapify(heap)
    steps = 0
    while heap:
        neg, db, pos, i, t, v = heapq.heappop(heap)
        if v != version[t]: continue
        if db > room:                                            # no longer fits: the tensor's next best
            k = best(t)
            if k: heapq.heappush(heap, (*k, t, v))
            continue
        cur[t], room, steps = i, room - db, steps + 1
        version[t] += 1
        k = best(t)
        if k: heapq.heappush(heap, (*k, t, version[t]))
    total_D = sum(opts[t][c][1] for t, c in enumerate(cur))
    total_bytes = fixed + sum(opts[t][c][0] for t, c in enumerate(cur))
    return total_D, total_bytes, steps


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=100_000); p.add_argument('--configs', type=int, default=19)
    p.add_argument('--repeat', type=int, default=3); p.add_argument('--naive-n', type=int, default=10_000)
    p.add_argument('--dp-n', type=int, default=200)
    a = p.parse_args()
    print(f'machine: {platform.machine()} {platform.processor() or ""}, {os.cpu_count()} cores, numpy {np.__version__}')

    t0 = time.perf_counter()
    tab = synthetic_table(a.n, a.configs)
    lo, hi = achievable_range(tab)
    print(
        f'\n1. allocate on synthetic_table({a.n:,}, {a.configs}): {len(tab):,} rows (built in '
        f'{time.perf_counter() - t0:.2f} s); '
        f'achievable {lo:,} .. {hi:,} bytes ({lo / 1e9:.2f} .. {hi / 1e9:.2f} GB)'
    )
    budgets = [int(lo + f * (hi - lo)) for f in FRACS]
    print(
        f'{"budget":>8} {"GB":>8} {"best s":>8} {"mean s":>8} {"rel gap":>10} {"tightened":>10} {"lambda":>10} '
        f'{"used/budget":>12}'
    )
    for f, b in zip(FRACS, budgets):
        best, mean, al = best_of(lambda: allocate(tab, b), a.repeat)
        print(
            f'{f:>8.0%} {b / 1e9:>8.3f} {best:>8.3f} {mean:>8.3f} {al.rel_gap:>10.2e} {al.rel_tight_gap:>10.2e} '
            f'{al.lam:>10.3g} {al.total_bytes / b:>12.6f}'
        )
    best, mean, sw = best_of(lambda: allocate_sweep(tab, budgets), a.repeat)
    print(
        f'allocate_sweep over the 3 budgets: {best:.3f} s (mean {mean:.3f}); worst rel gap '
        f'{max(s.rel_gap for s in sw):.2e}'
    )

    n = a.naive_n
    small = tab if n == a.n else synthetic_table(n, a.configs)
    lo, hi = achievable_range(small)
    b = int(lo + 0.5 * (hi - lo))
    print(f'\n2. baseline on synthetic_table({n:,}, {a.configs}), budget at 50% ({b / 1e9:.3f} GB)')
    t_ours, _, al = best_of(lambda: allocate(small, b), a.repeat)
    t0 = time.perf_counter(); nD, nbytes, steps = naive_greedy(small, b); t_naive = time.perf_counter() - t0
    print(f'{"method":>28} {"seconds":>9} {"total D":>12} {"excess over dual bound":>24}')
    print(f'{"allocate":>28} {t_ours:>9.3f} {al.total_D:>12.6g} {al.rel_gap:>24.2e}')
    print(f'{"naive greedy (Python heap)":>28} {t_naive:>9.3f} {nD:>12.6g} {(nD - al.dual_bound) / nD:>24.2e}')
    print(f'naive greedy: {steps:,} upgrades, {nbytes:,} bytes; allocate is {t_naive / t_ours:.0f}x faster')

    dp = synthetic_table(a.dp_n, a.configs, seed=1, numel_range=(128, 128 * 20))
    lo, hi = achievable_range(dp)
    print(
        f'\n3. against the exact DP on synthetic_table({a.dp_n}, {a.configs}, numel 128..2560): achievable {lo:,} '
        f'.. {hi:,} bytes'
    )
    print(
        f'{"budget":>8} {"allocate s":>11} {"DP s":>8} {"allocate D":>12} {"optimal D":>12} {"rel excess":>11} '
        f'{"rel gap":>9}'
    )
    for f in FRACS:
        b = int(lo + f * (hi - lo))
        t_a, _, al = best_of(lambda: allocate(dp, b), a.repeat)
        t0 = time.perf_counter(); e = exact_dp(dp, b); t_e = time.perf_counter() - t0
        print(f'{f:>8.0%} {t_a:>11.4f} {t_e:>8.2f} {al.total_D:>12.6g} {e.total_D:>12.6g} '
              f'{(al.total_D - e.total_D) / e.total_D:>11.2e} {al.rel_gap:>9.2e}')

    emb = synthetic_table(126, a.configs, seed=2, numel_range=(1.6e5, 1.3e6), embed_share=0.63)
    n_emb = int(emb.groupby('tensor').numel.first().sum())
    p = _prepare(emb)
    print(f'\n4. one tensor most of the model: synthetic_table(126, embed_share=0.63), {n_emb:,} weights')
    print(
        f'{"bpw":>5} {"gap, dual bound":>16} {"tightened":>10} {"D lower by":>11} {"plain ms":>9} {"branched ms":>12}'
    )
    for bpw in (3.5, 4.5, 5.5, 6.5):
        b = int(bpw * n_emb / 8)
        t_plain, _, u = best_of(lambda: _solve(p, b, 0, branch=False), a.repeat)
        t_tight, _, al = best_of(lambda: _solve(p, b, 0), a.repeat)
        print(f'{bpw:>5} {u.rel_gap:>16.2e} {al.rel_tight_gap:>10.2e} {1 - al.total_D / u.total_D:>11.2e} '
              f'{1e3 * t_plain:>9.2f} {1e3 * t_tight:>12.2f}')


if __name__ == '__main__':
    main()
