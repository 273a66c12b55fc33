"""Build the documentation site from the notebooks, without Quarto: Sphinx + myst-nb + PyData theme.

    python tools/docs.py               # -> docs/_build/html/index.html
    python tools/docs.py --out DIR
    python tools/docs.py --screenshot  # also runs/docs/allocator.png: the allocator page at its hull source

Every notebook under nbs/ (subfolders included, names starting with `_` or `.` excluded) becomes a
chapter, rendered with its stored outputs (nothing is executed). nbdev directives are honoured the way
`nbdev_docs` honours them: `#| hide` cells are dropped, `#| echo: false` hides a cell's source,
`#| output: false` its outputs, and an `#| export` cell is replaced by the API documentation (autodoc)
of the public names it defines, so a library notebook's page is that module's API page; an `#| exports`
cell keeps its source, followed by that API documentation. Math is typeset by a MathJax copied into the site
(docs/conf.py), so pages work offline and from file://.
The staged sources go to docs/_build/src; docs/conf.py configures Sphinx; docs/README.md says why.
"""
import argparse, ast, base64, configparser, copy, json, os, re, select, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
BUILD = ROOT / 'docs' / '_build'
_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
# subfolder of nbs/ -> caption of its part of the site; unknown subfolders get their titled name
SECTIONS = {'': 'Library', 'teach': 'Teaching', 'paper': 'Paper'}
ORDER = ['', 'teach', 'paper']


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT']


def notebooks(nbs: Path = NBS) -> list[Path]:
    "Every notebook under `nbs`, relative, skipping scratch (`_*`), hidden and checkpoint paths."
    out = []
    for p in sorted(nbs.rglob('*.ipynb')):
        rel = p.relative_to(nbs)
        if any(part.startswith(('_', '.')) for part in rel.parts): continue
        out.append(rel)
    return out


def directives(src: str) -> tuple[dict, str]:
    "Split the leading `#| key: value` lines of a cell from its code."
    d, lines = {}, src.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or _DIRECTIVE.match(lines[i])):
        m = _DIRECTIVE.match(lines[i])
        if m: d[m[1]] = m[2]
        i += 1
    return d, '\n'.join(lines[i:]).strip('\n')


def _public_defs(code: str, module: str) -> list[tuple[str, str]]:
    "(directive, qualified name) for each public function or class defined at the top of `code`."
    try: tree = ast.parse(code)
    except SyntaxError: return []
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith('_'):
            out.append(('autofunction', f'{module}.{node.name}'))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
            out.append(('autoclass', f'{module}.{node.name}'))
    return out


def _api_cell(defs) -> dict:
    rst = '\n\n'.join(f'.. {kind}:: {name}' + ('\n   :members:\n   :undoc-members:' if kind == 'autoclass' else '')
                      for kind, name in defs)
    return {'cell_type': 'markdown', 'metadata': {}, 'source': f'```{{eval-rst}}\n{rst}\n```'}  # id set by convert


