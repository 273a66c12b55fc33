"The real reference model (slow: downloads ~93 MB once, then cached). Run with --slow or RAM_SLOW=1."
import pytest

from ram.core import QuantConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def ref():
    from ram.models import load
    return load('reference', return_config=True, return_path=True)


def test_predicted_bytes_equal_saved_bytes_at_4bit_g64(ref, tmp_path):
    from ram.models import load
    from ram.quantizer import predicted_bytes, quantize, safetensors_payload, save_model_folder, uniform_configs
    model, tok, cfg, path = load('reference', return_config=True, return_path=True)
    configs = uniform_configs(model, QuantConfig(4, 64))
    pred = predicted_bytes(model, configs)
    model, qcfg = quantize(model, configs, cfg)
    out = save_model_folder(tmp_path / 'q', model, tok, qcfg, src=path)
    assert abs(safetensors_payload(out) - pred) <= 0.005 * pred


def test_reference_perplexity_is_sane(ref):
    "A wrong q/k permutation or tokenizer gives PPL in the thousands; the documented value is about 20.7."
    from ram.evaluate import perplexity
    from ram.scoring import get_protocol
    model, tok, _, _ = ref
    ppl = perplexity(model, tok, get_protocol('quick', n=1, length=1024), progress=False).ppl
    assert 8 < ppl < 40, ppl
