"""Will it fit? `ram.fit` on header-only copies of the paper's models (exact safetensors headers, the data a hole in a
sparse file: no weights), and the dry runs of `ram reproduce`, `profile`, `quantize`, `ppl` and `eval` on them."""
import json
import resource

import pandas as pd
import pytest

from ram.cli import main
from ram.core import GB, Plan, TensorChoice, QuantConfig, tensor_bytes
from ram.fit import budget_bytes, estimate, read_shape, skipped, uniform_bytes
from ram.scoring import GIB
from ram.tiny import PUBLISHED_CONFIGS, save_header_only_model, save_tiny_model

# published sizes: parameters (mlx-lm's language model; Scout's vision tower is not loaded), bf16 bytes
SIZES = {'Qwen3-30B-A3B': (30.53e9, 61.06e9), 'Mixtral-8x7B-v0.1': (46.70e9, 93.41e9),
         'Llama-4-Scout-17B-16E': (107.77e9, 215.54e9)}


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('headers')
    return {k: save_header_only_model(root / k, c) for k, c in PUBLISHED_CONFIGS.items()}


def _runs(df):
    return dict(zip(df.step + ' ' + df.condition, df.runs))


def test_shapes_come_from_config_and_headers_alone(models):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for k, f in models.items():
        s = read_shape(f)
        n, b = SIZES[k]
        assert abs(s.n_params - n) < 0.01e9 and abs(s.stored_bytes - b) < 0.01e9, (k, s.n_params, s.stored_bytes)
        assert sum(p.stat().st_blocks * 512 for p in f.glob('*.safetensors')) < 1e8     # no weights on disk
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2e6           # KiB: nothing near a model read
    q = read_shape(models['Qwen3-30B-A3B'])
    assert 3.0e9 < q.active_params < 3.5e9 and q.top_k == 8                             # "A3B"
    assert read_shape(models['Mixtral-8x7B-v0.1']).active_params == pytest.approx(12.9e9, rel=0.01)


def test_budgets_and_uniform_bytes(models):
    s = read_shape(models['Qwen3-30B-A3B'])
    u = uniform_bytes(s, '4b-g64')
    assert budget_bytes(s, '@4b-g64') == u and 16.5e9 < u < 17.5e9          # the documents' "16.0 GB" is GiB: 17.17e9 B
    assert abs(u / GIB - 16.0) < 0.05
    assert budget_bytes(s, '16GB') == 16 * 10**9 and budget_bytes(s, '4bpw') == s.n_params // 2


def test_qwen3_moe_on_a_64gb_mac(models):
    df = estimate(models['Qwen3-30B-A3B'], budgets=['16GB', '@4b-g64'], memory=48 * GIB, gpu=True)
    r = _runs(df)
    assert df.attrs['scoring'] == 'native'
    assert r['ppl unquantized'].startswith('skipped') and r['eval unquantized'].startswith('skipped')
    assert r['ppl mlx-lm dynamic'].startswith('skipped')
    assert r['ppl RAM 16GB'] == r['ppl RAM @4b-g64'] == r['ppl uniform 4b-g64'] == 'yes'
    assert r['profile weight'] == 'yes' and r['profile taylor'] == 'DOES NOT FIT'
    peak = df.set_index(['step', 'condition'])['peak (GB)']
    assert 16 < peak['ppl', 'RAM 16GB'] < 16 * 1.25 + 1.5          # its quantized size plus a working set
    # fp32 scoring would hold the dense copy: about 122 GB on top of the 16 GB folder
    fp = estimate(models['Qwen3-30B-A3B'], budgets=['16GB'], memory=512 * GIB, gpu=False, scoring='fp32',
                  steps=['ppl']).set_index('condition')['peak (GB)']
    assert 122 + 16 < fp['RAM 16GB'] < 122 + 16 + 5


