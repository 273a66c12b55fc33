"""Native against fp32 scoring of one quantized condition, on the same windows: tokens/s and per-window NLL.

    LD_PRELOAD=<openblas> .venv/bin/python bench/native_vs_fp32.py [--model reference] [--config 4b-g64]
                                                                    [--n 4] [--length 256] [--raw]

The condition (uniform CONFIG applied in memory, as `ram ppl --plan` does) is scored under `fp32` (dequantized fp32
weights on a real BLAS) and under `native` (quantized matmuls at the model's dtype; on a CPU they compute in fp32 and
round to it, `ram.scoring.cpu_kernels`); with `--raw` also natively through MLX's own CPU kernels at bf16, which lose
precision. Prints each mode's seconds and tokens/s, the ratio to fp32, and per-window NLL per token minus fp32's.
"""
import argparse
import contextlib
import time

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference')
    p.add_argument('--config', default='4b-g64')
    p.add_argument('--n', type=int, default=4)
    p.add_argument('--length', type=int, default=256)
    p.add_argument('--raw', action='store_true', help="also MLX's own CPU quantized matmuls at bf16 (slow)")
    a = p.parse_args()
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    import ram.scoring
    from ram.baselines import uniform_plan
    from ram.evaluate import perplexity
    from ram.profiler import cached_profile
    from ram.quantizer import load_condition
    from ram.scoring import Protocol
    proto = Protocol(n=a.n, length=a.length, seed=42)
    plan = uniform_plan(cached_profile(a.model, progress=False)[0], a.config)
    runs = {}
    for name in ('fp32', 'native') + (('native, raw bf16 kernels',) if a.raw else ()):
        c = load_condition(a.model, plan, lazy=True)
        keep = ram.scoring.cpu_kernels
        if 'raw' in name: ram.scoring.cpu_kernels = lambda: contextlib.nullcontext()
        try:
            t0 = time.perf_counter()
            r = perplexity(c.model, c.tokenizer, proto, scoring=name.split(',')[0], progress=True, desc=name)
            runs[name] = (time.perf_counter() - t0, r)
        finally: ram.scoring.cpu_kernels = keep
    base_s, base = runs['fp32']
    tok = int(base.table.tokens.sum())
    b = (base.table.nll / base.table.tokens).to_numpy()
    print(f'\n{a.model} + uniform {a.config}: {a.n} windows x {a.length} tokens, seed 42')
    print('| scoring | seconds | tokens/s | time / fp32 | corpus PPL | NLL/token minus fp32, per window |')
    print('|---|---:|---:|---:|---:|---|')
    for name, (s, r) in runs.items():
        dn = (r.table.nll / r.table.tokens).to_numpy() - b
        print(f'| {name} | {s:.1f} | {tok / s:.1f} | {s / base_s:.1f} | {r.ppl:.3f} | '
              f'{", ".join(f"{x:+.5f}" for x in dn)} (max abs {np.abs(dn).max():.5f}) |')


if __name__ == '__main__':
    main()
