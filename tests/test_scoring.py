"The CPU scoring path: dequantized fp32 weights give the quantized model's per-window NLL."
import numpy as np
import pytest

from ram.evaluate import corpus_ppl
from ram.scoring import Protocol, score_windows, windows
from ram.tiny import tiny_model


@pytest.mark.parametrize('bits,group', [(2, 32), (3, 64), (4, 64), (8, 32)])
def test_fp32_path_matches_quantized_forward(bits, group):
    wins = np.random.default_rng(bits).integers(0, 512, size=(2, 97)).astype(np.int32)
    q = score_windows(
        tiny_model(seed=bits, quantize=dict(bits=bits, group_size=group)), wins, scoring='native', progress=False
    )
    f = score_windows(
        tiny_model(seed=bits, quantize=dict(bits=bits, group_size=group)), wins, scoring='fp32', progress=False
    )
    np.testing.assert_allclose(f.nll.values, q.nll.values, rtol=1e-3)
    assert (f.tokens == 96).all()



@pytest.mark.parametrize('arch,bits,group', [('llama', 4, 64), ('llama', 3, 32), ('qwen3_moe', 4, 64),
                                             ('qwen3_moe', 16, 0)])
def test_native_bf16_quantized_model_matches_fp32(arch, bits, group):
    """A bf16 model quantized as mlx-lm ships it: its native logits (quantized matmuls; on a CPU computed in fp32 and
    rounded to bf16, `cpu_kernels`) match the fp32 path's to bf16 precision, and so do the per-window NLL. MLX's own
    bf16 CPU kernel misses this by several percent (about 6% of the largest logit at these widths)."""
    import mlx.core as mx
    import mlx.nn as nn

    from ram.scoring import cpu_kernels, to_fp32

    def model():  # the reference model's widths; bits 16: the bf16 model as it is (stacked experts: gather_mm)
        m = tiny_model(arch, seed=bits, hidden_size=576, intermediate_size=1536, moe_intermediate_size=768)
        m.set_dtype(mx.bfloat16)
        if bits < 16: nn.quantize(m, group_size=group, bits=bits)
        return m
    wins = np.random.default_rng(bits).integers(0, 512, size=(2, 129)).astype(np.int32)
    x = mx.array(wins[:, :-1])
    with cpu_kernels(): native = np.asarray(model()(x).astype(mx.float32))
    exact = np.asarray(to_fp32(model())(x))
    assert np.abs(native - exact).mean() < 0.04 * np.abs(exact).mean()  # bf16 activations; raw CPU kernels: 0.06-0.1
    n = score_windows(model(), wins, scoring='native', progress=False)
    f = score_windows(model(), wins, scoring='fp32', progress=False)
    np.testing.assert_allclose(n.nll.values, f.nll.values, rtol=2e-3)

def test_windows_are_seeded_and_disjoint():
    toks = np.arange(10_000, dtype=np.int32)
    a, ia = windows(toks, Protocol(20, 256, 42))
    b, ib = windows(toks, Protocol(20, 256, 42))
    c, ic = windows(toks, Protocol(20, 256, 7))
    assert np.array_equal(a, b) and not np.array_equal(ia, ic)
    assert len(set(ia.tolist())) == 20
    assert all(np.array_equal(w, np.arange(i * 256, (i + 1) * 256)) for w, i in zip(a, ia))


def test_batching_does_not_change_scores():
    wins = np.random.default_rng(0).integers(0, 512, size=(4, 33)).astype(np.int32)
    one = score_windows(tiny_model(), wins, batch_size=1, progress=False)
    two = score_windows(tiny_model(), wins, batch_size=4, progress=False)
    np.testing.assert_allclose(one.nll.values, two.nll.values, rtol=1e-5)
    assert corpus_ppl(one) == pytest.approx(float(np.exp(one.nll.sum() / one.tokens.sum())))


def test_fast_attention_and_loss_match_mlx_on_a_model():
    wins = np.random.default_rng(3).integers(0, 512, size=(2, 600)).astype(np.int32)
    slow = score_windows(tiny_model(seed=4), wins, fast=False, progress=False)
    fast = score_windows(tiny_model(seed=4), wins, fast=True, progress=False)
    np.testing.assert_allclose(fast.nll.values, slow.nll.values, rtol=1e-5)


