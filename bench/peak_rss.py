"""Peak resident memory of `ram profile`, `ram quantize`, `ram ppl` and scored conditions of generated models.

A model of a real architecture (Qwen3-4B's config, layer count scaled) with random bf16 weights is
written shard by shard (`save_random_model`), then each operation runs in a fresh subprocess that
reports its own peak RSS (VmHWM). The claim checked: peak RSS stays below 2x the largest shard plus
a fixed working set, whatever the number of shards; and beside each measured peak, what the dry runs
(`ram.fit`, from config and headers alone) estimate for it.

    LD_PRELOAD=<openblas> .venv/bin/python bench/peak_rss.py --layers 6 26 --ops quantize
    LD_PRELOAD=<openblas> .venv/bin/python bench/peak_rss.py --arch qwen3-0.6b --layers 8 28 --shard-mb 256 \\
        --ops profile
    .venv/bin/python bench/peak_rss.py --arch qwen3-0.6b --layers 8 28 --shard-mb 256 \\
        --ops condition condition-eager unquantized   # a plan applied in memory (lazily / eagerly), the bf16 model;
                                                       # each then runs one native forward of 64 tokens
    LD_PRELOAD=<openblas> .venv/bin/python bench/peak_rss.py --layers 6 26 --length 16 \\
        --ops ppl-folder ppl-plan ppl-unquantized     # `ram ppl --scoring native` on the uniform 4b-g64 folder, with
                                                       # its plan applied in memory, and on the bf16 model
    (the same with --arch qwen3-30b-a3b --layers 2 4: a mixture, 128 stacked experts a layer)
    LD_PRELOAD=<openblas> .venv/bin/python bench/peak_rss.py --arch qwen3-0.6b --layers 8 28 --shard-mb 256 \\
        --ops taylor-native taylor-fp32 --grad-mb 2048  # the taylor profile (1 window of 64 tokens a pass)

Measured (2 shared CPU cores, mlx 0.32.4 CPU, bf16 random weights, GB = 1e9 bytes; "before" = the code
this benchmark replaced: eager `mlx_lm.load` for quantize, whole-tensor fp32 temporaries for profile):

| model | layers | op | size (GB) | shards | largest shard (GB) | peak RSS (GB) | RSS / largest shard |
|---|---|---|---|---|---|---|---|
| qwen3-4b | 6 | load (mlx_lm.load, all weights) | 1.99 | 2 | 1.03 | 2.08 | 2.02 |
| qwen3-4b | 26 | load (mlx_lm.load, all weights) | 6.03 | 6 | 1.06 | 6.12 | 5.75 |
| qwen3-4b | 6 | quantize 4b-g64, before | 1.99 | 2 | 1.03 | 2.10 | 2.04 |
| qwen3-4b | 6 | quantize 4b-g64 | 1.99 | 2 | 1.03 | 1.44 | 1.39 |
| qwen3-4b | 26 | quantize 4b-g64 | 6.03 | 6 | 1.06 | 1.56 | 1.47 |
| qwen3-0.6b | 8 | quantize 4b-g64 | 0.56 | 2 | 0.31 | 0.84 | 2.69 |
| qwen3-0.6b | 28 | quantize 4b-g64 | 1.19 | 5 | 0.31 | 0.84 | 2.70 |
| qwen3-0.6b | 8 | profile, before | 0.56 | 2 | 0.31 | 5.46 | 17.54 |
| qwen3-0.6b | 8 | profile | 0.56 | 2 | 0.31 | 1.11 | 3.55 |
| qwen3-0.6b | 28 | profile | 1.19 | 5 | 0.31 | 1.11 | 3.58 |

Dry-run estimates beside measured peaks, one run (2 cores shared with two scoring jobs; `--ops quantize condition
unquantized --layers 8 28 --shard-mb 256 --arch qwen3-0.6b`; "condition": uniform 4b-g64 applied lazily, one native
forward of 64 tokens):

| model | layers | op | peak RSS (GB) | dry-run estimate (GB) | estimate / measured |
|---|---|---|---|---|---|
| qwen3-0.6b | 8 | quantize | 0.87 | 0.84 | 0.97 |
| qwen3-0.6b | 8 | condition | 0.77 | 0.74 | 0.96 |
| qwen3-0.6b | 8 | unquantized | 0.96 | 1.14 | 1.19 |
| qwen3-0.6b | 28 | quantize | 0.87 | 0.84 | 0.97 |
| qwen3-0.6b | 28 | condition | 0.77 | 0.92 | 1.19 |
| qwen3-0.6b | 28 | unquantized | 1.59 | 1.77 | 1.11 |

Scoring paths as a user runs them (stop 23): `ram ppl --scoring native` with one window of 16 tokens on the uniform
4b-g64 folder (ppl-folder), on the source with that plan applied in memory (ppl-plan) and on the bf16 model
(ppl-unquantized); two sizes per architecture, so the slope against the bytes scored and the fixed part can be read
off. Estimates: the dry run's, current code (`ram.fit`), from config and headers of the same configs. One run per
architecture, 2 CPU cores shared with two one-thread scoring jobs.

| model | layers | op | bytes scored (GB) | peak RSS (GB) | dry-run estimate (GB) | estimate / measured |
|---|---|---|---|---|---|---|
| qwen3-4b | 6 | ppl-folder | 0.559 | 1.14 | 1.08 | 0.95 |
| qwen3-4b | 26 | ppl-folder | 1.695 | 2.28 | 2.22 | 0.97 |
| qwen3-4b | 6 | ppl-plan | 0.559 | 1.50 | 1.86 | 1.24 |
| qwen3-4b | 26 | ppl-plan | 1.695 | 2.64 | 2.99 | 1.13 |
| qwen3-4b | 6 | ppl-unquantized | 1.99 | 2.58 | 2.51 | 0.97 |
| qwen3-4b | 26 | ppl-unquantized | 6.03 | 6.62 | 6.55 | 0.99 |
| qwen3-30b-a3b | 2 | ppl-folder | 1.051 | 1.76 | 1.57 | 0.89 |
| qwen3-30b-a3b | 4 | ppl-folder | 1.752 | 2.47 | 2.28 | 0.92 |
| qwen3-30b-a3b | 2 | ppl-plan | 1.051 | 2.14 | 2.20 | 1.03 |
| qwen3-30b-a3b | 4 | ppl-plan | 1.752 | 2.84 | 2.90 | 1.02 |
| qwen3-30b-a3b | 2 | ppl-unquantized | 3.74 | 5.93 | 6.68 | 1.13 |
| qwen3-30b-a3b | 4 | ppl-unquantized | 6.23 | 8.41 | 9.17 | 1.09 |

Every path grows by 1.00-1.01 GB per GB it scores; the fixed part: 0.58 / 0.70 GB (folder; qwen3-4b /
qwen3-30b-a3b), 0.94 / 1.09 GB (plan in memory: one source tensor as it is quantized), 0.59 / 2.19 GB (bf16 model;
for the mixture, MLX's CPU gather_mm needs one layer's expert stacks cast to fp32 at a time, `ram.scoring.cpu_kernels`).

The taylor profile (the default calibrated mode; weight configs, Fisher and text gradient of one 64-token window per
pass, accumulators capped at --grad-mb 2048), natively (bf16 model) and at fp32:

| model | layers | bf16 size (GB) | taylor-native peak (GB) | taylor-fp32 peak (GB) |
|---|---|---|---|---|
| qwen3-0.6b | 8 | 0.56 | 4.93 | 4.98 |
| qwen3-0.6b | 28 | 1.19 | 5.64 | 6.29 |

Natively the peak grows 1.13 GB per GB of bf16 weights; the fixed part (4.3 GB) is the accumulators and one gradient
(2 GiB and 1 GiB at --grad-mb 2048), the process and the largest tensor's fp32 blocks. At fp32 (what `auto` picks on
a CPU when it fits: twice as fast here, 674 s against 1339 s at 28 layers) it grows 2.08 GB per GB: the fp32 copy.

The largest shard of these models is the embedding alone (151936 x hidden). Peak RSS is the process's
fixed part (~0.45 GB: Python, MLX, pandas, the tokenizer) plus the largest tensor plus ~0.3 GB of
row-block temporaries; it does not grow with the number of shards. A profile of a several-GB model
takes ~30 min of one core here (30M weight-configs/s), so profile figures use the 0.6B-shaped models.
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

_QWEN3 = dict(model_type='qwen3', num_key_value_heads=8, head_dim=128, vocab_size=151936, rms_norm_eps=1e-6,
              rope_theta=1e6, max_position_embeddings=40960, tie_word_embeddings=True)
from ram.tiny import PUBLISHED_CONFIGS

ARCHS = {  # the published configs of these models; only num_hidden_layers is changed
    'qwen3-4b': dict(_QWEN3, hidden_size=2560, intermediate_size=9728, num_attention_heads=32, num_hidden_layers=36),
    'qwen3-0.6b': dict(_QWEN3, hidden_size=1024, intermediate_size=3072, num_attention_heads=16, num_hidden_layers=28),
    'qwen3-30b-a3b': PUBLISHED_CONFIGS['Qwen3-30B-A3B'],  # 128 stacked experts per layer: 1.2 GB of bf16 a layer
}
SCORING_OPS = ('ppl-folder', 'ppl-plan', 'ppl-unquantized')  # `ram ppl --scoring native` as a user runs it

CHILD = r'''
import sys, time, json
from pathlib import Path
op, model, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
t0 = time.perf_counter()
if op == 'load':  # the baseline: what holding the whole model costs
    import mlx.core as mx, mlx_lm
    m, _ = mlx_lm.load(model); mx.eval(m.parameters())
elif op == 'profile':
    from ram.profiler import profile
    profile(model, progress=False).save(work / 'profile.json')
elif op in ('taylor-native', 'taylor-fp32'):  # the default calibrated mode, one short window per pass
    from ram.profiler import profile
    profile(model, modes=('weight', 'taylor'), scoring=op.split('-')[1], calib_n=1, gradient_n=1, folds=1,
            calib_length=64, grad_bytes=int(sys.argv[5]), progress=False).save(work / 'profile.json')
elif op == 'quantize':
    from ram.core import Plan, TensorChoice, QuantConfig, tensor_bytes
    from ram.models import load, quantizable_tensors, fixed_bytes, parameter_count
    from ram.quantizer import quantize_to_folder
    m, _ = load(model, lazy=True)
    c = QuantConfig(4, 64)
    ts = {t.name: TensorChoice(c, tensor_bytes(t.shape, c), 0.0, 0.0) for t in quantizable_tensors(m)}
    plan = Plan('uniform 4b-g64', model, ts, fixed_bytes(m), parameter_count(m))
    del m
    quantize_to_folder(model, plan, work / 'q', overwrite=True, progress=False)
elif op in ('condition', 'condition-eager', 'unquantized'):  # a scored condition: loaded, one native forward
    import mlx.core as mx
    from ram.core import Plan, TensorChoice, QuantConfig, tensor_bytes
    from ram.models import load, quantizable_tensors, fixed_bytes, parameter_count
    from ram.quantizer import load_condition
    plan = None
    if op != 'unquantized':
        m, _ = load(model, lazy=True)
        c = QuantConfig(4, 64)
        ts = {t.name: TensorChoice(c, tensor_bytes(t.shape, c), 0.0, 0.0) for t in quantizable_tensors(m)}
        plan = Plan('uniform 4b-g64', model, ts, fixed_bytes(m), parameter_count(m))
        del m
    cond = load_condition(model, plan, lazy=op != 'condition-eager')
    mx.eval(cond.model(mx.array([list(range(1, 65))])))
    size = cond.bytes or 0
elif op in ('ppl-folder', 'ppl-plan', 'ppl-unquantized'):  # the CLI, native, one window of `length` tokens
    from ram.cli import main
    length = sys.argv[4]
    target = str(work / 'q') if op == 'ppl-folder' else model
    extra = ['--plan', str(work / 'plan.json')] if op == 'ppl-plan' else []
    main(['ppl', target, *extra, '--scoring', 'native', '--n', '1', '--length', length, '-o', str(work / 'ppl'),
          '--overwrite'])
    size = json.loads((work / 'ppl.json').read_text())['provenance'].get('weights_bytes', 0)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({'peak_rss': int(hwm) * 1024, 'seconds': time.perf_counter() - t0,
                  'condition_bytes': locals().get('size', 0)}))
'''


def estimate(op, folder, length: int = 64, scored=None) -> float | None:
    """What `ram.fit` (the dry runs) predicts for `op`'s peak, in bytes, from the folder's config and headers alone: the
    weight profile, a quantize to uniform 4b-g64, a scored 4b-g64 condition or the unquantized model with one native
    forward of 64 tokens (as this benchmark runs them). None for `load`, which RAM never does."""
    from ram.fit import estimate as fit
    from ram.scoring import Protocol
    kw = dict(memory=1 << 40, gpu=False, budgets=('@4b-g64',), baselines=(), modes=('weight',))
    if op == 'profile': df, row = fit(folder, steps=('profile',), **kw), 'weight'
    elif op == 'quantize': df, row = fit(folder, steps=('quantize',), **kw), 'RAM @4b-g64'
    elif op in ('condition', 'condition-eager', 'unquantized') + SCORING_OPS:
        n = length if op in SCORING_OPS else 64
        src = scored if op == 'ppl-folder' else folder  # `ram ppl --dry-run` on the quantized folder: as it is
        df = fit(src, steps=('ppl',), scoring='native', protocol=Protocol(1, n, 0), **kw)
        row = 'unquantized' if op in ('unquantized', 'ppl-unquantized', 'ppl-folder') else 'RAM @4b-g64'
    else: return None
    return float(df.set_index('condition').loc[row, 'peak (GB)']) * 1e9


def uniform_plan_file(model, work) -> Path:
    "Uniform 4b-g64 of `model` as a plan file (for `ram ppl --plan`), from config and headers alone."
    from ram.core import Plan, QuantConfig, TensorChoice, tensor_bytes
    from ram.models import fixed_bytes, load, parameter_count, quantizable_tensors
    m, _ = load(model, lazy=True)
    c = QuantConfig(4, 64)
    ts = {t.name: TensorChoice(c, tensor_bytes(t.shape, c), 0.0, 0.0) for t in quantizable_tensors(m)}
    return Plan('uniform 4b-g64', str(model), ts, fixed_bytes(m), parameter_count(m)).save(Path(work) / 'plan.json')


def run(op, model, work, length: int = 64, grad_bytes: int = 1 << 29):
    Path(work).mkdir(parents=True, exist_ok=True)
    if op == 'ppl-folder' and not (Path(work) / 'q').exists(): run('quantize', model, work)  # the folder it scores
    if op == 'ppl-plan': uniform_plan_file(model, work)
    argv = [sys.executable, '-c', CHILD, op, str(model), str(work), str(length), str(grad_bytes)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f'{op} failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='qwen3-4b', choices=list(ARCHS))
    ap.add_argument('--layers', type=int, nargs='+', default=[6, 26])
    ap.add_argument('--shard-mb', type=int, default=1024)
    ap.add_argument('--ops', nargs='+', default=['quantize', 'profile'],
                    choices=['load', 'quantize', 'profile', 'condition', 'condition-eager', 'unquantized',
                             *SCORING_OPS, 'taylor-native', 'taylor-fp32'])
    ap.add_argument('--length', type=int, default=256, help='tokens of the one window the ppl-* ops score')
    ap.add_argument('--grad-mb', type=int, default=512, help="the taylor-* ops' gradient accumulators (grad_bytes)")
    ap.add_argument('--root', default='runs/bench-rss')
    ap.add_argument('--keep', action='store_true', help='keep the generated models (several GB each)')
    a = ap.parse_args()
    from ram.tiny import save_random_model
    rows = []
    for n in a.layers:
        folder = Path(a.root) / f'{a.arch}-{n}L-{a.shard_mb}MB'
        if not folder.exists():
            t0 = time.perf_counter()
            save_random_model(folder, {**ARCHS[a.arch], 'num_hidden_layers': n}, shard_bytes=a.shard_mb << 20)
            print(f'generated {folder} in {time.perf_counter() - t0:.0f} s', flush=True)
        shards = sorted(folder.glob('*.safetensors'))
        size, big = sum(s.stat().st_size for s in shards), max(s.stat().st_size for s in shards)
        for op in a.ops:
            r = run(op, folder, folder.parent / (folder.name + '-work'), a.length, a.grad_mb << 20)
            est = estimate(op, folder, a.length, folder.parent / (folder.name + '-work') / 'q')
            rows.append((a.arch, n, op, size, len(shards), big, r['peak_rss'], r['seconds'], est,
                         r.get('condition_bytes') or 0))
            q = r.get('condition_bytes') or 0
            print(f'  {op}: peak RSS {r["peak_rss"] / 1e9:.2f} GB in {r["seconds"]:.0f} s'
                  + (f'; the condition holds {q / 1e9:.3f} GB of weights' if q else ''), flush=True)
        shutil.rmtree(folder.parent / (folder.name + '-work'), ignore_errors=True)
        if not a.keep: shutil.rmtree(folder)
    print(
        "\n| model | layers | op | size (GB) | shards | largest shard (GB) | peak RSS (GB) | RSS / largest shard | "
        "dry-run estimate (GB) | estimate / measured | weights scored (GB) | RSS / weights scored | seconds |"
    )
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for arch, n, op, size, k, big, rss, s, est, w in rows:
        e = ('-', '-') if est is None else (f'{est / 1e9:.2f}', f'{est / rss:.2f}')
        ws = ('-', '-') if not w else (f'{w / 1e9:.3f}', f'{rss / w:.2f}')
        print(
            f'| {arch} | {n} | {op} | {size / 1e9:.2f} | {k} | {big / 1e9:.2f} | {rss / 1e9:.2f} | {rss / big:.2f} '
            f'| {e[0]} | {e[1]} | {ws[0]} | {ws[1]} | {s:.0f} |'
        )


if __name__ == '__main__': main()
