"""Build the docs site (`make docs`) and open it in headless Chromium with the network cut off: the index, a
module page and the teaching pages render with their code, tables and figures; math is typeset by the MathJax copied
into the site; the allocator page shows the source of its method's steps. Screenshots go to runs/docs/."""
import json, os, re, sys, time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs  # tools/docs.py

SHOTS = ROOT / 'runs' / 'docs'


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    t = time.perf_counter()
    index = docs.build(tmp_path_factory.mktemp('site') / 'html')
    print(f'docs build: {time.perf_counter() - t:.1f} s')
    return index.parent


@pytest.fixture(scope='module')
def browser():
    if docs.chromium() is None:
        if os.environ.get('CI'): pytest.fail('no Chromium under CI: tools/setup-chromium.sh should have installed it')
        pytest.skip('no Chromium (tools/setup-chromium.sh installs Debian chromium where apt-get exists)')
    SHOTS.mkdir(parents=True, exist_ok=True)

    def open_page(page: Path, shot: str | None, *args: str) -> str:
        "The DOM of `page` after its scripts ran; a screenshot of it saved as runs/docs/`shot`."
        dom = docs.run_chromium(page.as_uri(), *args, '--dump-dom').stdout
        assert '</html>' in dom, f'empty DOM for {page}'
        if shot:
            out = SHOTS / shot
            out.unlink(missing_ok=True)
            docs.run_chromium(page.as_uri(), f'--screenshot={out}')
            assert out.exists() and out.stat().st_size > 10_000, f'no screenshot of {page}'
        return dom
    return open_page


def untypeset_math(dom: str) -> tuple[int, list[str]]:
    """(number of formulas on the page, the ones MathJax left as TeX). Sphinx writes each formula as a `.math` span or
    div holding `\\(..\\)` or `\\[..\\]`; MathJax 2 moves the TeX into a `<script type="math/tex">` and draws it as
    `.mjx-chtml` glyphs, so a typeset formula has both and shows no delimiter."""
    maths = BeautifulSoup(dom, 'html.parser').select('span.math, div.math')
    raw = []
    for m in maths:
        tex = m.find('script', type=re.compile('^math/tex'))
        shown = ''.join(t for t in m.find_all(string=True) if t.parent.name != 'script')
        if tex is None or m.select_one('.mjx-chtml') is None or re.search(r'\\[(\[]', shown): raw.append(shown.strip())
    return len(maths), raw


def math_page(browser, page: Path) -> str:
    "The DOM of `page` once MathJax is done: virtual time runs ahead whenever the page waits on nothing, so ~1 s."
    return browser(page, None, f'--virtual-time-budget={docs.MATH_BUDGET_MS}')


@pytest.fixture(scope='module')
def allocator(site, browser) -> BeautifulSoup:
    "The allocator's page as Chromium shows it, offline, after MathJax ran."
    return BeautifulSoup(math_page(browser, site / docs.SHOT_PAGE), 'html.parser')


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


def test_math_is_typeset_offline(site, allocator):
    "MathJax, copied into the site, typesets every formula with no network (Chromium's requests all go nowhere)."
    if not (site / '_static' / 'mathjax' / 'MathJax.js').exists():
        why = 'no local MathJax 2, so the site loads it from its CDN: tools/setup-mathjax.sh installs libjs-mathjax'
        if os.environ.get('CI'): pytest.fail(why)
        pytest.skip(why)
    n, raw = untypeset_math(str(allocator))
    assert n >= 10, f'only {n} formulas on {docs.SHOT_PAGE}: did the page lose its math?'
    assert not raw, f'{len(raw)} of {n} formulas left as TeX, e.g. {raw[:3]}'
    # the dual function: TeX in, glyphs out (a λ drawn by MathJax, no \lambda left on the page)
    dual = next(m for m in allocator.select('div.math') if 'g(\\lambda)' in (m.find('script') or m).get_text())
    drawn = dual.select_one('.mjx-chtml').get_text()
    assert 'λ' in drawn and '∑' in drawn and '\\' not in drawn, drawn
    assert 'mathjax/MathJax.js' in str(allocator.find('script', src=re.compile('MathJax'))), 'MathJax not from the site'


def test_math_check_fails_without_mathjax(browser, tmp_path):
    "The check above can fail: with mathjax_path pointing at a missing file every formula stays TeX."
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    md = '# Math\n\nInline $\\lambda \\ge 0$ and displayed:\n\n$$g(\\lambda) = \\sum_t D_t - \\lambda B$$\n'
    (nbs / 'math.ipynb').write_text(json.dumps({'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': md}],
                                                'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    site = docs.build(tmp_path / 'html', nbs=nbs, overrides={'mathjax_path': 'mathjax/missing/MathJax.js'}).parent
    n, raw = untypeset_math(math_page(browser, site / 'math.html'))
    assert n == 2 and len(raw) == 2, (n, raw)
    assert raw[0] == '\\(\\lambda \\ge 0\\)' and raw[1].startswith('\\[g(\\lambda)'), raw


def test_allocator_shows_method_source(allocator):
    "The private steps of the method are `#| exports` cells: their source is on the page, highlighted."
    code = '\n'.join(pre.get_text() for pre in allocator.select('div.cell_input div.highlight pre'))
    for step in ('_lower_hull', '_greedy_fill'):
        assert f'def {step}(' in code, (f'no source of {step} on {docs.SHOT_PAGE}: its cell in nbs/03_allocator.ipynb '
                                        'must be `#| exports` (export and show the source)')
    assert 'id="ram.allocator.allocate"' in str(allocator), 'API entries missing'


def test_allocator_screenshot(site, browser):
    "runs/docs/allocator.png: the allocator page at its lower convex hull (also `python tools/docs.py --screenshot`)."
    out = docs.screenshot(site, SHOTS / 'allocator.png')
    assert out.stat().st_size > 50_000, f'{out} looks empty'
