"""Build the docs site (`make docs`) and open it in headless Chromium: the index, a module page and the
teaching pages render with their code, tables and figures. Screenshots go to runs/docs/."""
import json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs  # tools/docs.py

SHOTS = ROOT / 'runs' / 'docs'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--hide-scrollbars', '--window-size=1280,1800']


def _chromium() -> str | None:
    for b in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        if shutil.which(b): return shutil.which(b)
    return None


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    t = time.perf_counter()
    index = docs.build(tmp_path_factory.mktemp('site') / 'html')
    print(f'docs build: {time.perf_counter() - t:.1f} s')
    return index.parent


@pytest.fixture(scope='module')
def browser():
    exe = _chromium()
    if exe is None:
        if os.environ.get('CI'): pytest.fail('no Chromium under CI: tools/setup-chromium.sh should have installed it')
        pytest.skip('no Chromium (tools/setup-chromium.sh installs Debian chromium where apt-get exists)')
    SHOTS.mkdir(parents=True, exist_ok=True)

    # `make test` preloads OpenBLAS for MLX (LD_PRELOAD); inherited by Chromium it kills its zygote
    env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}

    def run(args, page: Path):
        for attempt in range(2):   # one retry: a headless browser on a loaded machine may miss a start-up deadline
            with tempfile.TemporaryDirectory() as profile:
                r = subprocess.run([exe, *FLAGS, f'--user-data-dir={profile}', *args, page.as_uri()],
                                   capture_output=True, text=True, timeout=120, env=env)
            if r.returncode == 0: return r
        raise AssertionError(f'chromium failed on {page} (exit {r.returncode}): {r.stderr[-2000:]}')

    def open_page(page: Path, shot: str) -> str:
        "The DOM of `page` after its scripts ran; a screenshot of it saved as runs/docs/`shot`."
        dom = run(['--dump-dom'], page).stdout
        assert '</html>' in dom, f'empty DOM for {page}'
        out = SHOTS / shot
        out.unlink(missing_ok=True)
        run([f'--screenshot={out}'], page)
        assert out.exists() and out.stat().st_size > 10_000, f'no screenshot of {page}'
        return dom
    return open_page


def test_every_notebook_is_a_chapter(site):
    for rel in docs.notebooks():
        assert (site / rel.with_suffix('.html')).exists(), f'{rel} has no page'


def test_convert_honours_nbdev_directives():
    nb = {
        'cells': [
            {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'source': '#| default_exp core'},
            {
                'cell_type': 'code',
                'metadata': {},
                'outputs': [],
                'source': '#| export\nimport math\ndef f(x): return x\ndef _g(): pass\nclass C: pass',
            },
            {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'source': '#| exports\ndef _step(): 1\ndef h(): 2'},
            {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'source': '#| hide\nsecret = 1'},
            {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'source': '#| echo: false\nshown_output()'},
            {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'source': 'f(1)'},
        ],
        'metadata': {},
    }
    cells = docs.convert(nb, 'ram')['cells']
    src = [c['source'] for c in cells]
    assert '.. autofunction:: ram.core.f' in src[0] and '.. autoclass:: ram.core.C' in src[0] and '_g' not in src[0]
    # `exports`: the source stays, private steps included, followed by the API entry of its public names
    assert src[1] == 'def _step(): 1\ndef h(): 2' and src[2].count('.. auto') == 1 and 'ram.core.h' in src[2]
    assert not any('secret' in s or '#|' in s for s in src)
    assert cells[3]['metadata']['tags'] == ['remove-input'] and src[4] == 'f(1)'


def test_index_renders(site, browser):
    dom = browser(site / 'index.html', 'index.png')
    assert 'Quick start' in dom
    assert '<div class="highlight"><pre' in dom, 'no highlighted code block'
    assert '<table' in dom, 'no table'
    for rel in docs.notebooks():
        if rel.name != 'index.ipynb': assert f'href="{rel.with_suffix(".html").as_posix()}' in dom, f'{rel} not linked'


def test_module_page_renders(site, browser):
    dom = browser(site / '00_core.html', 'module-core.png')
    assert '<h1>Core' in dom
    assert 'id="ram.core.QuantConfig"' in dom and 'id="ram.core.tensor_bytes"' in dom, 'API entries missing'
    assert 'cell_input' in dom and '<div class="highlight"><pre' in dom and 'test_eq' in dom, 'example code missing'
    assert '#| export' not in dom and '#| hide' not in dom


def test_teaching_pages_render_figures(site, browser):
    pages = [rel for rel in docs.notebooks() if rel.parts[0] == 'teach']
    if not pages: pytest.skip('no teaching notebooks yet')
    for rel in pages:
        nb = json.loads((docs.NBS / rel).read_text())
        kinds = {k for c in nb['cells'] for o in c.get('outputs', []) for k in o.get('data', {})}
        dom = browser(site / rel.with_suffix('.html'), f'teach-{rel.stem}.png')
        assert 'cell_input' in dom and '<div class="highlight"><pre' in dom, f'{rel}: no code'
        if 'image/png' in kinds:
            imgs = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
            assert imgs, f'{rel}: its figures are not on its page'
            for src in imgs: assert (site / rel.parent / src).resolve().exists(), f'{rel}: {src} missing'
        if 'text/html' in kinds: assert '<table' in dom, f'{rel}: its tables are not on its page'


def test_any_notebook_under_nbs_becomes_a_chapter(tmp_path):
    "New folders (nbs/paper/, nbs/teach/, anything) need no configuration; scratch notebooks stay out."
    nbs = tmp_path / 'nbs'
    md = lambda s: {
        'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': s}],
        'metadata': {},
        'nbformat': 4,
        'nbformat_minor': 5,
    }
    for rel in ['index.ipynb', '00_core.ipynb', 'paper/robustness.ipynb', 'teach/01_x.ipynb', 'extra/more/y.ipynb',
                '_scratch.ipynb', 'teach/.ipynb_checkpoints/01_x-checkpoint.ipynb']:
        (nbs / rel).parent.mkdir(parents=True, exist_ok=True)
        (nbs / rel).write_text(json.dumps(md(f'# {rel}')))
    parts = docs.stage(tmp_path / 'src', nbs)
    assert parts == {'': ['00_core'], 'paper': ['paper/robustness'], 'teach': ['teach/01_x'], 'extra': ['extra/more/y']}
    index = json.loads((tmp_path / 'src' / 'index.ipynb').read_text())['cells'][-1]['source']
    assert (
        index.index('part-library') < index.index('part-teach') < index.index('part-paper') < index.index('part-extra')
    )
    assert 'teach/01_x' in (tmp_path / 'src' / 'part-teach.md').read_text()
    assert not (tmp_path / 'src' / '_scratch.ipynb').exists()
