"Bad input: each case fails before any work with an error that says what was wrong and what is valid."
import json
import shutil
import struct
from collections import namedtuple

import mlx.core as mx
import pytest

from ram.allocator import plan_budgets
from ram.cli import main
from ram.core import KEEP, Plan, Profile, parse_budget
from ram.models import load
from ram.profiler import profile, profile_to
from ram.quantizer import quantize_to_folder
from ram.tiny import save_tiny_model


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp('bad')
    src = save_tiny_model(d / 'src')
    prof = profile(src, progress=False)
    prof.save(d / 'profile.json')
    plan = plan_budgets(prof, ['4.5bpw'])[0]
    plan.save(d / 'plan.json')
    return d, src, prof, plan


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


# --- model folders -------------------------------------------------------------------------------

def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='no model folder at .*a model is a local folder, a hub id'):
        profile(tmp_path / 'nope', progress=False)


def test_folder_without_config_or_weights(tmp_path, tiny):
    f = _copy(tiny[1], tmp_path / 'm')
    (f / 'config.json').unlink()
    with pytest.raises(FileNotFoundError, match='no config.json'): load(f)
    f2 = _copy(tiny[1], tmp_path / 'm2')
    (f2 / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match=r'no \*.safetensors'): load(f2)


def test_unreadable_config(tmp_path, tiny):
    f = _copy(tiny[1], tmp_path / 'm')
    (f / 'config.json').write_text('{"model_type": ')
    with pytest.raises(ValueError, match='config.json is unreadable or not valid JSON.*"model_type"'):
        profile(f, progress=False)
    (f / 'config.json').write_text('{"hidden_size": 64}')
    with pytest.raises(ValueError, match='model_type is missing; it must name an mlx-lm architecture'):
        profile(f, progress=False)


