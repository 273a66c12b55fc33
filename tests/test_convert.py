"""`ram convert`: the main job in one command (issue 12, item 7): profile or reuse, allocate, quantize with a model
card; --dry-run runs nothing; --upload-repo goes through mlx-lm's helper (stubbed here: no hub is reachable)."""
import json

import mlx_lm
import mlx_lm.utils
import pytest

from ram.cli import main
from ram.quantizer import safetensors_payload
from ram.tiny import save_tiny_model


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp('convert') / 'tiny')


def test_convert_writes_a_folder_mlx_lm_loads_with_its_card(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'out'
    assert main(['convert', str(tiny), '--budget', '4.5bpw', '-o', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'profiled: ' in printed and 'allocated on the taylor distortion' in printed
    plan = json.loads((out / 'ram_plan.json').read_text())
    assert safetensors_payload(out) == plan['total_bytes'] <= plan['budget_bytes']
    assert f"{plan['total_bytes']:,} bytes of weights" in printed and '4.5bpw' in printed
    model, tok = mlx_lm.load(str(out))                                   # stock mlx-lm loads it
    card = (out / 'README.md').read_text()
    assert card.startswith('---\nlibrary_name: mlx\n')
    for text in ('4.5bpw', f"{plan['total_bytes']:,} bytes", f"{plan['bpw']:.3f} bits per weight", 'taylor',
                 'dual lower bound', 'ram_plan.json', 'Share of each config (of the weights)'):
        assert text in card, text
    # a second convert at another budget reuses the profile
    assert main(['convert', str(tiny), '--budget', '3.5bpw', '-o', str(tmp_path / 'out2')]) == 0
    assert 'reused: ' in capsys.readouterr().out


def test_convert_dry_run_and_refusals_run_nothing(tiny, tmp_path, monkeypatch, capsys):
    assert main(['convert', str(tiny), '--budget', '16GB', '-o', str(tmp_path / 'o'), '--dry-run',
                 '--upload-repo', 'me/tiny']) == 0
    out = capsys.readouterr().out
    assert '1. profile (weight, taylor): measure' in out and "upload" in out and 'me/tiny' in out
    assert not (tmp_path / 'o').exists() and not (tmp_path / 'cache' / 'profiles').exists()
    assert main(['convert', 'Qwen/Qwen3-30B-A3B', '--budget', '16GB', '-o', str(tmp_path / 'q'), '--dry-run']) == 0
    assert 'download the model, then' in capsys.readouterr().out      # a hub id: nothing is downloaded by a dry run
    assert main(['convert', str(tiny), '--budget', '4.5 bits', '-o', str(tmp_path / 'o')]) == 1
    assert 'ram convert: error: ' in capsys.readouterr().err
    (tmp_path / 'taken').mkdir()
    (tmp_path / 'taken' / 'notes.txt').write_text('mine')
    assert main(['convert', str(tiny), '--budget', '4.5bpw', '-o', str(tmp_path / 'taken')]) == 1
    assert capsys.readouterr().err.count('\n') == 1
    assert not (tmp_path / 'cache' / 'profiles').exists()                  # refused before any profiling
    assert (tmp_path / 'taken' / 'notes.txt').read_text() == 'mine'


def test_upload_goes_through_mlx_lm_and_keeps_the_card(tiny, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_upload_to_hub(path, upload_repo):                           # what mlx-lm's helper does to README.md
        calls.append(('mlx-lm', path, upload_repo))
        (tmp_path / 'seen.md').write_text(open(f'{path}/README.md').read())
        open(f'{path}/README.md', 'w').write('---\nlibrary_name: mlx\n---\n\n# me/tiny\n\n## Use with mlx\n')

    class FakeApi:
        def upload_file(self, **kw): calls.append(('file', kw['path_in_repo'], kw['repo_id']))

    import huggingface_hub
    monkeypatch.setattr(mlx_lm.utils, 'upload_to_hub', fake_upload_to_hub)
    monkeypatch.setattr(huggingface_hub, 'HfApi', FakeApi)
    out = tmp_path / 'up'
    assert main(['convert', str(tiny), '--budget', '4.5bpw', '-o', str(out), '--upload-repo', 'me/tiny']) == 0
    assert calls == [('mlx-lm', str(out), 'me/tiny'), ('file', 'README.md', 'me/tiny')]
    card = (out / 'README.md').read_text()
    assert '## Use with mlx' in card and 'dual lower bound' in card and 'ram_plan.json' in card
    assert 'uploaded' in capsys.readouterr().out
