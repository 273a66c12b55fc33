"""Faults: runs killed with SIGKILL at random points leave a complete result or none; a killed profile resumes; reruns
are byte-identical."""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import mlx_lm
import numpy as np
import pytest

import ram.profiler as P
from ram.allocator import plan_budgets
from ram.cli import main
from ram.core import Profile
from ram.profiler import partial_path, profile_to
from ram.quantizer import safetensors_payload
from ram.tiny import save_random_model, tiny_config

ENV = {**os.environ, 'RAM_BLAS_CHECKED': '1'}
# big enough that profiling takes a few seconds, small enough for CI: 4 layers of 256 x 768 in 300 kB shards
ARGS = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, vocab_size=2048)


@pytest.fixture(scope='module')
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp('faults')
    return save_random_model(d / 'src', tiny_config('llama', **ARGS), shard_bytes=300_000, dtype='float32')


def _spawn(code: str, *args):
    return subprocess.Popen(
        [sys.executable, '-c', code, *map(str, args)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _kill_when(proc, ready, delay: float, timeout: float = 120):
    "SIGKILL `proc` `delay` seconds after `ready()` is true (or when it ends first). Returns whether it was killed."
    t0 = time.monotonic()
    while not ready() and proc.poll() is None and time.monotonic() - t0 < timeout: time.sleep(0.002)
    time.sleep(delay)
    if proc.poll() is not None: return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


QUANTIZE = (
    'import sys; from ram.cli import main; sys.exit(main(["quantize", sys.argv[1], sys.argv[2], "-o", '
    'sys.argv[3], "--overwrite"]))'
)
PROFILE = ('import sys; from ram.profiler import profile_to; '
           'profile_to(sys.argv[1], sys.argv[2], progress=False, checkpoint_seconds=0)')


def test_killed_quantize_leaves_complete_result_or_none(src, tmp_path):
    prof = P.profile(src, progress=False)
    plan = plan_budgets(prof, ['4.5bpw'])[0]
    plan.save(tmp_path / 'plan.json')
    out = tmp_path / 'q'
    rng = np.random.default_rng(6)
    killed = 0
    for i in range(6):
        p = _spawn(QUANTIZE, src, tmp_path / 'plan.json', out)
        # half the kills land at a random moment of the whole run, half while the shards are being written
        if i % 2: ready = lambda: (tmp_path / f'.q.tmp-{p.pid}').exists()
        else: ready = lambda: True
        k = _kill_when(p, ready, float(rng.uniform(0, 0.05 if i % 2 else 4.0)))
        killed += k
        print("quantize run", i, "killed" if k else "finished", "->", sorted(x.name for x in tmp_path.iterdir()))
        names = [x.name for x in tmp_path.iterdir()]
        if out.exists():  # a complete, loadable result
            assert safetensors_payload(out) == plan.total_bytes
            assert json.loads((out / 'ram_plan.json').read_text())['total_bytes'] == plan.total_bytes
            mlx_lm.load(str(out))
        assert all(n in ('plan.json', 'q', '.q.lock') or n.startswith('.q.tmp-') for n in names), names  # lock: freed
    assert killed >= 3
    # the next run finishes and clears what killed runs left behind
    assert main(['quantize', str(src), str(tmp_path / 'plan.json'), '-o', str(out), '--overwrite']) == 0
    assert sorted(x.name for x in tmp_path.iterdir()) == ['plan.json', 'q']
    m, tok = mlx_lm.load(str(out))
    assert isinstance(mlx_lm.generate(m, tok, prompt='ab', max_tokens=2), str)


def test_killed_profile_resumes_without_recomputing(src, tmp_path):
    whole = profile_to(tmp_path / 'whole.json', src, progress=False)
    n = whole.table.tensor.nunique()
    out = tmp_path / 'p.json'
    part = partial_path(out)
    rng = np.random.default_rng(4)
    finished = []
    for i in range(3):
        p = _spawn(PROFILE, out, src)
        before = len(json.loads(part.read_text())['rows']) if part.exists() else 0
        ready = lambda: part.exists() and part.stat().st_mtime_ns != getattr(ready, 'm', None)
        ready.m = part.stat().st_mtime_ns if part.exists() else None
        _kill_when(p, ready, float(rng.uniform(0, 0.3)))
        if out.exists(): Profile.load(out)  # complete if there at all
        if part.exists(): finished.append(len(json.loads(part.read_text())['rows']))  # checkpoints are whole JSON
        print("profile run", i, "checkpointed tensors:", finished[-1:] )
        assert not finished or finished[-1] >= before
    assert not out.exists() or out.read_bytes() == (tmp_path / 'whole.json').read_bytes()
    if out.exists(): out.unlink(); pytest.skip('the runs finished before a kill: nothing to resume (machine too fast)')
    done = len(json.loads(part.read_text())['rows'])
    assert 0 < done < n
    calls, real = [], P.tensor_errors
    P.tensor_errors = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    try: stats = {}; P.profile_to(out, src, progress=False, stats=stats)
    finally: P.tensor_errors = real
    assert len(calls) == n - done and stats['resumed'] == done
    assert out.read_bytes() == (tmp_path / 'whole.json').read_bytes()
    assert not part.exists()


def test_same_inputs_give_byte_identical_outputs(src, tmp_path):
    outs = []
    for run in ('a', 'b'):
        d = tmp_path / run
        with contextlib.redirect_stdout(io.StringIO()) as log:
            assert main(['profile', str(src), '-o', str(d / 'profile.json')]) == 0
            assert main(['allocate', str(d / 'profile.json'), '--budget', '4bpw', '5bpw', '-o', str(d / 'plans')]) == 0
            assert main(['quantize', str(src), str(d / 'plans' / 'plan-4bpw.json'), '-o', str(d / 'q')]) == 0
        # the allocation table and after (timing above it)
        table = log.getvalue().split('profiling:')[1].split('\n', 1)[1]
        files = {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob('*')) if f.is_file()}
        outs.append((table.replace(str(d), '<d>'), files))
    assert outs[0][0] == outs[1][0]
    assert outs[0][1].keys() == outs[1][1].keys() and len(outs[0][1]) > 8
    for k in outs[0][1]: assert outs[0][1][k] == outs[1][1][k], f'{k} differs between two identical runs'