def test_dequantized_weights_are_exactly_scale_q_plus_bias():
    "Scales are cast to fp32 before dequantizing: no extra bf16 rounding of the weights."
    import mlx.core as mx
    import mlx.nn as nn

    from ram.scoring import to_fp32
    m = tiny_model(seed=2)
    m.set_dtype(mx.bfloat16)
    nn.quantize(m, group_size=64, bits=4)
    l = m.model.layers[0].mlp.down_proj
    exact = mx.dequantize(l.weight, l.scales.astype(mx.float32), l.biases.astype(mx.float32), group_size=64, bits=4)
    rounded = mx.dequantize(l.weight, l.scales, l.biases, group_size=64, bits=4).astype(mx.float32)
    mx.eval(exact, rounded)
    assert not mx.array_equal(exact, rounded)  # the trap is real
    to_fp32(m)
    assert mx.array_equal(m.model.layers[0].mlp.down_proj.weight, exact)


@pytest.mark.parametrize('bits,group', [(3, 32), (4, 64)])
def test_fp32_path_matches_quantized_forward_with_bf16_scales(bits, group):
    "The shipping case: a bfloat16 model quantized with bfloat16 scales, scored in fp32 either way."
    import mlx.core as mx
    import mlx.nn as nn
    wins = np.random.default_rng(bits).integers(0, 512, size=(2, 97)).astype(np.int32)

    def model():
        m = tiny_model(seed=bits, hidden_size=576, intermediate_size=1536)  # the reference model's widths
        m.set_dtype(mx.bfloat16)
        nn.quantize(m, group_size=group, bits=bits)
        m.set_dtype(mx.float32)  # scales exactly in fp32; the layers stay quantized
        return m
    q = score_windows(model(), wins, scoring='native', progress=False)
    f = score_windows(model(), wins, scoring='fp32', progress=False)
    np.testing.assert_allclose(f.nll.values, q.nll.values, rtol=1e-3)


def test_native_bf16_and_fp32_agree_within_tolerance():
    """A bf16 model quantized 4-bit g64 as mlx-lm ships it: `native` (quantized matmuls, bf16 activations, MLX
    attention) and `fp32` (the same weights dequantized, fp32 activations) give per-token NLL within 1% of each other on
    a tiny model. They are not the same number (bf16 rounds every activation), which is why a table never mixes them."""
    import mlx.core as mx
    import mlx.nn as nn
    wins = np.random.default_rng(0).integers(0, 512, size=(3, 129)).astype(np.int32)

    def model():
        m = tiny_model(seed=0)
        m.set_dtype(mx.bfloat16)
        nn.quantize(m, group_size=64, bits=4)
        return m
    n = score_windows(model(), wins, scoring='native', progress=False)
    f = score_windows(model(), wins, scoring='fp32', progress=False)
    np.testing.assert_allclose(n.nll.values, f.nll.values, rtol=1e-2)
    assert not np.array_equal(n.nll.values, f.nll.values)


def test_cli_scoring_modes_are_recorded(tmp_path, monkeypatch, capsys):
    import json

    import ram.scoring
    from ram.cli import main
    from ram.tiny import save_tiny_model
    src = save_tiny_model(tmp_path / 'm')
    got = {}
    for mode in ('native', 'fp32', 'auto'):
        assert main(['ppl', str(src), '--n', '2', '--length', '32', '--scoring', mode, '-o', str(tmp_path / mode)]) == 0
        got[mode] = json.loads((tmp_path / f'{mode}.json').read_text())['provenance']
        assert f"scoring: {got[mode]['scoring']} (" in capsys.readouterr().out
    assert [got[m]['scoring'] for m in ('native', 'fp32', 'auto')] == ['native', 'fp32', 'fp32']   # a CPU, room
    monkeypatch.setattr(ram.scoring, 'available_memory', lambda: 1 << 20)                           # 1 MiB free
    assert main(['ppl', str(src), '--n', '2', '--length', '32', '-o', str(tmp_path / 'tight')]) == 0
    prov = json.loads((tmp_path / 'tight.json').read_text())['provenance']
    assert prov['scoring'] == 'native' and 'does not fit' in prov['scoring_note']
    with pytest.raises(SystemExit): main(['ppl', str(src), '--scoring', 'bf16'])
    assert "invalid choice: 'bf16'" in capsys.readouterr().err


