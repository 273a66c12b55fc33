"""RAM vs uniform quantization at matched bytes, and the rate-distortion sweep, on one model.

    python bench/ram_vs_uniform.py [--model reference] [--n 32] [--length 2048] [--configs 3b-g64 4b-g64 8b-g64]
                                   [--mode taylor] [--sweep 8 --sweep-n 16] [--out runs/ram_vs_uniform.json]

For each uniform config: its exact bytes become RAM's budget; both are scored on the same
WikiText-2 windows (fast fp32 path) beside the unquantized model, and the share of the
unquantized-to-uniform gap that RAM recovers is printed:
    recovered = (PPL_uniform - PPL_RAM) / (PPL_uniform - PPL_unquantized).
With --sweep K, RAM is also allocated at K budgets spread from the smallest to the largest
achievable size and scored on --sweep-n windows: predicted distortion and PPL per budget.
Each mode allocates on its own cached profile (`ram.profiler.mode_profiles`), and every condition
is scored through the condition cache (`ram.reproduce.cached_ppl`): a stopped run resumes, and
conditions other benches or `ram reproduce` scored are reused.
"""
import argparse
import json
import time
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference'); p.add_argument('--n', type=int, default=32)
    p.add_argument('--length', type=int, default=2048)
    p.add_argument('--configs', nargs='*', default=['3b-g64', '4b-g64', '8b-g64'])
    p.add_argument('--mode', nargs='+', default=['taylor'],
                   help='distortion mode(s) to allocate on; one RAM row per mode (the sweep uses the first)')
    p.add_argument('--sweep', type=int, default=0)
    p.add_argument('--sweep-n', type=int, default=16)
    p.add_argument('--calib-n', type=int, default=16); p.add_argument('--calib-length', type=int, default=512)
    p.add_argument('--out', default='runs/ram_vs_uniform.json')
    a = p.parse_args()
    if a.sweep == 1: p.error('--sweep needs 0 (no sweep) or at least 2 budgets')
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    from ram.allocator import achievable_range, plan_budgets
    from ram.baselines import uniform_plan
    from ram.metrics import gap_recovered, paired
    from ram.profiler import mode_profiles
    from ram.reproduce import cached_ppl, condition_cache
    from ram.scoring import get_protocol

    def proto_of(n): return get_protocol('quick' if (n, a.length) == (16, 2048) else 'paper', n, a.length, 42)

    t0 = time.perf_counter()
    profs = mode_profiles(a.model, ('weight', *a.mode), calib_n=a.calib_n, calib_length=a.calib_length)
    print(f'profiles: {", ".join(sorted({str(q) for _, q in profs.values()}))} ({time.perf_counter() - t0:.1f} s)')
    prof = profs[a.mode[0]][0]
    cache, proto = condition_cache(a.model), proto_of(a.n)
    res = {'model': a.model, 'protocol': proto.to_dict(), 'mode': a.mode,
           'profiles': {m: str(q) for m, (_, q) in profs.items()}, 'rows': [], 'sweep': []}
    base = cached_ppl(a.model, None, proto, cache, 'unquantized')
    res['unquantized'] = {'ppl': base.ppl, 'median': base.stats['median_ppl']}
    for name in a.configs:
        up = uniform_plan(prof, name)
        ur = cached_ppl(a.model, up, proto, cache, f'uniform {name}')
        row = {'config': name, 'uniform_bytes': up.total_bytes, 'uniform_ppl': ur.ppl,
               'uniform_median': ur.stats['median_ppl'], 'ram': {}}
        for mode in a.mode:
            (plan,) = plan_budgets(profs[mode][0], [up.total_bytes], mode=mode)
            if plan.total_bytes > up.total_bytes: raise SystemExit(f'RAM {mode} exceeds uniform {name} bytes')
            rr = cached_ppl(a.model, plan, proto, cache, f'RAM {mode} @ {name}')
            row['ram'][mode] = {'bytes': plan.total_bytes, 'ppl': rr.ppl, 'median': rr.stats['median_ppl'],
                                'recovered': gap_recovered(rr.ppl, ur.ppl, base.ppl),
                                'gap_pct': 100 * plan.gap / plan.total_D if plan.total_D else 0.0}
        res['rows'].append(row)
    print(f'\n{a.model}: WikiText-2 test, {proto.n} x {proto.length} tokens, seed {proto.seed}; RAM modes {a.mode}',
          flush=True)
    print(f"{'condition':<22}{'bytes':>14}{'GB':>9}{'corpus PPL':>12}{'median PPL':>12}")
    print(f"{'unquantized (fp32)':<22}{'':>14}{'':>9}{base.ppl:>12.3f}{res['unquantized']['median']:>12.3f}")
    for r in res['rows']:
        print(f"{'uniform ' + r['config']:<22}{r['uniform_bytes']:>14,}{r['uniform_bytes'] / 1e9:>9.4f}"
              f"{r['uniform_ppl']:>12.3f}{r['uniform_median']:>12.3f}")
        for mode, q in r['ram'].items():
            print(f"{'RAM ' + mode + ', same bytes':<22}{q['bytes']:>14,}{q['bytes'] / 1e9:>9.4f}"
                  f"{q['ppl']:>12.3f}{q['median']:>12.3f}"
                  f"   recovers {100 * q['recovered']:.1f}% of the gap (allocator gap {q['gap_pct']:.4f}%)")
    if a.sweep:
        lo, hi = achievable_range(prof.allocation_table(a.mode[0]), prof.meta['fixed_bytes'])
        budgets = [int(lo + (hi - lo) * k / (a.sweep - 1)) for k in range(a.sweep)]
        sproto = proto_of(a.sweep_n)
        sbase = cached_ppl(a.model, None, sproto, cache, 'unquantized')
        plans = plan_budgets(prof, budgets, mode=a.mode[0])
        print(f"\nRD sweep (RAM {a.mode[0]}), {sproto.n} x {sproto.length} tokens; unquantized corpus PPL "
              f"{sbase.ppl:.3f}, median {sbase.stats['median_ppl']:.3f}\n"
              f"{'budget bytes':>14}{'GB':>9}{'bpw':>7}{'pred. D':>12}{'corpus PPL':>12}{'median PPL':>12}"
              f"{'vs unquantized: p, windows worse':>34}")
        for b, plan in zip(budgets, plans):
            r = cached_ppl(a.model, plan, sproto, cache, f'sweep {b / 1e9:.4f} GB')
            pr = paired(sbase.table, r.table)  # paired on the same windows: Wilcoxon on per-window log-PPL
            worse = round(pr['share_b_worse'] * sproto.n)
            res['sweep'].append({'budget': b, 'bytes': plan.total_bytes, 'bpw': plan.bpw, 'D': plan.total_D,
                                 'ppl': r.ppl, 'median': r.stats['median_ppl'], 'p_vs_unquantized': pr['wilcoxon_p'],
                                 'windows_worse_than_unquantized': worse})
            print(f'{plan.total_bytes:>14,}{plan.total_bytes / 1e9:>9.4f}{plan.bpw:>7.3f}{plan.total_D:>12.5g}'
                  f"{r.ppl:>12.3f}{r.stats['median_ppl']:>12.3f}{pr['wilcoxon_p']:>20.2g}{worse:>8}/{sproto.n}",
                  flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f'written: {a.out} ({time.perf_counter() - t0:.0f} s)')


if __name__ == '__main__':
    main()
