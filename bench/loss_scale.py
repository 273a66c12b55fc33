"""Issue 15's measurement: every distortion mode against uniform at exactly uniform's bytes, paired on the same windows.

    python bench/loss_scale.py [--model reference] [--n 16] [--modes weight activation fisher taylor]
                               [--at 4b-g64 4b-g32] [--default taylor --default-at 3b-g64 5b-g64]
                               [--calib-n 16] [--runs runs]

For each uniform config U in --at (and, for the --default mode only, in --default-at): U's exact
bytes become RAM's budget, RAM is allocated on each mode's D, and every condition is scored on the
same WikiText-2 windows (seed 42, --n x --length tokens, the fast fp32 path). Printed per condition:
bytes, corpus and median PPL, the share of the unquantized-to-uniform gap recovered
    recovered = (PPL_uniform - PPL_RAM) / (PPL_uniform - PPL_unquantized)
(on the corpus PPL and on the median), and the paired Wilcoxon signed-rank p-value of RAM against
uniform on the per-window log-PPL. Scores are kept in the condition cache the paper templates use
(`ram.reproduce.condition_cache`, outside the checkout), so a stopped run resumes, a fresh clone
reuses it, and reruns are instant. The table is written to RUNS/<model>/loss_scale.{md,json}.
"""
import argparse
import json
import time
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference')
    p.add_argument('--n', type=int, default=16, help='windows (default 16, the quick protocol)')
    p.add_argument('--length', type=int, default=2048)
    p.add_argument('--modes', nargs='+', default=['weight', 'activation', 'fisher', 'taylor'])
    p.add_argument('--at', nargs='+', default=['4b-g64', '4b-g32'], help='uniform configs whose bytes every mode gets')
    p.add_argument('--default', default='taylor', help='the mode also run at --default-at')
    p.add_argument('--default-at', nargs='*', default=['3b-g64', '5b-g64'])
    p.add_argument('--calib-n', type=int, default=16)
    p.add_argument('--calib-length', type=int, default=512)
    p.add_argument('--runs', default='runs')
    p.add_argument('--baselines', action='store_true',
                   help='also mlx-lm dynamic (at the bpw of uniform 4b-g32 and 4b-g64) and mlx-lm mixed_4_6, each '
                        'beside RAM (default mode) at its exact bytes')
    p.add_argument('--dynamic-calib-n', type=int, default=32, help='512-token windows for mlx-lm dynamic (default 32)')
    a = p.parse_args()
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    from ram.allocator import plan_budgets
    from ram.core import Plan
    from ram.baselines import dynamic_plan, recipe_plan, uniform_plan
    from ram.metrics import gap_recovered, paired
    from ram.profiler import mode_profiles
    from ram.reproduce import cached_ppl, condition_cache, model_slug
    from ram.scoring import get_protocol

    t0 = time.perf_counter()
    modes = tuple(dict.fromkeys(['weight', *a.modes, a.default]))
    profs = mode_profiles(a.model, modes, calib_n=a.calib_n, calib_length=a.calib_length)  # each mode's own profile
    prof, ppath = profs[a.default]
    print(f'profiles: {", ".join(sorted({p.name for _, p in profs.values()}))} ({time.perf_counter() - t0:.0f} s)',
          flush=True)
    runs = Path(a.runs) / model_slug(a.model)
    cache = condition_cache(a.model)
    proto = get_protocol('quick' if (a.n, a.length) == (16, 2048) else 'paper', a.n, a.length, 42)
    base = cached_ppl(a.model, None, proto, cache, 'unquantized')
    rows = []
    jobs = ([(u, a.default) for u in a.at] + [(u, m) for u in a.at for m in a.modes if m != a.default]
            + [(u, a.default) for u in a.default_at])  # the default mode first: the number that matters most
    uniforms, notes = {}, []
    def row(u, mode, up, ur):
        (plan,) = plan_budgets(profs[mode][0], [up.total_bytes], mode=mode)
        if plan.total_bytes > up.total_bytes: raise SystemExit(f'RAM {mode} exceeds {u} bytes')
        rr = cached_ppl(a.model, plan, proto, cache, f'RAM {mode} @ {u}')
        pr = paired(ur.table, rr.table)
        rows.append({
            'at': u, 'mode': mode, 'uniform_bytes': up.total_bytes, 'ram_bytes': plan.total_bytes,
            'bpw': plan.bpw, 'uniform_ppl': ur.ppl, 'ram_ppl': rr.ppl,
            'uniform_median': pr['median_a'], 'ram_median': pr['median_b'],
            'recovered': gap_recovered(rr.ppl, ur.ppl, base.ppl),
            'recovered_median': gap_recovered(pr['median_b'], pr['median_a'], base.stats['median_ppl']),
            'wilcoxon_p': pr['wilcoxon_p'], 'share_ram_worse': 1 - pr['share_b_worse'],
            'allocator_gap_pct': 100 * plan.gap / plan.total_D if plan.total_D else 0.0,
        })
        r = rows[-1]
        print(f"{u:>8} {mode:>10}: {u} {r['uniform_ppl']:.3f}  RAM {r['ram_ppl']:.3f}  recovers "
              f"{100 * r['recovered']:.1f}% (median {100 * r['recovered_median']:.1f}%), p={r['wilcoxon_p']:.2g}",
              flush=True)

    for u, mode in jobs:
        if u not in uniforms:
            up = uniform_plan(prof, u)
            uniforms[u] = (up, cached_ppl(a.model, up, proto, cache, f'uniform {u}'))
        row(f'uniform {u}', mode, *uniforms[u])
    if a.baselines:
        bases = []
        for u in ('4b-g32', '4b-g64'):
            up = uniforms.get(u, (uniform_plan(prof, u),))[0]
            saved = cache / f'dynamic-{up.bpw:.4f}bpw-{a.dynamic_calib_n}x512.json'
            if saved.exists(): dp = Plan.load(saved)
            else:
                dp = dynamic_plan(a.model, target_bpw=up.bpw, profile=prof, calib_n=a.dynamic_calib_n,
                                  calib_length=512)
                dp.save(saved)
            dr = cached_ppl(a.model, dp, proto, cache, 'mlx-lm dynamic')
            pr = paired(uniforms[u][1].table, dr.table) if u in uniforms else None
            if pr:
                notes.append(f"mlx-lm dynamic {dp.extra['low']}/{dp.extra['high']} at {dp.bpw:.3f} bpw "
                             f"({dp.total_bytes:,} bytes) against uniform {u} ({up.total_bytes:,} bytes): PPL "
                             f"{dr.ppl:.3f} vs {uniforms[u][1].ppl:.3f}, recovers "
                             f"{100 * gap_recovered(dr.ppl, uniforms[u][1].ppl, base.ppl):.1f}% of the gap, "
                             f"Wilcoxon p={pr['wilcoxon_p']:.2g}")
                print(notes[-1], flush=True)
            bases.append((f"mlx-lm dynamic {dp.extra['low']}/{dp.extra['high']} @ {up.bpw:.3f} bpw", dp))
        bases.append(('mlx-lm mixed_4_6', recipe_plan(prof, 'mixed_4_6')))
        for name, bp in bases:
            row(name, a.default, bp, cached_ppl(a.model, bp, proto, cache, name))
    tay = prof.meta.get('taylor') or {}
    head = (f"{model_slug(a.model)}: WikiText-2 test, {proto.n} x {proto.length} tokens, seed {proto.seed}; "
            f"unquantized corpus PPL {base.ppl:.3f}, median {base.stats['median_ppl']:.3f}; profile "
            f"calibration {a.calib_n} x {a.calib_length} tokens"
            + (f" (taylor's text gradient: {tay['windows']} x {a.calib_length})" if 'windows' in tay else ''))
    lines = [head, '', '| at bytes of | mode | bytes | bpw | its PPL | RAM PPL | its median | RAM median | '
             'gap recovered | median gap recovered | Wilcoxon p | allocator gap |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(
            f"| {r['at']} | {r['mode']} | {r['ram_bytes']:,} | {r['bpw']:.3f} | {r['uniform_ppl']:.3f} | "
            f"{r['ram_ppl']:.3f} | {r['uniform_median']:.3f} | {r['ram_median']:.3f} | {100 * r['recovered']:.1f}% | "
            f"{100 * r['recovered_median']:.1f}% | {r['wilcoxon_p']:.2g} | {r['allocator_gap_pct']:.4f}% |"
        )
    text = '\n'.join(lines + [''] + notes) + '\n'
    print('\n' + text)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / 'loss_scale.md').write_text(text)
    (runs / 'loss_scale.json').write_text(json.dumps({'head': head, 'rows': rows}, indent=1))
    print(f'written: {runs / "loss_scale.md"} ({time.perf_counter() - t0:.0f} s)')


if __name__ == '__main__':
    main()
