"""Safety: --overwrite replaces only a model folder, a model folder's code never runs, and a name read from a file never
takes an output out of its folder (issue 14)."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest

import ram.core as core
import ram.models as models
import ram.quantizer as quantizer
from ram.allocator import plan_budgets
from ram.cli import main
from ram.profiler import profile
from ram.tiny import save_tiny_model


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp('safety')
    src = save_tiny_model(d / 'src')
    plan = plan_budgets(profile(src, progress=False), ['4.5bpw'])[0]
    plan.save(d / 'plan.json')
    return src, d / 'plan.json'


def _files(folder) -> dict:
    "Every file under `folder` with its bytes: what a refused run must leave as it was."
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def _one_error_line(capsys, cmd: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'ram {cmd}: error: ') and '\n' not in err, err
    return err


@pytest.fixture
def no_work(monkeypatch):
    "A refusal must come before any work: loading the model fails the test."
    def fail(*a, **k): raise AssertionError('the model was loaded before the output was checked')
    monkeypatch.setattr(quantizer, 'load_condition', fail)


# --- 1. --overwrite replaces only a model folder ----------------------------------------------------------------------

def test_overwrite_never_replaces_the_working_folder_or_a_folder_above_it(tmp_path, tiny, monkeypatch, capsys, no_work):
    src, plan = tiny
    work = tmp_path / 'project'
    work.mkdir()
    (work / 'thesis.tex').write_text('\\documentclass{article}\n')
    before, around = _files(work), _files(tmp_path)
    monkeypatch.chdir(work)
    for out in ('.', str(work), '..', str(tmp_path), 'sub/..'):
        assert main(['quantize', str(src), str(plan), '-o', out, '--overwrite']) == 1
        err = _one_error_line(capsys, 'quantize')
        assert 'working directory' in err and 'choose another output folder' in err, err
    assert _files(work) == before and _files(tmp_path) == around
    # the working directory is refused even when it is a model folder
    monkeypatch.chdir(src)
    assert main(['quantize', str(src), str(plan), '-o', '.', '--overwrite']) == 1
    assert 'is the current working directory' in _one_error_line(capsys, 'quantize')


def test_overwrite_refuses_a_file_the_source_and_a_folder_that_is_no_model(tmp_path, tiny, capsys, no_work):
    src, plan = tiny
    (tmp_path / 'afile').write_text('keep me')
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'todo.txt').write_text('keep me too')
    (tmp_path / 'half').mkdir()
    (tmp_path / 'half' / 'config.json').write_text('{}')  # a config without weights is no model folder
    (tmp_path / 'link').symlink_to(src, target_is_directory=True)  # replacing a link would replace what it points at
    before, src_before = _files(tmp_path), _files(src)
    cases = {'afile': 'is a file', 'notes': 'is not a model folder', 'half': 'is not a model folder',
             'link': 'is a symbolic link'}
    for name, why in cases.items():
        for flag in (['--overwrite'], []):
            assert main(['quantize', str(src), str(plan), '-o', str(tmp_path / name), *flag]) == 1
            err = _one_error_line(capsys, 'quantize')
            assert why in err and '--overwrite replaces only a model folder' in err, err
    for out in (src, src.parent):
        assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 1
        assert 'source model folder' in _one_error_line(capsys, 'quantize')
    assert _files(tmp_path) == before and _files(src) == src_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['afile', 'half', 'link', 'notes']  # no temporary siblings


def test_every_writer_uses_the_same_check(tmp_path, tiny):
    src, _ = tiny
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'todo.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='notes is not a model folder'):
        with core.atomic_folder(tmp_path / 'notes', overwrite=True): pass
    m, tok, cfg = models.load(src, return_config=True)
    with pytest.raises(FileExistsError, match='is the source model folder'):
        quantizer.save_model_folder(src, m, tok, cfg, src=src, overwrite=True)
    with pytest.raises(FileExistsError, match='notes is not a model folder'):
        quantizer.save_model_folder(tmp_path / 'notes', m, tok, cfg, src=src, overwrite=True)
    assert (tmp_path / 'notes' / 'todo.txt').read_text() == 'keep me'


def test_overwrite_still_replaces_a_model_folder(tmp_path, tiny, capsys):
    src, plan = tiny
    out = tmp_path / 'q'
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 0
    first = _files(out)
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 1
    assert 'q exists; pass --overwrite or choose another folder' in _one_error_line(capsys, 'quantize')
    assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 0
    assert _files(out) == first and sorted(p.name for p in tmp_path.iterdir()) == ['q']


# --- 2. a model folder's code never runs ------------------------------------------------------------------------------

def _booby_trapped(folder: Path, marker: Path) -> Path:
    "A tiny model whose tokenizer config points transformers at a Python file of the folder that writes `marker`."
    save_tiny_model(folder)
    cfg = json.loads((folder / 'tokenizer_config.json').read_text())
    cfg.update(tokenizer_class='TrapTokenizer', auto_map={'AutoTokenizer': ['trap.TrapTokenizer', None]})
    (folder / 'tokenizer_config.json').write_text(json.dumps(cfg))
    (folder / 'trap.py').write_text(f'open({str(marker)!r}, "w").write("ran")\nclass TrapTokenizer: pass\n')
    return folder


def test_a_model_folder_never_runs_its_code(tmp_path):
    marker = tmp_path / 'RAN'
    trap = _booby_trapped(tmp_path / 'trap', marker)
    # the ram command, with a user at the keyboard who would answer yes to transformers' prompt
    code = 'import sys; from ram.cli import main; sys.exit(main(sys.argv[1:]))'
    # HF_MODULES_CACHE: where transformers would copy the folder's code before running it
    env = {**os.environ, 'RAM_BLAS_CHECKED': '1', 'HF_MODULES_CACHE': str(tmp_path / 'hf-modules'),
           'PYTHONPATH': os.pathsep.join([str(Path(core.__file__).parents[1]), os.environ.get('PYTHONPATH', '')])}
    p = subprocess.run([sys.executable, '-c', code, 'profile', str(trap), '-o', str(tmp_path / 'p.json')],
                       input='y\ny\ny\n', capture_output=True, text=True, env=env, timeout=300)
    assert not marker.exists(), 'the folder ran its code'
    assert 'Do you wish to run the custom code' not in p.stdout + p.stderr
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith('ram profile: error: ') and 'pass --trust-remote-code only if you trust' in err, p.stderr
    assert not (tmp_path / 'p.json').exists()


def test_no_prompt_and_trust_is_threaded_to_the_loader(tmp_path, tiny, monkeypatch):
    src, plan = tiny
    marker = tmp_path / 'RAN'
    trap = _booby_trapped(tmp_path / 'trap', marker)

    def no_input(*a): raise AssertionError('prompted on stdin')
    monkeypatch.setattr('builtins.input', no_input)
    with pytest.raises(ValueError, match='trust_remote_code=True .*CLI: --trust-remote-code'): models.load(trap)
    assert not marker.exists()
    seen, real = [], models.mlx_lm.load

    def spy(path, **kw):
        seen.append((kw.get('trust_remote_code'), (kw.get('tokenizer_config') or {}).get('trust_remote_code')))
        return real(path, **kw)
    monkeypatch.setattr(models.mlx_lm, 'load', spy)
    prof = tmp_path / 'p.json'
    assert main(['profile', str(src), '-o', str(prof)]) == 0
    assert main(['quantize', str(src), str(plan), '-o', str(tmp_path / 'q'), '--trust-remote-code']) == 0
    assert seen == [(False, False), (True, True)]


# --- 3. names from files become one safe path component ---------------------------------------------------------------

def test_safe_path_component():
    f = core.safe_path_component
    for ok in ('RAM-4.5bpw', 'mlx-lmdynamic-4.5bpw', 'uniform4b-g64-4.5bpw', 'SmolLM2-135M-Instruct', 'model_v1.2'):
        assert f(ok) == ok  # ordinary names are kept as they are
    for bad, want in [('../../../pwn/x', 'pwn-x'), ('..', '_'), ('.', '_'), ('', '_'), ('.hidden', 'hidden'),
                      ('a/b\\c', 'a-b-c'), ('a\x00b\nc', 'a-b-c'), ('x..y', 'x.y'), (None, 'None'), (3, '3')]:
        assert f(bad) == want, (bad, f(bad))
    assert len(f('x' * 1000).encode()) <= 100 and len(f('é' * 1000).encode()) <= 100
    rng = random.Random(14)
    alphabet = ['.', '..', '/', '\\', '\x00', '\n', ' ', '-', 'a', 'é', '\ud800', '~', '$', ':']
    root = Path('/nonexistent/root')
    for _ in range(500):
        name = ''.join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        s = f(name)
        assert s and s not in ('.', '..') and not s.startswith('.') and '..' not in s, (name, s)
        assert '/' not in s and '\\' not in s and '\x00' not in s and len(s.encode()) <= 100, (name, s)
        assert Path(s).name == s and os.path.normpath(root / s) == str(root / s), (name, s)


def test_default_outputs_stay_under_runs(tmp_path, tiny, monkeypatch, capsys):
    src, plan = tiny
    d = json.loads(plan.read_text())
    d['method'] = '../../../pwn/x'
    evil = tmp_path / 'evil.json'
    evil.write_text(json.dumps(d))
    work = tmp_path / 'w'
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(['ppl', str(src), '--plan', str(evil), '--n', '2', '--length', '32']) == 0
    import ram.cli
    monkeypatch.setattr(ram.cli, 'downstream',
                        lambda *a, **k: {'table': [], 'provenance': {}, 'seconds': 0.0, 'requests_scored': 0})
    assert main(['eval', str(src), '--plan', str(evil), '--limit', '1']) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*') if p.is_file())
    assert written == ['evil.json', 'w/runs/eval/pwn-x-4.5bpw-limit1.json', 'w/runs/ppl/pwn-x-4.5bpw-custom.csv',
                       'w/runs/ppl/pwn-x-4.5bpw-custom.json'], written


# --- 6. a bad folder never gives silently wrong weights ---------------------------------------------------------------

def _indexed(folder: Path) -> Path:
    "A tiny model whose weights are named by a `model.safetensors.index.json`, as a sharded checkpoint's are."
    save_tiny_model(folder)
    names = sorted(mx.load(str(folder / 'model.safetensors')))
    (folder / 'model.safetensors.index.json').write_text(
        json.dumps({'metadata': {}, 'weight_map': {k: 'model.safetensors' for k in names}}))
    return folder


def _set_weight(folder: Path, key: str, value: float, at: int = 0):
    "Write `value` at row `at` of the tensor `key` of the folder's model.safetensors."
    w = mx.load(str(folder / 'model.safetensors'))
    w[key][at] = value
    mx.save_safetensors(str(folder / 'model.safetensors'), w, metadata={'format': 'mlx'})


def test_a_safetensors_file_the_index_does_not_name_is_refused(tmp_path, capsys):
    src = _indexed(tmp_path / 'src')
    assert main(['profile', str(src), '-o', str(tmp_path / 'clean.json')]) == 0
    capsys.readouterr()
    # mlx-lm loads every model*.safetensors: this file's norm would replace the indexed one without a word
    for stray in ('model-extra.safetensors', 'consolidated.safetensors'):
        mx.save_safetensors(str(src / stray), {'model.norm.weight': mx.zeros((64,))})
        assert main(['profile', str(src), '-o', str(tmp_path / 'p.json')]) == 1
        err = _one_error_line(capsys, 'profile')
        assert f"does not name: ['{stray}']" in err and 'Move them out of the folder' in err, err
        (src / stray).unlink()
    assert not (tmp_path / 'p.json').exists()


@pytest.mark.parametrize('shard', ['ABS', '../src/model.safetensors', 'sub/../model.safetensors', '..',
                                   'a\\b.safetensors',
                                   'config.json'])
def test_an_index_names_shards_by_file_name_only(tmp_path, capsys, shard):
    src = _indexed(tmp_path / 'src')
    (src / 'sub').mkdir()
    shard = str((src / 'model.safetensors').resolve()) if shard == 'ABS' else shard
    idx = json.loads((src / 'model.safetensors.index.json').read_text())
    idx['weight_map'] = {k: shard for k in idx['weight_map']}
    (src / 'model.safetensors.index.json').write_text(json.dumps(idx))
    assert main(['profile', str(src), '-o', str(tmp_path / 'p.json')]) == 1
    err = _one_error_line(capsys, 'profile')
    assert 'names shards that are not *.safetensors files of its own folder' in err and repr(shard) in err, err
    with pytest.raises(ValueError, match='not \\*.safetensors files of its own folder'): models.check_model_folder(src)
    assert not (tmp_path / 'p.json').exists()


@pytest.mark.parametrize('key, overrides', [('model.layers.1.input_layernorm.weight', {}),
                                            ('model.norm.weight', {}),
                                            ('model.layers.0.self_attn.q_proj.bias', {'attention_bias': True})])
def test_a_non_finite_parameter_that_is_not_quantized_is_refused(tmp_path, tiny, capsys, key, overrides):
    _, plan = tiny
    for bad in (float('nan'), float('-inf')):
        src = save_tiny_model(tmp_path / f'src-{bad}', **overrides)
        if overrides:  # a plan for this model (the fixture's is for the model without biases)
            plan = tmp_path / 'plan.json'
            plan_budgets(profile(src, progress=False), ['4.5bpw'])[0].save(plan)
        _set_weight(src, key, bad, at=3)
        assert main(['profile', str(src), '-o', str(tmp_path / 'p.json')]) == 1
        assert f'{key} holds NaN or Inf values' in _one_error_line(capsys, 'profile')
        assert main(['quantize', str(src), str(plan), '-o', str(tmp_path / 'q'), '--force']) == 1
        assert f'{key} holds NaN or Inf values' in _one_error_line(capsys, 'quantize')
        with pytest.raises(ValueError, match=f'{key} holds NaN or Inf'): quantizer.load_condition(src, plan, force=True)
        assert not (tmp_path / 'p.json').exists() and not (tmp_path / 'q').exists()


# --- 5. a folder is never written over its budget ---------------------------------------------------------------------

def _lying_plan(tmp_path, tiny, **meta) -> Path:
    "The 4.5 bpw plan of a profile of the tiny model whose `meta` lies (e.g. fixed_bytes=0)."
    src, _ = tiny
    prof = profile(src, progress=False)
    plan = plan_budgets(core.Profile(prof.table, {**prof.meta, **meta}), ['4.5bpw'])[0]
    return plan.save(tmp_path / 'lie.json')


@pytest.mark.parametrize('meta, field', [({'fixed_bytes': 0}, 'fixed_bytes'), ({'n_params': 2 * 106_816}, 'n_params')])
def test_a_profile_that_lies_about_the_model_is_refused_before_any_work(tmp_path, tiny, capsys, meta, field):
    src, _ = tiny
    lie = _lying_plan(tmp_path, tiny, **meta)
    assert main(['quantize', str(src), str(lie), '-o', str(tmp_path / 'q')]) == 1
    err = _one_error_line(capsys, 'quantize')
    assert f'{field}: the plan says {meta[field]:,}, the model has ' in err, err
    with pytest.raises(ValueError, match=f'{field}: the plan says'): quantizer.load_condition(src, lie)
    assert not (tmp_path / 'q').exists()


def test_a_plan_that_lies_about_its_budget_or_tensors_is_refused(tmp_path, tiny, capsys):
    src, plan = tiny
    good = json.loads(plan.read_text())
    first = sorted(good['tensors'])[0]
    lies = {'budget_bytes': {'budget_bytes': 2 * good['budget_bytes']},
            'invalid plan: budget_bytes is "60084"; must be an integer': {'budget_bytes': str(good['budget_bytes'])},
            'invalid plan: budget is "lots", which a plan with budget_bytes must name': {'budget': 'lots'},
            'the plan says 1 bytes': {'tensors': {**good['tensors'], first: {**good['tensors'][first], 'bytes': 1}}}}
    for want, change in lies.items():
        d = {**good, **change}
        d.pop('total_bytes'), d.pop('bpw')  # a liar keeps its totals consistent
        bad = tmp_path / 'bad.json'
        bad.write_text(json.dumps(d))
        assert main(['quantize', str(src), str(bad), '-o', str(tmp_path / 'q')]) == 1
        assert want in _one_error_line(capsys, 'quantize')
    assert not (tmp_path / 'q').exists()


def test_bytes_over_the_budget_are_an_error_before_the_rename(tmp_path, tiny, capsys, monkeypatch):
    src, plan = tiny
    out = tmp_path / 'q'
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 0
    before = _files(out)
    lie = _lying_plan(tmp_path, tiny, fixed_bytes=0)
    monkeypatch.setattr(quantizer, 'check_plan', lambda *a, **k: None)  # a lie that gets past the checks before work
    for target, flag in ((tmp_path / 'new', []), (out, ['--overwrite'])):
        assert main(['quantize', str(src), str(lie), '-o', str(target), *flag]) == 1
        err = _one_error_line(capsys, 'quantize')
        assert 'the weights came to 60,672 bytes, over the budget of 60,084 bytes by 588' in err, err
        assert f'nothing was written to {target}' in err
    assert _files(out) == before  # the old folder, as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lie.json', 'q']  # no new folder, no temporary sibling


# --- 8. every CLI argument is checked before any work -----------------------------------------------------------------

@pytest.mark.parametrize('argv, arg, want', [
    (['profile', 'M', '--veto-db', 'nan'], '--veto-db', "'nan' is not finite; must be a finite number"),
    (['profile', 'M', '--veto-db=-inf'], '--veto-db', "'-inf' is not finite; must be a finite number"),
    (['profile', 'M', '--seed', '-1'], '--seed', "'-1' is out of range; must be an integer >= 0"),
    (['profile', 'M', '--calib-n', '-3'], '--calib-n', "'-3' is out of range; must be an integer >= 1"),
    (['profile', 'M', '--calib-length', '1'], '--calib-length', "'1' is out of range; must be an integer >= 2"),
    (['ppl', 'M', '--batch-size', '0'], '--batch-size', "'0' is out of range; must be an integer >= 1"),
    (['ppl', 'M', '--seed', '-1'], '--seed', "'-1' is out of range; must be an integer >= 0"),
    (['ppl', 'M', '--n', '0'], '--n', "'0' is out of range; must be an integer >= 1"),
    (['ppl', 'M', '--length', '1'], '--length', "'1' is out of range; must be an integer >= 2"),
    (['eval', 'M', '--limit', '0'], '--limit', "'0' is out of range; must be an integer >= 1"),
    (['reproduce', '--n', '-2', '--dry-run'], '--n', "'-2' is out of range; must be an integer >= 1"),
    (['reproduce', '--length', '0', '--dry-run'], '--length', "'0' is out of range; must be an integer >= 2"),
    (['reproduce', '--limit', '-1', '--dry-run'], '--limit', "'-1' is out of range; must be an integer >= 0"),
    (['allocate', 'P', '--budget', '1e400GB'], '--budget', "budget '1e400GB' is over the largest accepted"),
    (['allocate', 'P', '--budget', '-1GB'], '--budget', "'-1GB': budgets must be positive; accepted: '16GB'"),
    (['allocate', 'P', '--budget', '4.5bpw', '-2GB'], '--budget', "'-2GB': budgets must be positive"),
    (['allocate', 'P', '--budget', '0'], '--budget', "budget must be positive, got '0'"),
])
def test_every_cli_argument_is_checked_before_any_work(tmp_path, tiny, monkeypatch, capsys, argv, arg, want):
    src, _ = tiny
    def fail(*a, **k): raise AssertionError('work began before the arguments were checked')
    import ram.cli
    for name in ('load_condition', 'profile_to', 'cached_profile', 'reproduce', 'plan_budgets'):
        monkeypatch.setattr(ram.cli, name, fail)
    monkeypatch.setattr(models, 'load', fail)
    monkeypatch.setattr(core.Profile, 'load', fail)
    monkeypatch.chdir(tmp_path)
    argv = [str(src) if a == 'M' else 'p.json' if a == 'P' else a for a in argv]
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2
    (err,) = capsys.readouterr().err.strip().splitlines()  # one line: no usage block
    assert err.startswith(f'ram {argv[0]}: error: argument {arg}: ') and want in err, err
    assert err.endswith(f"(run 'ram {argv[0]} -h' for usage)"), err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_valid_arguments_parse_as_before():
    from ram.cli import _parser
    a = _parser().parse_args(['profile', 'm', '--veto-db', '-5', '--seed', '0', '--calib-n', '1',
                              '--calib-length', '2'])
    assert (a.veto_db, a.seed, a.calib_n, a.calib_length) == (-5.0, 0, 1, 2)
    a = _parser().parse_args(['ppl', 'm', '--n', '3', '--length', '64', '--seed', '7', '--batch-size', '2'])
    assert (a.n, a.length, a.seed, a.batch_size) == (3, 64, 7, 2)
    a = _parser().parse_args(['allocate', 'p.json', '--budget', '16 GB', '4.5bpw', '123456', '-o', 'x'])
    assert (a.budget, a.out) == (['16 GB', '4.5bpw', '123456'], 'x')
    assert _parser().parse_args(['reproduce', '--limit', '0']).limit == 0  # 0: all documents, as documented


@pytest.mark.parametrize('bad', ['1e400GB', '1e400', '1e16', 10**16, '2000TB'])
def test_parse_budget_refuses_non_finite_or_absurd_budgets(bad):
    with pytest.raises(ValueError, match='over the largest accepted'): core.parse_budget(bad)


def test_a_budget_above_the_largest_size_is_noted_beside_its_plan(tmp_path, tiny, capsys):
    src, _ = tiny
    prof = tmp_path / 'p.json'
    assert main(['profile', str(src), '-o', str(prof)]) == 0
    capsys.readouterr()
    assert main(['allocate', str(prof), '--budget', '4.5bpw', '1GB', '-o', str(tmp_path / 'plans')]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith('note:')]
    assert len(notes) == 1 and 'budget 1GB (1,000,000,000 bytes) exceeds the largest achievable size' in notes[0], out
    assert (tmp_path / 'plans' / 'plan-1GB.json').exists() and (tmp_path / 'plans' / 'plan-4.5bpw.json').exists()


# --- 3. two runs, one output: the second writer is refused ----------------------------------------------------------

HOLD = ('import sys; from ram.core import output_lock\n'
        'with output_lock(sys.argv[1]): print("held", flush=True); sys.stdin.read()')


def _holding(path):
    "A second ram process that holds the lock on writing `path` until its stdin closes."
    p = subprocess.Popen([sys.executable, '-c', HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == 'held'
    return p


def test_a_second_writer_of_the_same_output_is_refused(tmp_path, tiny, capsys):
    src, plan = tiny
    out = tmp_path / 'q'
    p = _holding(out)
    try:
        with pytest.MonkeyPatch.context() as m:  # refused before the model is loaded
            m.setattr(quantizer, 'load_condition', lambda *a, **k: pytest.fail('the model was loaded'))
            assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 1
        err = _one_error_line(capsys, 'quantize')
        assert f'q is being written by another ram process (pid {p.pid}); wait for it or choose another output' in err
        assert not out.exists()
    finally:
        p.stdin.close(); p.wait()
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 0  # free again once the other one is done
    assert sorted(x.name for x in tmp_path.iterdir()) == ['q']


def test_a_second_writer_of_a_profile_is_refused(tmp_path, tiny, capsys):
    src, _ = tiny
    out = tmp_path / 'p.json'
    p = _holding(out)
    try:
        assert main(['profile', str(src), '-o', str(out)]) == 1
        assert f'p.json is being written by another ram process (pid {p.pid})' in _one_error_line(capsys, 'profile')
        assert not out.exists()
    finally:
        p.stdin.close(); p.wait()


def test_a_folder_that_appears_during_the_write_is_not_replaced(tmp_path, tiny):
    src, _ = tiny
    out = tmp_path / 'q'
    with pytest.raises(FileExistsError, match='exists; pass overwrite=True'):
        with core.atomic_folder(out) as tmp:
            (tmp / 'new').write_text('new')
            save_tiny_model(out)  # another writer (not ram's lock) finished first
    assert 'new' not in os.listdir(out) and sorted(x.name for x in tmp_path.iterdir()) == ['q']


# --- 7. leftovers of killed runs are cleared, an old copy that was never replaced is put back -----------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, '-c', '']); p.wait()
    return p.pid


def test_an_interrupted_overwrite_is_undone_on_the_next_run(tmp_path, tiny, capsys, monkeypatch):
    src, plan = tiny
    out = tmp_path / 'q'
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 0
    first = _files(out)
    pid = _dead_pid()
    os.rename(out, tmp_path / f'.q.old-{pid}')  # killed between the two renames of --overwrite
    (tmp_path / f'.q.tmp-{pid}').mkdir()
    capsys.readouterr()
    monkeypatch.setattr(quantizer, 'load_condition', lambda *a, **k: pytest.fail('the model was loaded'))
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 1  # the old copy is back: refused before work
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f'ram: restored {out} from .q.old-{pid}: an --overwrite (pid {pid}) was interrupted before the '
                      'new copy took its name'), err
    assert err[1].startswith('ram quantize: error: ') and 'q exists; pass --overwrite' in err[1], err
    assert _files(out) == first and sorted(x.name for x in tmp_path.iterdir()) == ['q']


def test_a_killed_delete_of_the_old_copy_is_cleared(tmp_path, tiny, capsys):
    src, plan = tiny
    out = tmp_path / 'q'
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 0
    pid = _dead_pid()
    half = tmp_path / f'.q.old-{pid}'  # the new copy landed; the old one was being deleted
    half.mkdir(); (half / 'config.json').write_text('{}')
    assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 0
    assert sorted(x.name for x in tmp_path.iterdir()) == ['q']


def test_a_killed_checkpoint_leaves_nothing_after_the_next_run(tmp_path, tiny):
    from ram.profiler import partial_path, profile_to
    src, _ = tiny
    out = tmp_path / 'p.json'
    pid = _dead_pid()
    part = partial_path(out)
    left = [part.with_name(f'.{part.name}.tmp-{pid}'), tmp_path / f'.p.json.tmp-{pid}']
    for p in left: p.write_text('half')
    profile_to(out, src, progress=False)
    assert sorted(x.name for x in tmp_path.iterdir()) == ['p.json']


# --- 9. an output file never replaces a user's file, nor lands in the model folder a run reads -----------------------

@pytest.fixture
def no_scoring(monkeypatch):
    "A refusal must come before any work: loading or profiling a model fails the test."
    import ram.cli
    def fail(*a, **k): raise AssertionError('work began before the output was checked')
    for name in ('load_condition', 'profile_to', 'cached_profile'): monkeypatch.setattr(ram.cli, name, fail)
    monkeypatch.setattr(core.Profile, 'load', fail)


def test_an_output_file_never_lands_in_the_source_model_folder(tmp_path, tiny, capsys, no_scoring):
    _, plan = tiny
    victim = save_tiny_model(tmp_path / 'victim')
    before = _files(tmp_path)
    for argv in (['ppl', str(victim), '-o', str(victim / 'config')],
                 ['ppl', str(victim), '--plan', str(plan), '-o', str(plan)[:-len('.json')]],
                 ['eval', str(victim), '-o', str(victim / 'tokenizer.json')],
                 ['eval', str(victim), '-o', str(victim / 'sub' / 'new.json')],
                 ['profile', str(victim), '-o', str(victim / 'p.json')]):
        assert main([*argv, '--overwrite']) == 1, argv
        err = _one_error_line(capsys, argv[0])
        assert ('is inside ' + str(victim.resolve()) + ', the model folder this run reads; write outside it' in err
                or 'a file this run reads; choose another file' in err), err
    assert _files(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ['victim']


def test_an_output_file_replaces_a_file_only_with_overwrite(tmp_path, tiny, capsys, no_scoring, monkeypatch):
    src, _ = tiny
    monkeypatch.chdir(tmp_path)
    for f in ('mine.json', 'mine.csv', 'plans/plan-4.5bpw.json'):
        Path(f).parent.mkdir(exist_ok=True); Path(f).write_text('keep')
    Path('folder').mkdir()
    before = _files(tmp_path)
    cases = [(['ppl', str(src), '-o', 'mine'], '-o mine.json exists; pass --overwrite to replace it, or choose'),
             (['eval', str(src), '-o', 'mine.csv'], '-o mine.csv exists; pass --overwrite'),
             (['allocate', 'p.json', '--budget', '4.5bpw', '-o', 'plans'], '-o plans/plan-4.5bpw.json exists; pass'),
             (['allocate', 'p.json', '--budget', '4.5bpw', '-o', 'mine.csv'], '-o mine.csv is a file; give a folder'),
             (['allocate', 'p.json', '--budget', '4.5bpw', '-o', ''], "-o is '', which names no folder"),
             (['profile', str(src), '-o', 'mine.json'], '-o mine.json exists; pass --overwrite'),
             (['eval', str(src), '-o', 'folder', '--overwrite'], '-o folder is a folder; give a file path')]
    cases += [([cmd, str(src), '-o', bad, '--overwrite'], f'-o is {bad!r}, which names no file; give a file path')
              for cmd in ('ppl', 'eval', 'profile') for bad in ('.', '', 'new/', '..')]
    for argv, want in cases:
        assert main(argv) == 1, argv
        assert want in _one_error_line(capsys, argv[0]), argv
    assert _files(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        'folder', 'mine.csv', 'mine.json', 'plans']


def test_an_output_file_that_appears_during_the_run_is_kept(tmp_path, tiny, capsys, monkeypatch):
    src, _ = tiny
    import ram.cli
    out = tmp_path / 'r.json'
    def user_writes(*a, **k):
        out.write_text('keep')  # a file appears at the output while the model is scored
        return {'table': [], 'provenance': {}, 'seconds': 0.0, 'requests_scored': 0}
    monkeypatch.setattr(ram.cli, 'downstream', user_writes)
    assert main(['eval', str(src), '-o', str(out)]) == 1
    assert 'r.json appeared while this run worked; pass --overwrite to replace it' in _one_error_line(capsys, 'eval')
    assert out.read_text() == 'keep' and sorted(p.name for p in tmp_path.iterdir()) == ['r.json']
    assert main(['eval', str(src), '-o', str(out), '--overwrite']) == 0
    assert json.loads(out.read_text())['table'] == []


def test_two_runs_writing_the_same_result_file_are_refused(tmp_path, tiny, capsys, monkeypatch):
    src, _ = tiny
    import ram.cli
    def fail(*a, **k): raise AssertionError('the model was loaded by a run that should be refused')
    for held, argv in [('r.json', ['ppl', str(src), '-o', str(tmp_path / 'r')]),
                       ('r.csv', ['ppl', str(src), '-o', str(tmp_path / 'r')]),
                       ('e.json', ['eval', str(src), '-o', str(tmp_path / 'e.json')]),
                       ('plans/plan-4bpw.json', ['allocate', 'p.json', '--budget', '4.5bpw', '4bpw', '-o',
                                                 str(tmp_path / 'plans')])]:
        p = _holding(tmp_path / held)
        try:
            with pytest.MonkeyPatch.context() as m:
                m.setattr(ram.cli, 'load_condition', fail)
                m.setattr(core.Profile, 'load', fail)
                assert main(argv) == 1, argv
            err = _one_error_line(capsys, argv[0])
            assert f'{held} is being written by another ram process (pid {p.pid}); wait for it' in err, err
        finally:
            p.stdin.close(); p.wait()
    assert list(tmp_path.iterdir()) == []  # the refused runs left nothing, not even the plans folder
    assert main(['ppl', str(src), '-o', str(tmp_path / 'new' / 'r'), '--n', '2', '--length', '32']) == 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*')) == ['new', 'new/r.csv', 'new/r.json']


def test_a_failed_run_leaves_no_folder_for_its_output(tmp_path, tiny, capsys, monkeypatch):
    src, _ = tiny
    import ram.cli
    def broken(*a, **k): raise ValueError('broken model')
    monkeypatch.setattr(ram.cli, 'load_condition', broken)
    assert main(['ppl', str(src), '-o', str(tmp_path / 'a' / 'b' / 'r')]) == 1
    assert 'broken model' in _one_error_line(capsys, 'ppl') and list(tmp_path.iterdir()) == []


def test_a_full_disk_while_taking_the_lock_names_the_output(tmp_path, tiny, capsys, monkeypatch):
    src, plan = tiny
    real = os.write
    def full(fd, data):  # the PID written into the lock file is the first write of every run
        if data == f'{os.getpid()}\n'.encode(): raise OSError(28, 'No space left on device')
        return real(fd, data)
    monkeypatch.setattr(os, 'write', full)
    for argv, out in [(['quantize', str(src), str(plan), '-o', str(tmp_path / 'o' / 'q')], tmp_path / 'o' / 'q'),
                      (['profile', str(src), '-o', str(tmp_path / 'o' / 'p.json')], tmp_path / 'o' / 'p.json'),
                      (['allocate', 'p.json', '--budget', '4bpw', '-o', str(tmp_path / 'o')],
                       tmp_path / 'o' / 'plan-4bpw.json'),
                      (['ppl', str(src), '-o', str(tmp_path / 'o' / 'r')], tmp_path / 'o' / 'r.json')]:
        assert main(argv) == 1, argv
        err = _one_error_line(capsys, argv[0])
        assert f'[Errno 28] cannot write the lock file {out.parent / ("." + out.name + ".lock")} of {out}: No space ' \
               'left on device' in err, err
        assert list(tmp_path.iterdir()) == []  # nor the folder made for it


def test_overwrite_never_replaces_a_model_folder_that_holds_a_users_file(tmp_path, tiny, capsys):
    src, plan = tiny
    out = tmp_path / 'q'
    assert main(['quantize', str(src), str(plan), '-o', str(out)]) == 0
    for extra in ('README.md', 'chat_template.jinja'):  # what mlx-lm and transformers also write: still replaced
        (out / extra).write_text('x')
    assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 0
    (out / 'mine.txt').write_text('my notes')
    (out / 'modeling_x.py').write_text('# mine')
    before = _files(tmp_path)
    assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 1
    err = _one_error_line(capsys, 'quantize')
    assert f"{out} holds 'mine.txt', which is no part of a model folder; --overwrite replaces only" in err, err
    (out / 'mine.txt').unlink()
    assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 1  # code the config names not
    assert "holds 'modeling_x.py'" in _one_error_line(capsys, 'quantize')
    (out / 'modeling_x.py').unlink(); (out / 'sub').mkdir()
    assert main(['quantize', str(src), str(plan), '-o', str(out), '--overwrite']) == 1
    assert "holds 'sub'" in _one_error_line(capsys, 'quantize')
    before.pop('q/mine.txt'); before.pop('q/modeling_x.py')
    assert _files(tmp_path) == before
    cfg = json.loads((out / 'config.json').read_text())  # a folder whose config names its code: the code is its own
    (out / 'config.json').write_text(json.dumps({**cfg, 'auto_map': {'AutoModel': 'modeling_x.Model'}}))
    (out / 'sub').rmdir(); (out / 'modeling_x.py').write_text('# its own')
    assert core.check_output_folder(out, overwrite=True) == out.resolve()


def test_a_killed_checkpoints_leftovers_go_when_a_profile_is_reused_or_refused(tmp_path, tiny, capsys, monkeypatch):
    src, _ = tiny
    assert main(['profile', str(src)]) == 0
    cached = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix('written: '))
    assert cached.is_file(), cached
    mine = tmp_path / 'p.json'
    mine.write_text('mine')
    for path in (cached, mine):
        pid = _dead_pid()
        for p in (path.with_name(f'..{path.name}.partial.tmp-{pid}'), path.with_name(f'.{path.name}.tmp-{pid}')):
            p.write_text('half')
    before = cached.read_bytes()
    assert main(['profile', str(src)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f'reused: {cached}' and 'written' not in out, out
    assert main(['profile', str(src), '-o', str(mine)]) == 1
    assert 'p.json exists; pass' in _one_error_line(capsys, 'profile')
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name] and cached.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cache', 'p.json'] and mine.read_text() == 'mine'


@pytest.mark.parametrize('argv, want', [
    (['quantize', 'm', 'p.json'], 'ram quantize: error: the following arguments are required: -o/--out'),
    (['nope'], "ram: error: argument COMMAND: invalid choice: 'nope'"),
    (['ppl', 'm', '--bogus'], 'ram: error: unrecognized arguments: --bogus'),
    (['profile', 'm', '--mode', 'x'], "ram profile: error: argument --mode: invalid choice: 'x' (choose from"),
])
def test_an_argument_error_is_one_line_with_its_hint(argv, want, capsys):
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    prog = want.split(': error')[0]
    assert len(lines) == 1 and lines[0].startswith(want) and lines[0].endswith(f"(run '{prog} -h' for usage)"), lines


def test_cli_errors_name_the_flag_not_the_keyword():
    from ram.cli import _for_cli
    assert _for_cli('q exists; pass overwrite=True (CLI: --overwrite) or choose\n another') == (
        'q exists; pass --overwrite or choose another')
    assert _for_cli('pass trust_remote_code=True (CLI: --trust-remote-code) only') == 'pass --trust-remote-code only'
    assert _for_cli('pass force=True (CLI: --force)') == 'pass --force'


def test_ppl_names_a_non_finite_norm_before_scoring(tmp_path, monkeypatch, capsys):
    import ram.cli
    src = save_tiny_model(tmp_path / 'nan')
    w = mx.load(str(src / 'model.safetensors'))
    w['model.norm.weight'][3] = float('nan')
    mx.save_safetensors(str(src / 'model.safetensors'), w)
    def fail(*a, **k): raise AssertionError('scored a model with a NaN norm')
    monkeypatch.setattr(ram.cli, 'perplexity', fail)
    monkeypatch.chdir(tmp_path)
    assert main(['ppl', str(src), '--n', '2', '--length', '64', '-o', 'r']) == 1
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert 'model.norm.weight holds NaN or Inf' in err, err
    assert not any(tmp_path.glob('r*'))


def test_quantize_never_writes_inside_the_source_model(tmp_path, capsys):
    src = save_tiny_model(tmp_path / 'victim')
    plan = plan_budgets(profile(src, modes=('weight',), progress=False), ['4.5bpw'])[0]
    plan.save(tmp_path / 'plan.json')
    before = sorted(p.name for p in src.iterdir())
    assert main(['quantize', str(src), str(tmp_path / 'plan.json'), '-o', str(src / 'sub')]) == 1
    assert 'is inside' in capsys.readouterr().err
    assert sorted(p.name for p in src.iterdir()) == before
