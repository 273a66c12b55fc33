"A plan of per-tensor configs goes through mlx-lm's predicate, saves atomically, and stock mlx_lm.load reads it back."
import json

import mlx.core as mx
import mlx_lm
import numpy as np
import pytest

from ram.core import KEEP, QuantConfig, candidates, feasible
from ram.models import quantizable_tensors
from ram.quantizer import predicted_bytes, quantize, safetensors_payload, save_model_folder, uniform_configs
from ram.tiny import save_tiny_model, tiny_model


def _mixed(model, seed=0):
    "A random feasible config per tensor."
    rng = np.random.default_rng(seed)
    out = {}
    for t in quantizable_tensors(model):
        cs = [c for c in candidates(extended=True) if feasible(c, t.shape)]
        out[t.name] = cs[int(rng.integers(len(cs)))]
    return out


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_mixed_plan_saves_and_loads(tmp_path, seed):
    src = save_tiny_model(tmp_path / 'src', seed=seed)
    model, tok, cfg = mlx_lm.load(str(src), return_config=True)
    configs = _mixed(model, seed)
    pred = predicted_bytes(model, configs)
    model, qcfg = quantize(model, configs, cfg)
    x = mx.array([[1, 5, 9, 200, 17]])
    ref = model(x)
    out = save_model_folder(tmp_path / 'q', model, tok, qcfg, src=src)
    assert safetensors_payload(out) == pred
    assert not any(p.name.startswith('.q.tmp') for p in tmp_path.iterdir())
    loaded, _ = mlx_lm.load(str(out))
    assert mx.array_equal(loaded(x), ref)
    saved = json.loads((out / 'config.json').read_text())['quantization']
    for name, c in configs.items():
        if c.quantized: assert saved[name] == c.mlx_params()
        else: assert name not in saved
    # stock generate runs on it
    assert isinstance(mlx_lm.generate(loaded, tok, prompt='ab', max_tokens=3), str)


def test_existing_output_is_refused_then_replaced(tmp_path):
    src = save_tiny_model(tmp_path / 'src')
    model, tok, cfg = mlx_lm.load(str(src), return_config=True)
    model, qcfg = quantize(model, QuantConfig(4, 32), cfg)
    save_model_folder(tmp_path / 'q', model, tok, qcfg, src=src)
    with pytest.raises(FileExistsError, match='overwrite'):
        save_model_folder(tmp_path / 'q', model, tok, qcfg, src=src)
    save_model_folder(tmp_path / 'q', model, tok, qcfg, src=src, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['q', 'src']


def test_uniform_keeps_infeasible_tensors_at_16_bit():
    m = tiny_model(hidden_size=96, intermediate_size=192, num_attention_heads=4, num_key_value_heads=2)
    cfgs = uniform_configs(m, QuantConfig(4, 64))
    kept = [n for n, c in cfgs.items() if c == KEEP]
    assert kept and all(t.shape[-1] % 64 for t in quantizable_tensors(m) if t.name in kept)


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    f = tmp_path / 'model.safetensors'
    f.write_bytes(b'\x05')
    with pytest.raises(ValueError, match='truncated'): safetensors_payload(f)
