"""Papermill smoke: every paper template runs end to end on a tiny model folder through the driver; the driver refuses
a template without a parameters cell."""
import json
import shutil

import pandas as pd
import pytest

from ram.reproduce import PAPER, TEMPLATES, reproduce
from ram.tiny import save_tiny_model

PNG = b'\x89PNG\r\n\x1a\n'


def test_templates_regenerate_tables_and_figures(tmp_path, monkeypatch):
    model = save_tiny_model(tmp_path / 'tiny')
    kw = dict(out=str(tmp_path / 'figures'), runs=str(tmp_path / 'runs'), n=3, length=64, limit=2, progress=False,
              budgets=['4.5bpw', '@4b-g64'])
    done = reproduce([str(model)], 'quick', **kw)
    assert [d['template'] for d in done] == list(TEMPLATES)
    fig = tmp_path / 'figures' / 'tiny'
    for name in TEMPLATES:
        assert (fig / f'{name}.md').read_text().startswith(f'**{name.capitalize()}: tiny**')
    rob = pd.read_csv(fig / 'robustness.csv')
    assert rob.Condition.tolist()[0] == 'unquantized' and {
        'RAM v1',
        'RAM 4.5bpw',
        'RAM @4b-g64',
        'uniform 4b-g64',
    } <= set(rob.Condition)
    bud = pd.read_csv(fig / 'budgets.csv')
    assert any(c.startswith('mlx-lm dynamic') for c in bud.Condition)
    row = bud.set_index('Condition').loc['uniform 4b-g64']
    assert row['Gap recovered (median)'] == 0 and row['Size delta (GB)'] == 0
    down = pd.read_csv(fig / 'downstream.csv')
    assert down.Method.tolist()[0] == 'unquantized' and set(down.Method) == {
        'unquantized',
        'RAM 4.5bpw',
        'RAM @4b-g64',
        'uniform 4b-g64',
    }
    assert down.columns.tolist() == ['Model', 'Method', 'Size (GB)', 'ARC-C (acc_norm)', 'Winogrande (acc)',
                                     'ARC-C vs uniform', 'ARC-C verdict', 'Winogrande vs uniform', 'Winogrande verdict']
    d = down.set_index('Method')
    assert d.loc['unquantized', 'ARC-C vs uniform'] == d.loc['uniform 4b-g64', 'ARC-C vs uniform'] == '-'
    assert d.loc['RAM @4b-g64', 'Winogrande vs uniform'].split(', p=')[1]            # paired on the same documents
    assert d.loc['RAM @4b-g64', 'ARC-C verdict'].split(' (')[0] in ('better', 'worse', 'not distinguishable')
    assert "McNemar's exact test" in (fig / 'downstream.md').read_text()
    r = rob.set_index('Condition')
    assert r.loc['uniform 4b-g64', 'Median vs uniform'] == '-' and ', p=' in r.loc['RAM @4b-g64', 'Median vs uniform']
    assert bud.set_index('Condition').loc['RAM @4b-g64', 'Paired median diff [95% CI], p'].startswith('vs 4b-g64: ')
    for png in ('robustness-windows', 'budgets-rd', 'budgets-allocation', 'budgets-groups'):
        assert (fig / f'{png}.png').read_bytes()[:8] == PNG
    for d in done: assert json.loads(d['output'].read_text())['cells'], d   # executed notebooks are kept under runs/
    # a second run reuses every scored condition from the cache and writes the same tables, byte for byte
    first = {p.name: p.read_bytes() for p in fig.glob('*.csv')}
    cache = sorted(p.name for p in (tmp_path / 'cache' / 'conditions' / 'tiny').iterdir())
    reproduce([str(model)], 'quick', names=['robustness', 'budgets'], **kw)
    assert sorted(p.name for p in (tmp_path / 'cache' / 'conditions' / 'tiny').iterdir()) == cache
    assert {p.name: p.read_bytes() for p in fig.glob('*.csv')} == first


def test_driver_refuses_a_template_without_parameters(tmp_path):
    for name in TEMPLATES: shutil.copy(PAPER / f'{name}.ipynb', tmp_path)
    nb = json.loads((tmp_path / 'budgets.ipynb').read_text())
    for c in nb['cells']: c.get('metadata', {}).pop('tags', None)
    (tmp_path / 'budgets.ipynb').write_text(json.dumps(nb))
    with pytest.raises(ValueError, match='exactly one cell tagged "parameters"'):
        reproduce(['reference'], 'quick', template_dir=tmp_path, dry_run=True)


def test_a_failing_template_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    from ram.cli import main
    model = save_tiny_model(tmp_path / 'tiny')
    tpl = tmp_path / 'tpl'
    tpl.mkdir()
    for name in TEMPLATES: shutil.copy(PAPER / f'{name}.ipynb', tpl)
    nb = json.loads((tpl / 'robustness.ipynb').read_text())
    nb['cells'].insert(3, {'cell_type': 'code', 'execution_count': None, 'id': 'boom', 'metadata': {}, 'outputs': [],
                           'source': ["raise RuntimeError('boom: this template is broken')"]})
    (tpl / 'robustness.ipynb').write_text(json.dumps(nb))
    argv = ['reproduce', '--models', str(model), '--templates', str(tpl), '--only', 'robustness', 'downstream',
            '--n', '3', '--length', '64', '--limit', '2', '--budgets', '@4b-g64', '--out', str(tmp_path / 'fig'),
            '--runs', str(tmp_path / 'runs')]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]          # above it: the notebooks' own stderr, streamed as they ran
    assert err.startswith('ram reproduce: error: 1 of 2 templates failed: robustness') and 'boom' in err, err
    assert str(tmp_path / 'runs' / 'tiny' / 'robustness.ipynb') in err                     # where to look
    assert (tmp_path / 'fig' / 'tiny' / 'downstream.md').exists()                           # the other one ran
    assert 'scoring: fp32 (auto: ' in captured.out                                         # notebook output, live


def test_the_templates_kernel_is_this_interpreter(tmp_path, monkeypatch):
    import sys

    from jupyter_client.kernelspec import KernelSpecManager

    from ram.reproduce import _kernel
    monkeypatch.delenv('JUPYTER_PATH', raising=False)
    name = _kernel(tmp_path)
    assert KernelSpecManager().get_kernel_spec(name).argv[:3] == [sys.executable, '-m', 'ipykernel_launcher']


def test_reproduce_flags_reach_the_templates():
    jobs = reproduce(['reference'], 'paper', dry_run=True, budgets=['16GB', '@4b-g64'], v1=False, dynamic=False,
                     scoring='native')
    p = {j['template']: j['parameters'] for j in jobs}
    assert p['budgets']['budgets'] == ['16GB', '@4b-g64'] and p['budgets']['dynamic'] is False
    assert p['robustness']['v1'] is False and p['downstream']['scoring'] == 'native' and 'v1' not in p['downstream']
    assert p['robustness']['out'] == 'figures/SmolLM2-135M-Instruct/paper'
    jobs = reproduce(['reference'], 'quick', dry_run=True, unquantized=False)      # --baselines without unquantized
    assert [j['parameters']['unquantized'] for j in jobs] == [False] * 3
