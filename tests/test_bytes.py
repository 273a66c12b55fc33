"Property tests: the byte formula equals what mx.quantize returns, for random shapes and every config."
import math

import mlx.core as mx
import numpy as np
import pytest

from ram.core import KEEP, QuantConfig, bits_per_weight, candidates, feasible, parse_budget, tensor_bytes


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_bytes_match_mx_quantize(dtype):
    rng = np.random.default_rng(0)
    for _ in range(12):
        rows, cols = int(rng.integers(1, 40)), 32 * int(rng.integers(1, 20))
        w = mx.array(rng.standard_normal((rows, cols)).astype(np.float32)).astype(getattr(mx, dtype))
        for c in candidates(extended=True):
            if not c.quantized:
                assert tensor_bytes(w.shape, c, dtype) == w.nbytes
            elif feasible(c, w.shape):
                got = sum(a.nbytes for a in mx.quantize(w, group_size=c.group_size, bits=c.bits, mode=c.mode))
                assert tensor_bytes(w.shape, c, dtype) == got, (c, w.shape)
            else:
                with pytest.raises(ValueError, match='not feasible'): tensor_bytes(w.shape, c, dtype)


def test_affine_overhead_is_32_over_g_bits():
    for c in candidates():
        if c.mode == 'affine':
            assert bits_per_weight((128, 1024), c) == c.bits + 32 / c.group_size
    assert bits_per_weight((128, 1024), KEEP) == 16


def test_stacked_experts_count_every_expert():
    c = QuantConfig(4, 32)
    assert tensor_bytes((8, 64, 128), c) == 8 * tensor_bytes((64, 128), c)


def test_budget_parsing_round_trips():
    rng = np.random.default_rng(1)
    for _ in range(200):
        x = round(float(rng.uniform(0.01, 500)), int(rng.integers(0, 4)))
        for unit, mult in [('GB', 1e9), ('MB', 1e6), ('GiB', 2**30)]:
            for sep in ('', ' '):
                assert parse_budget(f'{x}{sep}{unit}').to_bytes() == int(round(x * mult))
        if x <= 32: assert parse_budget(f'{x}bpw').to_bytes(10**6) == math.floor(x * 10**6 / 8)


@pytest.mark.parametrize('bad', ['16 GBs', 'GB', '1.5.2GB', '-1GB', '0GB', '4,5bpw', '3.2', 'none', [], {}, 1.5, True])
def test_bad_budgets_name_the_accepted_forms(bad):
    with pytest.raises(ValueError, match='accepted'): parse_budget(bad)
