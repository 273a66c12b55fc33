"""Run library notebooks and store their outputs, check stored outputs, or check that a rerun reproduces them.

    python tools/outputs.py --write nbs/03_allocator.ipynb ...   # execute (as nbdev_test does) and save outputs
    python tools/outputs.py --check                               # every library notebook: the rules below
    python tools/outputs.py --rerun nbs/03_allocator.ipynb ...    # execute again; exit 1 if any output differs

The library notebooks (`nbs/0*.ipynb`) are saved with outputs so a reader on a forge or in JupyterLab sees each step
work. Outputs must stay small and deterministic so reruns leave no diff: no stderr, no progress-bar residue, no
absolute paths, no timings, no memory addresses, at most 100 kB per output and 400 kB per notebook; and every `##`
section shows at least one output, except a section whose code cells are all `#| slow` (those run only under
`make test-slow`, on the reference model, and are not stored). Cells flagged `#| slow` (or `#| eval: false`) are not
run, as in `nbdev_test`; progress bars are switched off (`TQDM_DISABLE`) while the outputs are written."""
import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault('TQDM_DISABLE', '1')  # read by tqdm when it is imported, so before anything imports it

ROOT = Path(__file__).resolve().parents[1]
MAX_OUTPUT, MAX_NOTEBOOK = 100_000, 400_000
SKIP = {'slow'}   # settings.ini tst_flags
BAD = [
    (re.compile(r'(?<![\w.])(/(?:work|tmp|home|root|Users|private|var/folders)/|[A-Za-z]:\\\\)'), 'an absolute path'),
    (re.compile(r'\d+(\.\d+)?\s?(it/s|s/it)|\r|[█▏▎▍▌▋▊▉]'), 'progress-bar residue'),
    (re.compile(r'\b0x[0-9a-f]{6,}\b'), 'a memory address'),
    (re.compile(r'\b(elapsed|took \d)|\d[\d.,]*[kM]? ?(s|ms|µs|sec|seconds|[\w-]+/s)\b(?![\w/])'), 'a timing or speed'),
]


def library() -> list[Path]:
    return sorted((ROOT / 'nbs').glob('0*.ipynb'))


def _directives(source: str) -> set[str]:
    out = set()
    for line in source.splitlines():
        m = re.match(r'\s*#\|\s*(.*)', line)
        if not m: break
        out.add(m[1].strip().replace(' ', ''))
    return out


def execute(path: Path) -> dict:
    "The notebook at `path` executed cell by cell in its folder (slow and eval: false cells skipped); stops on error."
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from fastcore.foundation import working_directory
    os.environ['IN_TEST'] = '1'
    nb = read_nb(path)
    shell = CaptureShell(path, mpl_format='png')

    def no_eval(cell):
        if cell.cell_type != 'code': return True
        d = _directives(cell.source)
        return bool(d & SKIP) or 'eval:false' in d
    with working_directory(path.parent): shell.run_all(nb, exc_stop=True, preproc=no_eval)
    return nb


def _texts(out: dict) -> list[str]:
    if out.get('output_type') == 'stream': return [''.join(out.get('text', ''))]
    data = out.get('data', {})
    return [''.join(v) if isinstance(v, list) else v for k, v in data.items() if k.startswith('text')]


def _size(out: dict) -> int:
    return len(json.dumps(out))


def problems(path: Path) -> list[str]:
    "What breaks the output rules in the stored notebook at `path`."
    nb = json.loads(path.read_text(encoding='utf-8'))
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    bad, total, section, shown, runs = [], 0, None, {}, {}
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] == 'markdown':
            for line in ''.join(c['source']).splitlines():
                if line.startswith('## '): section = line[3:].strip(); shown.setdefault(section, 0)
            continue
        if c['cell_type'] != 'code': continue
        if section is not None and not (_directives(''.join(c['source'])) & SKIP): runs[section] = True
        for out in c.get('outputs', []):
            where = f'{name} cell {i}'
            total += _size(out)
            if out.get('output_type') == 'stream' and out.get('name') == 'stderr':
                bad.append(f'{where}: writes to stderr (progress bars or warnings): '
                           f'{"".join(out.get("text", ""))[:80]!r}')
            if out.get('output_type') == 'error': bad.append(f'{where}: stores an error')
            if _size(out) > MAX_OUTPUT: bad.append(f'{where}: an output of {_size(out):,} bytes (limit {MAX_OUTPUT:,})')
            for t in _texts(out):
                for rx, what in BAD:
                    m = rx.search(t)
                    if m: bad.append(f'{where}: output holds {what}: {t[max(0, m.start() - 30):m.end() + 30]!r}')
            if section is not None: shown[section] += 1
        if c.get('execution_count') is not None: bad.append(f'{where}: execution_count is set (run nbdev_clean)')
    if total > MAX_NOTEBOOK:
        bad.append(f'{name}: {total:,} bytes of outputs (limit {MAX_NOTEBOOK:,})')
    for s, n in shown.items():
        if not n and runs.get(s): bad.append(f'{name}: section "{s}" shows no output')
    return bad


def _norm(out: dict) -> dict:
    out = copy.deepcopy(out)
    out.pop('execution_count', None)
    for k, v in out.get('data', {}).items():
        if isinstance(v, list): out['data'][k] = ''.join(v)
    if 'text' in out and isinstance(out['text'], list): out['text'] = ''.join(out['text'])
    out.pop('metadata', None)
    return out


def stored_outputs(nb: dict) -> list[list[dict]]:
    return [[_norm(o) for o in c.get('outputs', [])] for c in nb['cells'] if c['cell_type'] == 'code']


def rerun_diff(path: Path) -> list[str]:
    "Cells whose outputs differ between the stored notebook and a fresh execution."
    stored = stored_outputs(json.loads(path.read_text(encoding='utf-8')))
    fresh = stored_outputs(json.loads(json.dumps(execute(path))))
    diff = []
    for i, (a, b) in enumerate(zip(stored, fresh)):
        if a != b:
            diff.append(f'{path.relative_to(ROOT)} code cell {i}: stored {str(a)[:200]} != rerun {str(b)[:200]}')
    return diff


def write(path: Path):
    from execnb.nbio import write_nb
    write_nb(execute(path), path)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument('--write', nargs='+', type=Path, metavar='NB')
    g.add_argument('--check', action='store_true')
    g.add_argument('--rerun', nargs='+', type=Path, metavar='NB')
    a = ap.parse_args()
    if a.write:
        for p in a.write: write(p.resolve()); print(f'wrote outputs of {p}')
        sys.exit(0)
    bad = (
        [b for p in library() for b in problems(p)]
        if a.check
        else [d for p in a.rerun for d in rerun_diff(p.resolve())]
    )
    if bad:
        print('\n'.join(bad), file=sys.stderr)
        sys.exit(1)
    print(f'ok: outputs of {len(library()) if a.check else len(a.rerun)} notebooks '
          + ('follow the rules' if a.check else 'reproduce on a rerun'))
