"Bad input: each case fails before any work with an error that says what was wrong and what is valid."
import json
import shutil
from collections import namedtuple

import mlx.core as mx
import pytest

from ram.allocator import plan_budgets
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
