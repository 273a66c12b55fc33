"""MoE: stacked experts (SwitchLinear) are profiled and allocated as tensors of their own, routers take their prior,
and the saved result loads in stock mlx-lm."""
import json

import mlx.core as mx
import mlx_lm
import pytest
from mlx.utils import tree_flatten

from ram.allocator import plan_budgets
from ram.core import tensor_bytes
from ram.models import quantizable_tensors
from ram.profiler import PRIORS, profile
from ram.quantizer import quantize, quantize_to_folder
from ram.tiny import save_random_model, save_tiny_model, tiny_config, tiny_model

# router module (None: mlx-lm's router is not a quantizable layer, so it is fixed cost at 16 bits) and expert prefix
ARCHS = {
    'qwen3_moe': ('mlp.gate', 'mlp.switch_mlp'),
    'mixtral': ('block_sparse_moe.gate', 'block_sparse_moe.switch_mlp'),
    'glm4_moe': (None, 'mlp.switch_mlp'),
}


@pytest.mark.parametrize('arch', list(ARCHS))
def test_moe_profile_allocate_quantize_load(arch, tmp_path):
    router, experts = ARCHS[arch]
    src = save_tiny_model(tmp_path / 'src', arch)
    m = tiny_model(arch)
    ts = {t.name: t for t in quantizable_tensors(m)}
    last = max(t.layer for t in ts.values() if t.layer is not None)
    stacked = {n: t for n, t in ts.items() if '.switch_mlp.' in n}
    # one tensor per stacked projection per MoE layer, 3-D (experts, out, in), kind 'expert'
    moe_layers = sorted({t.layer for t in stacked.values()})
    assert len(stacked) == 3 * len(moe_layers) and moe_layers
    assert all(len(t.shape) == 3 and t.shape[0] == 4 and t.kind == 'expert' for t in stacked.values())
    prof = profile(src, progress=False)
    tab = prof.table
    assert set(stacked) <= set(tab.tensor)
    row = tab[(tab.tensor == f'model.layers.{last}.{experts}.down_proj') & (tab.config == '4b-g32')].iloc[0]
    assert row.bytes == tensor_bytes(stacked[row.tensor].shape, tab_cfg(row)) and 0 < row.d_weight < 0.02
    if router:
        r = tab[tab.tensor == f'model.layers.{last}.{router}']
        assert set(r.kind) == {'router'} and set(r.prior) == {PRIORS['router']}
    else:  # glm4_moe: MoEGate keeps its fp weights and correction bias; they count as fixed bytes
        assert not any(n.endswith('.gate') for n in ts)
        assert 'model.layers.1.mlp.gate.weight' in dict(tree_flatten(m.parameters()))
    plan = plan_budgets(prof, ['4.5bpw'])[0]
    assert len({plan.tensors[n].config for n in stacked}) >= 1 and set(stacked) <= set(plan.tensors)
    res = quantize_to_folder(src, plan, tmp_path / 'q', progress=False)
    assert res['actual_bytes'] == plan.total_bytes
    # stock mlx-lm opens it, the stacked experts are quantized per the plan, and it equals the in-memory path
    loaded, tok = mlx_lm.load(str(tmp_path / 'q'))
    q = json.loads((tmp_path / 'q' / 'config.json').read_text())['quantization']
    for n in stacked:
        c = plan.tensors[n].config
        assert (q.get(n) == c.mlx_params()) if c.quantized else (n not in q)
    if arch == 'glm4_moe':  # mlx-lm's rule (the model's cast_predicate): the routers' correction bias stays fp32
        kept = {k: v.dtype for k, v in tree_flatten(loaded.parameters()) if 'e_score_correction_bias' in k}
        assert kept and set(kept.values()) == {mx.float32} and prof.meta['kept_params'] > 0
    mem, _ = quantize(mlx_lm.load(str(src))[0], plan.configs(), {})
    x = mx.array([[1, 5, 9, 200, 17]])
    assert mx.array_equal(loaded(x), mem(x))
    assert isinstance(mlx_lm.generate(loaded, tok, prompt='ab', max_tokens=3), str)


def tab_cfg(row):
    from ram.core import QuantConfig
    return QuantConfig(int(row.bits), int(row.group_size), row['mode'])


def test_sharded_moe_streams_the_same_bytes(tmp_path):
    "A multi-shard MoE model (stacked experts split across shards) quantizes to the same tensors as the in-memory path."
    src = save_random_model(tmp_path / 'src', tiny_config('qwen3_moe'), shard_bytes=60_000)
    assert len(list(src.glob('*.safetensors'))) > 3
    prof = profile(src, progress=False)
    plan = plan_budgets(prof, ['5bpw'])[0]
    quantize_to_folder(src, plan, tmp_path / 'q', progress=False)
    shards = sorted((tmp_path / 'q').glob('*.safetensors'))
    assert (
        len(shards) > 1
        and max(f.stat().st_size for f in shards) <= max(f.stat().st_size for f in src.glob('*.safetensors')) + 4096
    )
    saved = {k: v for f in shards for k, v in mx.load(str(f)).items()}
    mem, _ = quantize(mlx_lm.load(str(src))[0], plan.configs(), {})
    ref = dict(tree_flatten(mem.parameters()))
    assert saved.keys() == ref.keys() and all(mx.array_equal(saved[k], ref[k]) for k in ref)
