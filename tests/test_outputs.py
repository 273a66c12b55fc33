"""Stored notebook outputs: they follow the rules of tools/outputs.py, the check catches what it should, and a rerun of
chapters that need no model reproduces their outputs exactly."""
import copy
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import outputs  # noqa: E402


def test_stored_outputs_follow_the_rules():
    bad = [b for p in outputs.library() for b in outputs.problems(p)]
    assert not bad, '\n'.join(bad)


def test_every_library_notebook_is_checked():
    names = {p.name for p in outputs.library()}
    assert {'00_core.ipynb', '03_allocator.ipynb', '09_cli.ipynb'} <= names and len(names) >= 14


def _with_output(nb: dict, out: dict) -> dict:
    nb = copy.deepcopy(nb)
    code = next(c for c in nb['cells'] if c['cell_type'] == 'code' and c.get('outputs'))
    code['outputs'] = [out]
    return nb


def test_the_check_catches_bad_outputs(tmp_path):
    nb = json.loads((ROOT / 'nbs' / '03_allocator.ipynb').read_text())
    cases = {
        'stderr': {'output_type': 'stream', 'name': 'stderr', 'text': 'warning\n'},
        'an absolute path': {'output_type': 'stream', 'name': 'stdout', 'text': 'written: /tmp/x/plan.json\n'},
        'progress-bar': {'output_type': 'stream', 'name': 'stdout', 'text': '\r 50%|#####  | 1/2 [1.2it/s]'},
        'a timing': {'output_type': 'stream', 'name': 'stdout', 'text': 'profiled in 12.5 s (3,000 tok/s)\n'},
        'a memory address': {'output_type': 'execute_result', 'execution_count': None, 'metadata': {},
                             'data': {'text/plain': '<object at 0x7f3a2b1c9d80>'}},
        'an output of': {'output_type': 'stream', 'name': 'stdout', 'text': 'x' * 200_000},
    }
    for what, out in cases.items():
        f = tmp_path / f'{len(what)}.ipynb'
        f.write_text(json.dumps(_with_output(nb, out)))
        assert any(what in b for b in outputs.problems(f)), what
    # a section that shows nothing
    bare = copy.deepcopy(nb)
    for c in bare['cells']: c['outputs'] = [] if c['cell_type'] == 'code' else c.get('outputs')
    f = tmp_path / 'bare.ipynb'
    f.write_text(json.dumps(bare))
    assert any('shows no output' in b for b in outputs.problems(f))


def test_a_rerun_reproduces_the_stored_outputs():
    nbs = [str(ROOT / 'nbs' / n) for n in ('00_core.ipynb', '03_allocator.ipynb', '05_metrics.ipynb')]
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'outputs.py'), '--rerun', *nbs],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
