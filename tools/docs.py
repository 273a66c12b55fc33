"""Build the documentation site from the notebooks, without Quarto: Sphinx + myst-nb + PyData theme.

    python tools/docs.py            # -> docs/_build/html/index.html
    python tools/docs.py --out DIR

Every notebook under nbs/ (subfolders included, names starting with `_` or `.` excluded) becomes a
chapter, rendered with its stored outputs (nothing is executed). nbdev directives are honoured the way
`nbdev_docs` honours them: `#| hide` cells are dropped, `#| echo: false` hides a cell's source,
`#| output: false` its outputs, and an `#| export` cell is replaced by the API documentation (autodoc)
of the public names it defines, so a library notebook's page is that module's API page; an `#| exports`
cell keeps its source, followed by that API documentation.
The staged sources go to docs/_build/src; docs/conf.py configures Sphinx; docs/README.md says why.
"""
import argparse, ast, configparser, copy, json, re, shutil, subprocess, sys, time
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


def build(out: Path | None = None, quiet: bool = True) -> Path:
    "Stage and build the site; returns the path of its index.html."
    out = Path(out) if out else BUILD / 'html'
    src = BUILD / 'src'
    stage(src)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(ROOT / 'docs'), '-d', str(BUILD / 'doctrees'),
           str(src), str(out)] + (['-q'] if quiet else [])
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out / 'index.html'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=Path, default=None, help='output folder (default docs/_build/html)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    t = time.perf_counter()
    index = build(a.out, quiet=not a.verbose)
    print(f'docs: {index} ({time.perf_counter() - t:.1f} s)')
