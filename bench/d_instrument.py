"""Which D to trust: each distortion mode's prediction against the KL measured when quantizing.

    python bench/d_instrument.py [--model reference] [--pairs 64] [--held-n 4] [--held-length 512]
                                 [--modes weight activation fisher taylor kl] [--calib-n 16] [--runs runs]

1. Single tensors: `--pairs` (tensor, config) pairs spread over roles, layers and bit-widths
   (`ram.profiler.instrument_pairs`), each quantized alone; the mean per-token KL to the base model
   on held-out calibration windows (disjoint from the profile's and from every evaluation window)
   beside each mode's predicted D; Spearman rank correlation per mode.
2. Additivity: whole plans (uniform 4b-g64, 4b-g32, 3b-g64 and RAM on each mode at uniform 4b-g64's
   bytes): the sum of the predicted D against the measured KL of the plan.
Each mode's D comes from the cached profile that measured it (taylor's profile also gives fisher).
Writes RUNS/<model>/d_instrument.{csv,md,png}; the measurements are cached outside the checkout
(`ram.core.cache_dir()/instrument/<model>/`), so a stopped run resumes and a fresh clone reuses them.
"""
import argparse
import hashlib
import json
import time
from pathlib import Path


def _md(df, digits: int = 4) -> str:
    "A pandas table as a markdown table (no tabulate needed)."
    def f(v): return f'{v:.{digits}g}' if isinstance(v, float) else str(v)
    cols = list(df.columns)
    out = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    out += ['| ' + ' | '.join(f(v) for v in r) + ' |' for r in df.itertuples(index=False)]
    return '\n'.join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference')
    p.add_argument('--pairs', type=int, default=64)
    p.add_argument('--held-n', type=int, default=4)
    p.add_argument('--held-length', type=int, default=512)
    p.add_argument('--modes', nargs='+', default=['weight', 'activation', 'fisher', 'taylor', 'kl'])
    p.add_argument('--calib-n', type=int, default=16)
    p.add_argument('--calib-length', type=int, default=512)
    p.add_argument('--runs', default='runs')
    a = p.parse_args()
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    import matplotlib
    matplotlib.use('Agg')
    import pandas as pd
    from scipy.stats import spearmanr

    from ram.allocator import plan_budgets
    from ram.baselines import uniform_plan
    from ram.core import SIGNED_MODES, QuantConfig, cache_dir
    from ram.models import load
    from ram.profiler import (GRADIENT_WINDOWS, base_log_probs, instrument_pairs, mode_profiles, instrument_summary,
                              plot_instrument, quantized_kl)
    from ram.reproduce import model_slug
    from ram.scoring import calibration_windows, corpus_tokens, to_fp32

    t0 = time.perf_counter()
    modes = tuple(dict.fromkeys(['weight', *a.modes]))
    profs = mode_profiles(a.model, modes, calib_n=a.calib_n, calib_length=a.calib_length)  # each mode's own profile
    prof = profs['weight'][0]
    runs = Path(a.runs) / model_slug(a.model)
    runs.mkdir(parents=True, exist_ok=True)
    m, tok = load(a.model)
    to_fp32(m)
    skip = max(GRADIENT_WINDOWS, a.calib_n)  # disjoint from the profile's calibration and gradient windows
    held = calibration_windows(corpus_tokens(tok), a.held_n, a.held_length, skip=skip)
    key = hashlib.sha256(json.dumps([prof.meta['model_hash'], held.tolist()]).encode()).hexdigest()[:12]
    cache = cache_dir() / 'instrument' / model_slug(a.model) / f'instrument-{key}.json'
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(cache.read_text()) if cache.exists() else {}
    base = base_log_probs(m, held)
    dtype = prof.meta.get('dtype', 'bfloat16')

    def kl(configs, name):  # (KL to the base, change of the text's NLL), cached
        if name not in done:
            done[name] = quantized_kl(m, held, base, configs, dtype, nll=True)
            tmp = cache.with_suffix('.tmp')
            tmp.write_text(json.dumps(done))
            tmp.replace(cache)
        return done[name]

    pairs = instrument_pairs(prof, n=a.pairs)
    tabs = {md: profs[md][0].allocation_table(md).set_index(['tensor', 'config']) for md in modes}
    rows = []
    for i, r in enumerate(pairs.itertuples()):
        k, dn = kl({r.tensor: QuantConfig.parse(r.config)}, f'{r.tensor}@{r.config}')
        pred = {f'D_{md}': float(tabs[md].D[(r.tensor, r.config)]) for md in modes}
        rows.append({**r._asdict(), 'kl': k, 'dnll': dn, **pred})
        print(f'{i + 1}/{len(pairs)} {r.tensor} {r.config}: KL {k:.3g}, dNLL {dn:.3g}', flush=True)
    df = pd.DataFrame(rows).drop(columns='Index')
    summ = instrument_summary(df)
    # additivity: whole plans
    plans = {f'uniform {u}': uniform_plan(prof, u) for u in ('4b-g64', '4b-g32', '3b-g64')}
    ub = plans['uniform 4b-g64'].total_bytes
    for md in modes: plans[f'RAM {md} @ uniform 4b-g64 bytes'] = plan_budgets(profs[md][0], [ub], mode=md)[0]
    add = []
    for name, pl in plans.items():
        cfg = {n: t.config for n, t in pl.tensors.items() if t.config.quantized}
        k, dn = kl(cfg, 'plan:' + json.dumps(sorted((n, c.name) for n, c in cfg.items())))
        pred = {}
        for md in modes:
            t = tabs[md]
            pred[f'sumD_{md}'] = float(sum(t.D[(n, c.name)] for n, c in cfg.items()))
        add.append({'plan': name, 'bytes': pl.total_bytes, 'kl': k, 'dnll': dn, **pred})
        print(f'{name}: KL {k:.4g}, dNLL {dn:.4g}', flush=True)
    add = pd.DataFrame(add)
    rho_add = {md: spearmanr(add[f'sumD_{md}'], add.kl)[0] for md in modes}
    rho_add_nll = {md: spearmanr(add[f'sumD_{md}'], add.dnll)[0] for md in modes}
    df.to_csv(runs / 'd_instrument.csv', index=False)
    fig = plot_instrument(df, f'{model_slug(a.model)}: {len(df)} single-tensor pairs, {a.held_n} x {a.held_length} '
                              'held-out tokens')
    fig.savefig(runs / 'd_instrument.png', dpi=110)
    names = sorted({pr[1].name for pr in profs.values()})
    lines = [f'{model_slug(a.model)}: instrument on {a.held_n} x {a.held_length} held-out calibration tokens '
             f'(skip {skip}); profiles {", ".join(names)} (calibration {a.calib_n} x {a.calib_length})', '',
             'Single tensors (predicted D against measured KL; spearman_dnll: against the change of the text\'s NLL;'
             f' signed modes ({", ".join(SIGNED_MODES)}): their ratio is to the NLL change):', '',
             _md(summ.reset_index()), '', 'Whole plans (sum of predicted D against measured KL):', '',
             _md(add), '',
             'Spearman over plans (KL): ' + ', '.join(f'{md} {v:.2f}' for md, v in rho_add.items()), '',
             'Spearman over plans (dNLL): ' + ', '.join(f'{md} {v:.2f}' for md, v in rho_add_nll.items()), '',
             f'fisher sum-of-D over measured KL per plan: '
             + (', '.join(f'{r.plan}: {r.sumD_fisher / r.kl:.2f}' for r in add.itertuples())
                if 'fisher' in modes else 'n/a')]
    text = '\n'.join(lines) + '\n'
    (runs / 'd_instrument.md').write_text(text)
    print('\n' + text)
    print(f'written: {runs}/d_instrument.* ({time.perf_counter() - t0:.0f} s); pairs measured this run: cached in '
          f'{cache}')


if __name__ == '__main__':
    main()