def test_truncated_safetensors(tmp_path, tiny):
    f = _copy(tiny[1], tmp_path / 'm')
    b = (f / 'model.safetensors').read_bytes()
    (f / 'model.safetensors').write_bytes(b[:len(b) // 2])
    for run in (lambda: profile(f, progress=False), lambda: quantize_to_folder(f, tiny[3], tmp_path / 'q', force=True)):
        with pytest.raises(
            ValueError, match=r'model.safetensors is truncated: its header describes [\d,]+ bytes, the file has [\d,]+'
        ):
            run()
    assert not (tmp_path / 'q').exists()


def test_corrupted_safetensors_header(tmp_path, tiny):
    f = _copy(tiny[1], tmp_path / 'm')
    b = bytearray((f / 'model.safetensors').read_bytes())
    b[10:20] = b'\xff' * 10
    (f / 'model.safetensors').write_bytes(bytes(b))
    with pytest.raises(ValueError, match='model.safetensors is not a valid safetensors file'):
        profile(f, progress=False)
    (f / 'model.safetensors').write_bytes(b'\x05')
    with pytest.raises(ValueError, match='shorter than the 8-byte header'): profile(f, progress=False)


# --- plans and profiles ---------------------------------------------------------------------------

def _plan_with(plan, tensors):
    return Plan(
        method=plan.method, model=plan.model, tensors=tensors, fixed_bytes=plan.fixed_bytes, n_params=plan.n_params
    )


def test_plan_missing_and_extra_tensors(tmp_path, tiny):
    d, src, prof, plan = tiny
    t = dict(plan.tensors)
    gone = t.pop('model.layers.1.mlp.up_proj')
    with pytest.raises(
        ValueError, match=(r"1 model tensors are not in the plan \(e.g. " r"\['model.layers.1.mlp.up_proj'\]\)")
    ):
        quantize_to_folder(src, _plan_with(plan, t), tmp_path / 'q', force=True)
    t['model.layers.1.mlp.up_proj'] = gone
    t['model.layers.7.mlp.up_proj'] = gone
    with pytest.raises(
        ValueError, match=(r"1 plan tensors are not in the model \(e.g. " r"\['model.layers.7.mlp.up_proj'\]\)")
    ):
        quantize_to_folder(src, _plan_with(plan, t), tmp_path / 'q', force=True)
    assert not (tmp_path / 'q').exists()


def test_plan_wrong_shapes(tmp_path, tiny):
    d, src, prof, plan = tiny
    other = save_tiny_model(tmp_path / 'wide', intermediate_size=256)  # same names, other shapes
    with pytest.raises(
        ValueError, match=r'model.layers.0.mlp.down_proj: the plan says \d+ bytes for .* but shape \(64, 256\) gives'
    ):
        quantize_to_folder(other, plan, tmp_path / 'q', force=True)


def test_truncated_or_invalid_plan(tmp_path, tiny):
    d = tiny[0]
    text = (d / 'plan.json').read_text()
    (tmp_path / 'cut.json').write_text(text[:len(text) // 2])
    with pytest.raises(ValueError, match='not a valid RAM plan \\(truncated or corrupted JSON'):
        Plan.load(tmp_path / 'cut.json')
    obj = json.loads(text)
    (tmp_path / 'prof.json').write_text(json.dumps({**obj, 'schema': 'ram.profile/1'}))
    with pytest.raises(ValueError, match="schema 'ram.profile/1', expected 'ram.plan/1'"):
        Plan.load(tmp_path / 'prof.json')
    del obj['tensors']
    (tmp_path / 'notensors.json').write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=r'notensors.json: invalid plan: the plan lacks the fields \["tensors"\]'):
        Plan.load(tmp_path / 'notensors.json')
    obj = json.loads(text)
    obj['total_bytes'] += 1
    (tmp_path / 'total.json').write_text(json.dumps(obj))
    with pytest.raises(ValueError, match='total_bytes .* does not match its tensors'):
        Plan.load(tmp_path / 'total.json')
    obj = json.loads(text)
    next(iter(obj['tensors'].values()))['bits'] = 7
    (tmp_path / 'bits.json').write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=r'\.bits is 7; must be an integer, one of 2, 3, 4, 5, 6, 8, 16'):
        Plan.load(tmp_path / 'bits.json')


def test_truncated_or_invalid_profile(tmp_path, tiny):
    d = tiny[0]
    text = (d / 'profile.json').read_text()
    (tmp_path / 'cut.json').write_text(text[: len(text) // 3])
    with pytest.raises(ValueError, match='not a valid RAM profile \\(truncated or corrupted JSON'):
        Profile.load(tmp_path / 'cut.json')
    obj = json.loads(text)
    del obj['columns']['d_weight']
    obj['column_order'].remove('d_weight')
    (tmp_path / 'cols.json').write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=r"profile table lacks columns \['d_weight'\]"):
        Profile.load(tmp_path / 'cols.json')
    (tmp_path / 'plan.json').write_text(json.dumps({'schema': 'ram.plan/1'}))
    with pytest.raises(ValueError, match="schema 'ram.plan/1', expected 'ram.profile/1'"):
        Profile.load(tmp_path / 'plan.json')
    with pytest.raises(FileNotFoundError, match='no RAM profile file at'): Profile.load(tmp_path / 'missing.json')


# --- budgets --------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', ['16 parsecs', 'lots', '-3GB', '0', '1.5', '40bpw', ''])
def test_unparseable_budget(bad):
    with pytest.raises(ValueError, match="accepted: '16GB', '16.3 GB'"): parse_budget(bad)


def test_infeasible_budget(tiny):
    prof = tiny[2]
    with pytest.raises(ValueError, match=r'below the smallest achievable size [\d,]+ bytes'):
        plan_budgets(prof, ['1000'])


# --- weights --------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_weight_is_named(tmp_path, tiny, bad):
    d, src, prof, plan = tiny
    f = _copy(src, tmp_path / 'm')
    ws = mx.load(str(f / 'model.safetensors'))
    w = ws['model.layers.1.self_attn.o_proj.weight']
    w[3, 5] = bad
    mx.save_safetensors(str(f / 'model.safetensors'), ws, metadata={'format': 'mlx'})
    with pytest.raises(ValueError, match='model.layers.1.self_attn.o_proj holds NaN or Inf weights'):
        profile(f, progress=False)
    with pytest.raises(ValueError, match='model.layers.1.self_attn.o_proj holds NaN or Inf weights'):
        quantize_to_folder(f, plan, tmp_path / 'q', force=True)
    assert not (tmp_path / 'q').exists() and not list(tmp_path.glob('.q.tmp-*'))


def test_no_group_size_fits_kept_and_listed(tmp_path):
    src = save_tiny_model(tmp_path / 'odd', intermediate_size=100)
    prof = profile(src, progress=False)
    odd = ['model.layers.0.mlp.down_proj', 'model.layers.1.mlp.down_proj']
    assert prof.meta['unquantizable'] == odd
    plan = plan_budgets(prof, ['5bpw'])[0]
    assert all(plan.tensors[n].config == KEEP for n in odd)
    quantize_to_folder(src, plan, tmp_path / 'q', progress=False)
    saved = json.loads((tmp_path / 'q' / 'config.json').read_text())['quantization']
    assert not any(n in saved for n in odd)


# --- disk space -----------------------------------------------------------------------------------

def test_not_enough_disk(tmp_path, tiny, monkeypatch):
    d, src, prof, plan = tiny
    Usage = namedtuple('Usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(
        OSError, match=r'not enough disk space for the quantized model at .*needs [\d,]+ bytes .* has 1,000 bytes'
    ):
        quantize_to_folder(src, plan, tmp_path / 'q')
    with pytest.raises(OSError, match=r'not enough disk space for the profile .*has 1,000 bytes'):
        profile_to(tmp_path / 'p.json', src, progress=False)
    assert not (tmp_path / 'q').exists() and not (tmp_path / 'p.json').exists()


# --- every field of every file, checked before any work (issue 14, item 8) ----------------------

def _one_line(capsys, cmd: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'ram {cmd}: error: ') and '\n' not in err, err
    return err


@pytest.fixture
def nothing_loaded(monkeypatch):
    "A refusal must come before any model is built: mlx-lm's loader fails the test."
    import ram.models
    def fail(*a, **k): raise AssertionError('the model was loaded before the files were checked')
    monkeypatch.setattr(ram.models.mlx_lm, 'load', fail)


def _with_header(f, edit):
    b = f.read_bytes()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    edit(h)
    hb = json.dumps(h).encode()
    f.write_bytes(struct.pack('<Q', len(hb)) + hb + b[8 + n:])


def _first(h): return h['model.embed_tokens.weight']


@pytest.mark.parametrize('what, edit, want', [
    ('config: only model_type', lambda f: (f / 'config.json').write_text('{"model_type": "llama"}'),
     "config.json lacks fields that a 'llama' model needs: hidden_size, num_hidden_layers, intermediate_size"),
    ('config: hidden_size "64"', lambda f: (f / 'config.json').write_text(json.dumps(
        {**json.loads((f / 'config.json').read_text()), 'hidden_size': '64'})),
     'config.json: hidden_size is "64"; valid: an integer'),
    ('header: data_offsets []', lambda f: _with_header(f / 'model.safetensors', lambda h: _first(h).update(
        data_offsets=[])), "tensor 'model.embed_tokens.weight' has data_offsets []; valid: [begin, end]"),
    ('header: unknown dtype', lambda f: _with_header(f / 'model.safetensors', lambda h: _first(h).update(
        dtype='F99')), 'has dtype "F99"; valid: BOOL, U8'),
    ('header: negative shape', lambda f: _with_header(f / 'model.safetensors', lambda h: _first(h).update(
        shape=[-512, 64])), 'has shape [-512, 64]; valid: a list of integers >= 0'),
    ('header: offsets not dtype*shape', lambda f: _with_header(f / 'model.safetensors', lambda h: _first(h).update(
        data_offsets=[0, 8])), 'has data_offsets [0, 8], 8 bytes, but its dtype F32 and shape [512, 64] take 131,072'),
    ('header: length beyond the file', lambda f: (f / 'model.safetensors').write_bytes(
        struct.pack('<Q', 10**9) + (f / 'model.safetensors').read_bytes()[8:]), 'a header of 1,000,000,000 bytes'),
    ('index: no weight_map', lambda f: (f / 'model.safetensors.index.json').write_text('{"metadata": {}}'),
     'model.safetensors.index.json: weight_map is null'),
])
def test_every_field_of_a_model_folder_is_checked_before_loading(tmp_path, tiny, capsys, nothing_loaded, what, edit,
                                                                 want):
    d, src, prof, plan = tiny
    f = _copy(src, tmp_path / 'm')
    edit(f)
    for argv in (['quantize', str(f), str(d / 'plan.json'), '-o', str(tmp_path / 'q'), '--force'],
                 ['profile', str(f), '-o', str(tmp_path / 'p.json')]):
        assert main(argv) == 1, what
        err = _one_line(capsys, argv[0])
        assert want in err and str(f) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m']


@pytest.mark.parametrize('what, edit, want', [
    ('bits 4.7', lambda d: next(iter(d['tensors'].values())).update(bits=4.7),
     '.bits is 4.7; must be an integer, one of 2, 3, 4, 5, 6, 8, 16'),
    ('n_params 0', lambda d: d.update(n_params=0), 'n_params is 0; must be an integer from 1 to'),
    ('bytes -1', lambda d: next(iter(d['tensors'].values())).update(bytes=-1), '.bytes is -1; must be an integer'),
    ('group_size 48', lambda d: next(iter(d['tensors'].values())).update(group_size=48),
     '.group_size is 48; must be an integer, one of 0, 16, 32, 64, 128'),
    ('a tensor name "../x"', lambda d: d['tensors'].update({'../x': d['tensors'].popitem()[1]}),
     'a tensor name in tensors is "../x"; must be a module path'),
    ('method null', lambda d: d.update(method=None), 'method is null; must be a non-empty string'),
    ('lambda NaN', lambda d: d.update({'lambda': float('nan')}), 'lambda is NaN; must be a finite number'),
])
def test_every_field_of_a_plan_is_checked_before_loading(tmp_path, tiny, capsys, monkeypatch, what, edit, want):
    import ram.quantizer
    def fail(*a, **k): raise AssertionError('the model was loaded before the plan was checked')
    monkeypatch.setattr(ram.quantizer, 'load', fail)
    d = json.loads((tiny[0] / 'plan.json').read_text())
    edit(d)
    (tmp_path / 'plan.json').write_text(json.dumps(d))
    for argv in (['quantize', str(tiny[1]), str(tmp_path / 'plan.json'), '-o', str(tmp_path / 'q')],
                 ['ppl', str(tiny[1]), '--plan', str(tmp_path / 'plan.json'), '-o', str(tmp_path / 'r')]):
        assert main(argv) == 1, what
        err = _one_line(capsys, argv[0])
        assert f'{tmp_path / "plan.json"}: invalid plan: ' in err and want in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['plan.json']


@pytest.mark.parametrize('what, edit, want', [
    ('d_weight NaN', lambda d: d['columns']['d_weight'].__setitem__(3, float('nan')),
     'columns.d_weight[3] is NaN; must be a finite number >= 0'),
    ('d_weight -1', lambda d: d['columns']['d_weight'].__setitem__(3, -1), 'columns.d_weight[3] is -1'),
    ('bits "four"', lambda d: d['columns']['bits'].__setitem__(3, 'four'), 'columns.bits[3] is "four"'),
    ('columns []', lambda d: d.update(columns=[]), 'columns is []; must be a JSON object'),
    ('a column cut short', lambda d: d['columns']['sqnr'].pop(), 'columns.sqnr has 206 values'),
    ('meta.n_params 0', lambda d: d['meta'].update(n_params=0), 'meta.n_params is 0'),
    ('meta.fixed_bytes off', lambda d: d['meta'].update(fixed_bytes=d['meta']['fixed_bytes'] + 2),
     "meta.fixed_bytes is 642; must be 640: its 320 parameters outside the tensors (meta.n_params 106,816 less"),
    ('meta.n_params off', lambda d: d['meta'].update(n_params=d['meta']['n_params'] + 1), 'meta.fixed_bytes is 640; '
     'must be 642'),
    ('meta.n_params below the tensors', lambda d: d['meta'].update(n_params=5),
     'meta.n_params is 5; its tensors alone hold 106,496 parameters'),
    ('bytes not those of its shape', lambda d: d['columns']['bytes'].__setitem__(3, 1), 'columns.bytes[3] is 1; '),
])
def test_every_field_of_a_profile_is_checked(tmp_path, tiny, capsys, what, edit, want):
    d = json.loads((tiny[0] / 'profile.json').read_text())
    edit(d)
    (tmp_path / 'profile.json').write_text(json.dumps(d))
    assert main(['allocate', str(tmp_path / 'profile.json'), '--budget', '4.5bpw', '-o', str(tmp_path / 'plans')]) == 1
    err = _one_line(capsys, 'allocate')
    assert f'{tmp_path / "profile.json"}: invalid profile: ' in err and want in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['profile.json']


def test_ppl_and_eval_onto_a_full_disk_fail_before_any_work_naming_the_path(tmp_path, tiny, capsys, monkeypatch):
    import ram.cli
    def fail(*a, **k): raise AssertionError('the model was loaded before the disk was checked')
    monkeypatch.setattr(ram.cli, 'load_condition', fail)
    Usage = namedtuple('Usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: Usage(10**9, 10**9 - 1000, 1000))
    for argv, what in ((['ppl', str(tiny[1]), '-o', str(tmp_path / 'r' / 'x')], 'the perplexity results'),
                       (['eval', str(tiny[1]), '-o', str(tmp_path / 'e.json')], 'the evaluation results')):
        assert main(argv) == 1
        err = _one_line(capsys, argv[0])
        assert f'not enough disk space for {what} at {argv[-1]}: it needs' in err and 'has 1,000 bytes' in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_names_its_path(tmp_path, monkeypatch):
    from pathlib import Path

    from ram.core import write_atomic
    def full(self, *a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(Path, 'write_text', full)
    with pytest.raises(OSError, match=rf'\[Errno 28\] cannot write {tmp_path / "r.json"}: No space left on device'):
        write_atomic(tmp_path / 'r.json', '{}')
    assert list(tmp_path.iterdir()) == []


def test_profile_replaces_an_existing_file_only_with_overwrite(tmp_path, tiny, capsys):
    out = tmp_path / 'p.json'
    out.write_text('my notes')
    assert main(['profile', str(tiny[1]), '-o', str(out)]) == 1
    assert 'p.json exists; pass --overwrite to replace it, or choose another file' in _one_line(capsys, 'profile')
    assert out.read_text() == 'my notes'
    (tmp_path / 'dir.json').mkdir()
    assert main(['profile', str(tiny[1]), '-o', str(tmp_path / 'dir.json'), '--overwrite']) == 1
    assert 'dir.json is a folder; give a file path' in _one_line(capsys, 'profile')
    assert main(['profile', str(tiny[1]), '-o', str(out), '--overwrite']) == 0
    Profile.load(out)


def test_the_profile_cache_names_a_folder_by_one_safe_component(tmp_path):
    from ram.profiler import profile_path
    src = save_tiny_model(tmp_path / '..odd\tname')  # a hidden name holding a control character
    p = profile_path(src, tmp_path / 'cache')
    assert p.parent == tmp_path / 'cache' and p.name.startswith('odd-name-'), p.name