def convert(nb: dict, lib_name: str) -> dict:
    "A copy of notebook `nb` ready for myst-nb: directives stripped and honoured, exports as autodoc."
    nb = copy.deepcopy(nb)
    module, cells = None, []
    for cell in nb['cells']:
        if cell['cell_type'] != 'code': cells.append(cell); continue
        d, code = directives(''.join(cell['source']))
        if 'default_exp' in d: module = f'{lib_name}.{d["default_exp"]}'
        if 'hide' in d or 'default_exp' in d: continue
        api = []
        if {'export', 'exports', 'exporti'} & d.keys():
            api = _public_defs(code, module) if module and 'exporti' not in d else []
            if 'exports' not in d:   # nbdev hides the source of `export` cells: only their API documentation
                if api: cells.append(_api_cell(api))
                continue
        tags = set(cell.get('metadata', {}).get('tags', []))
        if d.get('echo') == 'false' or 'hide_input' in d: tags.add('remove-input')
        if d.get('output') == 'false' or 'hide_output' in d: tags.add('remove-output')
        if code.strip() or cell.get('outputs'):
            cell = {**cell, 'source': code, 'metadata': {**cell.get('metadata', {}), 'tags': sorted(tags)}}
            if not tags: cell['metadata'].pop('tags')
            cells.append(cell)
        if api: cells.append(_api_cell(api))   # `exports`: the source, then the API documentation (as nbdev_docs)
    for i, c in enumerate(cells): c.setdefault('id', f'cell-{i}')
    nb['cells'] = cells
    nb.setdefault('metadata', {}).setdefault(
        'kernelspec', {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    )
    return nb


def _toctree(docs: list[str], caption: str = '', maxdepth: int = 1, hidden: bool = False) -> str:
    opts = ([f':caption: {caption}'] if caption else []) + [f':maxdepth: {maxdepth}'] + ([':hidden:'] if hidden else [])
    return '\n'.join(['```{toctree}', *opts, ''] + docs + ['```'])


BLURBS = {
    '': 'One notebook per module: its prose, examples and tests, and the API of what it exports.',
    'teach': 'Teaching notebooks: quantization and rate-distortion allocation from scratch, runnable on a laptop CPU.',
    'paper': 'Parameterized templates, one per published table; `ram reproduce` executes them per model.',
}


def stage(src: Path, nbs: Path = NBS) -> dict[str, list[str]]:
    """Write the Sphinx source tree into `src`: converted notebooks, one landing page per part (the top-level
    notebooks, then each subfolder of `nbs`), the index with its table of contents, docs/README.md."""
    if src.exists(): shutil.rmtree(src)
    src.mkdir(parents=True)
    lib = settings().get('lib_name', 'ram')
    parts: dict[str, list[str]] = {}
    index = None
    for rel in notebooks(nbs):
        nb = convert(json.loads((nbs / rel).read_text()), lib)
        if rel == Path('index.ipynb'): index = nb; continue
        out = src / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(nb, indent=1))
        top = rel.parts[0] if len(rel.parts) > 1 else ''
        parts.setdefault(top, []).append(rel.with_suffix('').as_posix())
    if index is None:
        index = {
            'cells': [{'cell_type': 'markdown', 'id': 'title', 'metadata': {}, 'source': '# ' + settings()['title']}],
            'metadata': {},
            'nbformat': 4,
            'nbformat_minor': 5,
        }
    shutil.copy(ROOT / 'docs' / 'README.md', src / 'about-docs.md')
    pages = []
    for k in ORDER + sorted(k for k in parts if k not in ORDER):
        if k not in parts: continue
        title, page = SECTIONS.get(k, k.replace('_', ' ').title()), f'part-{k or "library"}'
        (src / f'{page}.md').write_text(f'# {title}\n\n{BLURBS.get(k, "")}\n\n' + _toctree(parts[k], maxdepth=1) + '\n')
        pages.append(page)
    index['cells'].append({'cell_type': 'markdown', 'id': 'toctree', 'metadata': {},
                           'source': '## Contents\n\n' + _toctree(pages + ['about-docs'], maxdepth=2)})
    (src / 'index.ipynb').write_text(json.dumps(index, indent=1))
    return parts


def build(out: Path | None = None, quiet: bool = True, nbs: Path = NBS, overrides: dict | None = None) -> Path:
    """Stage and build the site of the notebooks in `nbs`; returns the path of its index.html. Sources and doctrees go
    to docs/_build/src and docs/_build/doctrees, or next to a given `out` (`OUT-src`, `OUT-doctrees`). `overrides` are
    Sphinx settings passed as `-D name=value` (the tests break mathjax_path with it)."""
    out = Path(out).resolve() if out else BUILD / 'html'
    src, trees = (BUILD / 'src', BUILD / 'doctrees') if out == BUILD / 'html' else (
        out.with_name(f'{out.name}-src'), out.with_name(f'{out.name}-doctrees'))
    stage(src, nbs)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(ROOT / 'docs'), '-d', str(trees), str(src),
           str(out)] + (['-q'] if quiet else [])
    for k, v in (overrides or {}).items(): cmd += ['-D', f'{k}={v}']
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out / 'index.html'


def _size(d: Path) -> int: return sum(f.stat().st_size for f in d.rglob('*') if f.is_file())


# Headless Chromium, with every network request sent nowhere: the site must be complete on its own (MathJax included)
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--hide-scrollbars', '--host-resolver-rules=MAP * ~NOTFOUND',
                  '--proxy-server=127.0.0.1:9', '--window-size=1280,1800']
MATH_BUDGET_MS = 20_000   # virtual time for MathJax to load and typeset (virtual: a page that is done returns at once)
SHOT_PAGE, SHOT_ANCHOR = '03_allocator.html', 'the-lower-convex-hull'   # the allocator's hull and its source


def chromium() -> str | None:
    "The path of a Chromium or Chrome, or None."
    return next((shutil.which(b) for b in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
                 if shutil.which(b)), None)


def run_chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    "Open `url` in headless Chromium (offline, fresh profile) with extra `args` (--dump-dom, --screenshot=..)."
    exe = chromium()
    if exe is None: raise FileNotFoundError('no Chromium: tools/setup-chromium.sh installs it where apt-get exists')
    # `make test` preloads OpenBLAS for MLX (LD_PRELOAD); inherited by Chromium it kills its zygote
    env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
    for attempt in range(2):   # one retry: a headless browser on a loaded machine may miss a start-up deadline
        with tempfile.TemporaryDirectory() as profile:
            r = subprocess.run([exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args, url],
                               capture_output=True, text=True, timeout=120, env=env)
        if r.returncode == 0: return r
    raise RuntimeError(f'chromium failed on {url} (exit {r.returncode}): {r.stderr[-2000:]}')


