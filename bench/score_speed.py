"""Scoring speed: RAM's fp32-dequantized scorer vs mlx-lm's own quantized forward, same model, same tokens, one run.

    python bench/score_speed.py [--model reference] [--config 4b-g64] [--n 2] [--length 2048]

Baseline: `mlx_lm.perplexity.eval_ppl` on the quantized model (mlx-lm's perplexity path).
RAM: `ram.scoring.score_windows` (dequantize to fp32, score on a real BLAS), timed with and
without the one-off dequantization, and once more in a child process on MLX's bundled
reference BLAS (RAM_BLAS=none) to show what the BLAS alone is worth, and once with MLX's own attention
and loss instead of the numpy ones (what that swap is worth). Prints tokens/s and ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _score_child(args):
    "Time RAM's scorer in this process; print JSON."

    from ram.blas import blas_in_use
    from ram.core import QuantConfig
    from ram.models import load
    from ram.quantizer import quantize
    from ram.scoring import corpus_tokens, get_protocol, score_windows, to_fp32, windows
    model, tok = load(args.model)
    quantize(model, QuantConfig.parse(args.config))
    wins, _ = windows(corpus_tokens(tok), get_protocol('paper', args.n, args.length, 42))
    t0 = time.perf_counter(); to_fp32(model); t_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    tab = score_windows(model, wins, scoring='native', fast=not args.mlx_attention, progress=False)  # already fp32
    t = time.perf_counter() - t0
    print(json.dumps({'seconds': t, 'convert_seconds': t_conv, 'nll': tab.nll.tolist(), 'blas': blas_in_use()}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference'); p.add_argument('--config', default='4b-g64')
    p.add_argument('--n', type=int, default=2); p.add_argument('--length', type=int, default=2048)
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--mlx-attention', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child: return _score_child(args)
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    import mlx.core as mx
    from mlx_lm.perplexity import eval_ppl

    from ram.core import QuantConfig
    from ram.models import load
    from ram.quantizer import quantize
    from ram.scoring import corpus_tokens, get_protocol, windows
    model, tok = load(args.model)
    quantize(model, QuantConfig.parse(args.config))
    wins, _ = windows(corpus_tokens(tok), get_protocol('paper', args.n, args.length, 42))
    ntok = wins.shape[0] * (wins.shape[1] - 1)
    print(f'{args.model} at {args.config}: {args.n} windows x {args.length} tokens = {ntok} scored tokens', flush=True)
    t0 = time.perf_counter()
    base_ppl, _ = eval_ppl(model, mx.array(wins), batch_size=1)
    t_base = time.perf_counter() - t0
    del model
    runs = {}
    for label, extra, flags in [('openblas', {}, []), ('openblas, MLX attention+loss', {}, ['--mlx-attention']),
                                ('reference BLAS', {'RAM_BLAS': 'none', 'LD_PRELOAD': ''}, [])]:
        env = dict(os.environ, **extra)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                '--child',
                '--model',
                args.model,
                '--config',
                args.config,
                '--n',
                str(args.n),
                '--length',
                str(args.length),
                *flags,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode: sys.exit(out.stderr)
        runs[label] = json.loads(out.stdout.strip().splitlines()[-1])
    ram_ppl = float(np.exp(np.sum(runs['openblas']['nll']) / ntok))
    print(f"\n{'path':<52}{'seconds':>9}{'tokens/s':>10}{'x mlx-lm':>10}")
    print(f"{'mlx-lm eval_ppl, quantized forward (baseline)':<52}{t_base:>9.1f}{ntok / t_base:>10.0f}{1:>10.2f}")
    for label, r in runs.items():
        print(
            f"{'RAM fp32, ' + label + ' (' + os.path.basename(r['blas']) + ')':<52}{r['seconds']:>9.1f}"
            f"{ntok / r['seconds']:>10.0f}{t_base / r['seconds']:>10.2f}"
        )
        tot = r['seconds'] + r['convert_seconds']
        print(f"{'  same, dequantization included':<52}{tot:>9.1f}{ntok / tot:>10.0f}{t_base / tot:>10.2f}")
    print(
        (f'\nPPL on these windows: mlx-lm path {base_ppl:.4f} (activations in the model dtype), RAM fp32 {ram_ppl:.4f}')
    )


if __name__ == '__main__':
    main()
