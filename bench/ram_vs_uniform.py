"""RAM vs uniform quantization at matched bytes, and the rate-distortion sweep, on one model.

    python bench/ram_vs_uniform.py [--model reference] [--n 32] [--length 2048] [--configs 3b-g64 4b-g64 8b-g64]
                                   [--mode weight] [--sweep 8 --sweep-n 16] [--out runs/ram_vs_uniform.json]

For each uniform config: its exact bytes become RAM's budget; both are scored on the same
WikiText-2 windows (fast fp32 path) beside the unquantized model, and the share of the
unquantized-to-uniform gap that RAM recovers is printed:
    recovered = (PPL_uniform - PPL_RAM) / (PPL_uniform - PPL_unquantized).
With --sweep K, RAM is also allocated at K budgets spread from the smallest to the largest
achievable size and scored on --sweep-n windows: predicted distortion and PPL per budget.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np


def score(model_id, configs, toks, proto, desc):
    from ram.evaluate import corpus_ppl
    from ram.models import load
    from ram.quantizer import predicted_bytes, quantize
    from ram.scoring import score_windows, windows
    m, tok, cfg = load(model_id, return_config=True)
    pred = None
    if configs is not None:
        pred = predicted_bytes(m, configs)
        quantize(m, configs, cfg)
    wins, idx = windows(toks, proto)
    tab = score_windows(m, wins, desc=desc)
    return corpus_ppl(tab), float(np.median(tab.ppl)), pred, tab.nll.tolist()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference'); p.add_argument('--n', type=int, default=32)
    p.add_argument('--length', type=int, default=2048)
    p.add_argument('--configs', nargs='+', default=['3b-g64', '4b-g64', '8b-g64'])
    p.add_argument(
        '--mode', nargs='+', default=['weight'], help='distortion mode(s) to allocate on; one RAM row per mode'
    )
    p.add_argument('--sweep', type=int, default=0)
    p.add_argument('--sweep-n', type=int, default=16)
    p.add_argument('--alpha', action='store_true', help='calibrate a loss slope per tensor (ram profile --alpha)')
    p.add_argument('--calib-n', type=int, default=4); p.add_argument('--calib-length', type=int, default=512)
    p.add_argument('--out', default='runs/ram_vs_uniform.json')
    a = p.parse_args()
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    from ram.allocator import achievable_range, plan_budgets
    from ram.core import QuantConfig
    from ram.models import load
    from ram.profiler import cached_profile
    from ram.quantizer import uniform_configs
    from ram.scoring import corpus_tokens, get_protocol
    t0 = time.perf_counter()
    prof, ppath = cached_profile(a.model, modes=('weight', 'activation') if 'activation' in a.mode else ('weight',),
                                 alpha=a.alpha, calib_n=a.calib_n, calib_length=a.calib_length)
    print(f'profile: {ppath} ({time.perf_counter() - t0:.1f} s)')
    m, tok = load(a.model)
    toks = corpus_tokens(tok)
    proto = get_protocol('paper', a.n, a.length, 42)
    res = {
        'model': a.model,
        'protocol': proto.to_dict(),
        'mode': a.mode,
        'alpha': a.alpha,
        'profile': str(ppath),
        'rows': [],
        'sweep': [],
    }
    base_ppl, base_med, _, _ = score(a.model, None, toks, proto, 'unquantized')
    res['unquantized'] = {'ppl': base_ppl, 'median': base_med}
    for name in a.configs:
        c = QuantConfig.parse(name)
        ucfg = uniform_configs(m, c)
        u_ppl, u_med, u_bytes, _ = score(a.model, ucfg, toks, proto, f'uniform {name}')
        row = {'config': name, 'uniform_bytes': u_bytes, 'uniform_ppl': u_ppl, 'uniform_median': u_med, 'ram': {}}
        for mode in a.mode:
            (plan,) = plan_budgets(prof, [u_bytes], mode=mode)
            assert plan.total_bytes <= u_bytes
            r_ppl, r_med, r_bytes, _ = score(a.model, plan.configs(), toks, proto, f'RAM {mode} @ {name} bytes')
            assert r_bytes == plan.total_bytes, (r_bytes, plan.total_bytes)
            rec = (u_ppl - r_ppl) / (u_ppl - base_ppl) if u_ppl != base_ppl else float('nan')
            row['ram'][mode] = {'bytes': r_bytes, 'ppl': r_ppl, 'median': r_med, 'recovered': rec,
                                'gap_pct': 100 * plan.gap / plan.total_D if plan.total_D else 0.0}
        res['rows'].append(row)
    print(f'\n{a.model}: WikiText-2 test, {proto.n} x {proto.length} tokens, seed {proto.seed}; RAM modes {a.mode}, '
          f'alpha {"calibrated" if a.alpha else "1 (data-free)"}', flush=True)
    print(f"{'condition':<22}{'bytes':>14}{'GB':>9}{'corpus PPL':>12}{'median PPL':>12}")
    print(f"{'unquantized (fp32)':<22}{'':>14}{'':>9}{base_ppl:>12.3f}{base_med:>12.3f}")
    for r in res['rows']:
        print(
            f"{'uniform ' + r['config']:<22}{r['uniform_bytes']:>14,}{r['uniform_bytes'] / 1e9:>9.4f}"
            f"{r['uniform_ppl']:>12.3f}{r['uniform_median']:>12.3f}"
        )
        for mode, q in r['ram'].items():
            print(
                f"{'RAM ' + mode + ', same bytes':<22}{q['bytes']:>14,}{q['bytes'] / 1e9:>9.4f}"
                f"{q['ppl']:>12.3f}{q['median']:>12.3f}"
                f"   recovers {100 * q['recovered']:.1f}% of the gap (allocator gap {q['gap_pct']:.4f}%)"
            )
    if a.sweep:
        lo, hi = achievable_range(prof.allocation_table(a.mode[0]), prof.meta['fixed_bytes'])
        budgets = [int(lo + (hi - lo) * k / (a.sweep - 1)) for k in range(a.sweep)]
        sproto = get_protocol('paper', a.sweep_n, a.length, 42)
        plans = plan_budgets(prof, budgets, mode=a.mode[0])
        print(
            f"\nRD sweep (RAM {a.mode[0]}), {sproto.n} x {sproto.length} "
            f"tokens\n{'budget bytes':>14}{'GB':>9}{'bpw':>7}{'pred. D':>12}{'corpus PPL':>12}{'median PPL':>12}"
        )
        for b, plan in zip(budgets, plans):
            ppl, med, _, _ = score(a.model, plan.configs(), toks, sproto, f'sweep {b / 1e9:.4f} GB')
            res['sweep'].append(
                {'budget': b, 'bytes': plan.total_bytes, 'bpw': plan.bpw, 'D': plan.total_D, 'ppl': ppl, 'median': med}
            )
            print(
                (
                    f'{plan.total_bytes:>14,}{plan.total_bytes / 1e9:>9.4f}{plan.bpw:>7.3f}{plan.total_D:>12.5g}'
                    f'{ppl:>12.3f}{med:>12.3f}'
                ),
                flush=True,
            )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f'written: {a.out}')


if __name__ == '__main__':
    main()