class _DevTools:
    "Chromium driven over its DevTools pipe (fd 3 in, fd 4 out, NUL-terminated JSON), for what flags cannot do."

    def __init__(self, *args: str):
        exe = chromium()
        if exe is None: raise FileNotFoundError('no Chromium: tools/setup-chromium.sh installs it where apt-get exists')
        (r_in, self._w), (self._r, w_out) = os.pipe(), os.pipe()
        self._profile = tempfile.TemporaryDirectory()

        def fds():   # Chromium reads commands from fd 3 and writes answers to fd 4 (dup first: either may be 3 or 4)
            a, b = os.dup(r_in), os.dup(w_out)
            os.dup2(a, 3); os.dup2(b, 4)
        env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}   # see run_chromium
        self._proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f'--user-data-dir={self._profile.name}',
                                       '--remote-debugging-pipe', *args, 'about:blank'], env=env, pass_fds=(3, 4),
                                      preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in); os.close(w_out)
        self._buf, self._id, self.session = b'', 0, None
        try:
            page = next(t for t in self.send('Target.getTargets')['targetInfos'] if t['type'] == 'page')
            self.session = self.send('Target.attachToTarget', targetId=page['targetId'], flatten=True)['sessionId']
        except BaseException:
            self.close(); raise

    def _message(self, deadline: float) -> dict:
        while b'\0' not in self._buf:
            if not select.select([self._r], [], [], max(0, deadline - time.monotonic()))[0]:
                raise TimeoutError('no answer from Chromium')
            chunk = os.read(self._r, 1 << 20)
            if not chunk: raise RuntimeError('Chromium closed its DevTools pipe')
            self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg)

    def send(self, method: str, timeout: float = 60, **params):
        self._id += 1
        msg = {'id': self._id, 'method': method, 'params': params}
        if self.session: msg['sessionId'] = self.session
        os.write(self._w, json.dumps(msg).encode() + b'\0')
        deadline = time.monotonic() + timeout
        while (m := self._message(deadline)).get('id') != self._id: pass
        if 'error' in m: raise RuntimeError(f'{method}: {m["error"]}')
        return m['result']

    def evaluate(self, js: str, timeout: float = 60):
        r = self.send('Runtime.evaluate', timeout, expression=js, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'{js[:80]}: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def close(self):
        try:   # a graceful exit: killed, Chromium leaves its renderer and zygote behind
            self.session = None
            self.send('Browser.close', timeout=10)
            self._proc.wait(timeout=30)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired, OSError):
            self._proc.kill(); self._proc.wait()
        os.close(self._w); os.close(self._r); self._profile.cleanup()


# resolves once the page has loaded and MathJax (if the page has it) has typeset it, 30 s at most
_PAGE_DONE = """new Promise(done => {
  const typeset = () => window.MathJax && MathJax.Hub ? MathJax.Hub.Register.StartupHook('End', done) : done();
  document.readyState === 'complete' ? typeset() : addEventListener('load', typeset);
  setTimeout(done, 30000);
})"""


def screenshot(site: Path, out: Path = ROOT / 'runs' / 'docs' / 'allocator.png', page: str = SHOT_PAGE,
               anchor: str = SHOT_ANCHOR, size: tuple[int, int] = (1400, 2000)) -> Path:
    """A `size` screenshot of `page` of the built `site` from the element `anchor` down, its math typeset. (Headless
    Chromium's `--screenshot` paints nothing once a page is scrolled, a `#anchor` included: DevTools clips instead.)"""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    w, h = size
    cdp = _DevTools(f'--window-size={w},{h}')
    try:
        url = (Path(site) / page).resolve().as_uri()
        cdp.send('Page.navigate', url=url)
        for _ in range(100):   # until the page's own document is the one we talk to
            if cdp.evaluate('location.href') == url: break
            time.sleep(0.1)
        cdp.evaluate(_PAGE_DONE, timeout=60)
        top = cdp.evaluate(f"document.getElementById({json.dumps(anchor)}).getBoundingClientRect().top + scrollY - 16"
                           if anchor else '0')
        png = cdp.send('Page.captureScreenshot', format='png', captureBeyondViewport=True,
                       clip={'x': 0, 'y': max(0, top), 'width': w, 'height': h, 'scale': 1})['data']
    finally:
        cdp.close()
    out.write_bytes(base64.b64decode(png))
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=Path, default=None, help='output folder (default docs/_build/html)')
    ap.add_argument('--screenshot', action='store_true', help=f'also save runs/docs/allocator.png ({SHOT_PAGE})')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    t = time.perf_counter()
    index = build(a.out, quiet=not a.verbose)
    mj = index.parent / '_static' / 'mathjax'
    math = f'MathJax copied: {_size(mj) / 1e6:.1f} MB' if mj.exists() else 'MathJax from its CDN (not offline)'
    print(f'docs: {index} ({time.perf_counter() - t:.1f} s; {math})')
    if a.screenshot: print(f'screenshot: {screenshot(index.parent)}')