def test_scout_and_mixtral_on_192gb(models):
    r = _runs(estimate(models['Llama-4-Scout-17B-16E'], budgets=['64GB'], memory=192 * GIB * 3 // 4, gpu=True))
    assert r['ppl unquantized'].startswith('skipped')          # the documents' Scout table has no bf16 row either
    assert r['ppl RAM 64GB'] == 'yes' and r['quantize RAM 64GB'] == 'yes'
    r = _runs(estimate(models['Mixtral-8x7B-v0.1'], budgets=['24.5GB'], memory=192 * GIB * 3 // 4, gpu=True))
    assert r['ppl unquantized'] == 'yes' and r['ppl RAM 24.5GB'] == 'yes'   # 93 GB fits in 144 GiB
    r = _runs(estimate(models['Mixtral-8x7B-v0.1'], budgets=['20GB', '24.5GB'], memory=24 * GIB, gpu=False))
    assert r['ppl uniform 4b-g64'] == r['ppl RAM 24.5GB'] == 'DOES NOT FIT' and r['ppl RAM 20GB'] == 'yes'


def test_auto_scoring_decides_like_resolve_scoring(models):
    f = models['Qwen3-30B-A3B']
    assert estimate(f, memory=24 * GIB, gpu=False, steps=['ppl']).attrs['scoring'] == 'native'
    assert estimate(f, memory=1024 * GIB, gpu=False, steps=['ppl']).attrs['scoring'] == 'fp32'
    assert estimate(f, memory=1024 * GIB, gpu=True, steps=['ppl']).attrs['scoring'] == 'native'


def test_ram_memory_plans_for_another_machine(models, monkeypatch):
    monkeypatch.setenv('RAM_MEMORY', '48GiB')
    assert estimate(models['Qwen3-30B-A3B'], steps=['ppl']).attrs['memory'] == 48 * GIB
    assert set(skipped(models['Qwen3-30B-A3B'], dynamic=True)) == {'unquantized', 'mlx-lm dynamic'}
    monkeypatch.setenv('RAM_MEMORY', '4.5bpw')
    with pytest.raises(ValueError, match='RAM_MEMORY'): estimate(models['Qwen3-30B-A3B'])


def test_bad_input():
    with pytest.raises(ValueError, match='hub id'): read_shape('someorg/not-downloaded-model')
    with pytest.raises(ValueError, match='valid: profile, quantize, ppl, eval'): estimate('reference', steps=['x'])


def test_dry_runs_of_every_command(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('RAM_MEMORY', '64GB')
    scout = str(models['Llama-4-Scout-17B-16E'])
    assert main(['reproduce', '--models', scout, '--dry-run', '--budgets', '64GB', '--runs', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'llama4, 107.77B parameters' in out and 'ppl      unquantized' in out and 'skipped: does not fit' in out
    assert 'eval     RAM 64GB' in out
    assert main(['profile', scout, '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'profile  taylor' in out and 'DOES NOT FIT' in out and 'ppl' not in out.split('\n', 1)[1]
    assert main(['ppl', scout, '--dry-run', '--protocol', 'paper']) == 0
    assert 'ppl      unquantized' in capsys.readouterr().out
    # a plan file for a quantize or a scored condition: its own bytes
    s = read_shape(scout)
    c = QuantConfig(4, 64)
    plan = Plan('4b', scout, {n: TensorChoice(c, tensor_bytes(sh, c), 0.0, 0.0) for n, sh in s.shapes.items()},
                s.fixed_bytes, s.n_params)
    plan.save(tmp_path / 'plan.json')
    assert main(['quantize', scout, str(tmp_path / 'plan.json'), '-o', str(tmp_path / 'q'), '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'quantize' in out and f'{plan.total_bytes / GB:9.2f}' in out and not (tmp_path / 'q').exists()
    monkeypatch.setenv('RAM_MEMORY', '60GB')
    assert main(['eval', scout, '--plan', str(tmp_path / 'plan.json'), '--dry-run', '--limit', '300']) == 0
    out = capsys.readouterr().out.split('\n', 1)[1]
    assert 'eval' in out and 'unquantized' not in out and 'DOES NOT FIT' in out      # 60.6 GB + working set > 60 GB


def test_templates_leave_out_what_does_not_fit(tmp_path, monkeypatch):
    from ram.reproduce import reproduce
    monkeypatch.setenv('RAM_MEMORY', '100MB')                 # less than the unquantized row (or anything) needs
    model = save_tiny_model(tmp_path / 'tiny')
    reproduce([str(model)], 'quick', out=str(tmp_path / 'fig'), runs=str(tmp_path / 'runs'), n=2, length=32, limit=1,
              progress=False, budgets=['@4b-g64'], names=['robustness', 'budgets'])
    fig = tmp_path / 'fig' / 'tiny'
    rob = pd.read_csv(fig / 'robustness.csv')
    assert 'unquantized' not in set(rob.Condition) and 'uniform 4b-g64' in set(rob.Condition)
    assert 'Left out: unquantized: not run here, it needs about' in (fig / 'robustness.md').read_text()
    bud = pd.read_csv(fig / 'budgets.csv')
    assert not any(c.startswith(('unquantized', 'mlx-lm dynamic')) for c in bud.Condition)
    assert set(bud['Gap recovered (median)'].astype(str)) == {'-'}
    text = (fig / 'budgets.md').read_text()
    assert 'Left out: mlx-lm dynamic' in text and 'no gap to recover' in text
    json.loads((tmp_path / 'runs' / 'tiny' / 'budgets.ipynb').read_text())