def test_bos_reaches_windows_contexts_provenance_and_cache_keys(tmp_path, monkeypatch):
    """`bos`: every window and every lm-eval context starts with the BOS token (yes) or not (no, and auto on the tiny
    byte tokenizer, which adds none); the choice goes into provenance and into the condition cache's keys."""
    import mlx_lm

    from ram.evaluate import _lm_class, perplexity
    from ram.reproduce import cached_ppl, requests_path
    from ram.tiny import save_tiny_model
    folder = save_tiny_model(tmp_path / 'tiny')
    m, tok = mlx_lm.load(str(folder))
    proto = Protocol(2, 32, 0)
    toks = np.arange(300, dtype=np.int32) % 256
    runs = {b: perplexity(m, tok, proto, tokens=toks, scoring='native', progress=False, bos=b) for b in BOS_CASES}
    assert runs['yes'].provenance['bos'] is True and runs['no'].provenance['bos'] is False
    assert runs['auto'].provenance['bos_note'] == 'auto: no BOS, as the tokenizer adds none'
    assert np.array_equal(runs['auto'].table.nll, runs['no'].table.nll)
    assert not np.array_equal(runs['yes'].table.nll, runs['no'].table.nll)
    assert (runs['yes'].table.tokens == 31).all()                      # as many tokens predicted either way
    lm = _lm_class()(m, tok, fp32=False, bos=256)
    ids = tuple(tok.encode('ab', add_special_tokens=False))
    assert lm._tokenize(['ab'])[0] == (256, *ids)
    assert _lm_class()(m, tok, fp32=False)._tokenize(['ab'])[0] == ids
    cache = tmp_path / 'c'
    for b in BOS_CASES: cached_ppl(folder, None, proto, cache, 'u', progress=False, scoring='native', bos=b)
    assert len(list(cache.glob('ppl-*.json'))) == 2                    # auto and no share a key: both start bare
    assert requests_path(cache, folder, None, 'native', 'yes') != requests_path(cache, folder, None, 'native', 'no')
    assert requests_path(cache, folder, None, 'native', 'auto') == requests_path(cache, folder, None, 'native', 'no')


BOS_CASES = ('auto', 'yes', 'no')


def test_cli_profile_scoring_is_how_the_calibrated_modes_run(tmp_path, monkeypatch, capsys):
    """`ram profile --scoring`: native keeps the model at its dtype, fp32 converts it; auto takes fp32 on a CPU with
    room and native when the fp32 copy and the accumulators do not fit; the mode is in the profile's meta."""
    import json

    import ram.profiler
    from ram.cli import main
    from ram.tiny import save_tiny_model
    src = save_tiny_model(tmp_path / 'm')
    args = ['profile', str(src), '--mode', 'weight', 'fisher', '--calib-n', '2', '--calib-length', '32']
    got = {}
    for mode in ('native', 'fp32', 'auto'):
        main(args + ['--scoring', mode, '-o', str(tmp_path / f'{mode}.json')])
        got[mode] = json.loads((tmp_path / f'{mode}.json').read_text())['meta']['scoring']
        assert f'calibrated modes run {got[mode]}: ' in capsys.readouterr().out
    assert got == {'native': 'native', 'fp32': 'fp32', 'auto': 'fp32'}                         # a CPU, with room
    monkeypatch.setattr(ram.profiler, 'available_memory', lambda: 1 << 26)                     # 64 MiB free
    main(args + ['-o', str(tmp_path / 'tight.json')])
    assert json.loads((tmp_path / 'tight.json').read_text())['meta']['scoring'] == 'native'
    assert 'does not fit' in capsys.readouterr().out
