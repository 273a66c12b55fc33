"""Property test (issue 14): plans, profiles and safetensors headers, mutated at random (seeded) and fed to the real
`ram` commands, either give a correct result or fail with one line on stderr: never a traceback, never a partial
output, never a file touched outside the output."""
import contextlib
import hashlib
import io
import json
import random
import shutil
import struct
from pathlib import Path

import pytest

import ram.profiler
from ram.allocator import plan_budgets
from ram.cli import main
from ram.core import Plan, Profile, is_model_folder
from ram.profiler import profile
from ram.quantizer import safetensors_payload
from ram.tiny import save_tiny_model

SEED = 14
CASES = {'plan': 130, 'profile': 110, 'header': 110}
NAN, INF = float('nan'), float('inf')
# values a mutation puts in place of a field: other types, non-finite and huge numbers, names that are paths
ODD = [None, True, False, 0, -1, 1, 3, 2**63, 10**30, -10**30, 0.5, 4.7, -0.0, NAN, INF, -INF, 1e308, '', '..',
       '../x', '/etc/passwd', 'a/b', 'NaN', '4', 'x' * 300, [], {}, [1, 2], {'a': 1}, [[]]]
ODD_KEYS = ['', '..', '../x', 'a/b', '/abs', ' ', 'x\x00y', 'bitz']


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp('mutation')
    src = save_tiny_model(d / 'src')
    prof = profile(src, progress=False)
    prof.save(d / 'profile.json')
    plan_budgets(prof, ['4.5bpw'])[0].save(d / 'plan.json')
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(['quantize', str(src), str(d / 'plan.json'), '-o', str(d / 'ref')]) == 0
    return d


# --- mutations --------------------------------------------------------------------------------------------------------

def _children(v) -> list:
    return list(v) if isinstance(v, dict) else list(range(len(v))) if isinstance(v, list) else []


def _walk(rng, obj) -> tuple:
    "A random path into `obj`: down a random child at each step, stopping at a leaf or at random (never at the root)."
    path, v = (), obj
    while _children(v) and (not path or rng.random() > 0.3):
        k = rng.choice(_children(v))
        path, v = path + (k,), v[k]
    return path


def _changed(rng, v):
    "A value near `v` that may be wrong: another number, a float for an int, a string for a number, a cut string."
    if isinstance(v, bool): return rng.choice([not v, int(v), str(v).lower()])
    if isinstance(v, int): return rng.choice([v + 1, -v, v * 10**6, v + 0.5, float(v), str(v), -1, 0])
    if isinstance(v, float):
        return rng.choice([-v, v * 1e300, v + 1, round(v) if v - v == 0 else NAN, INF, str(v), 0.0])
    if isinstance(v, str): return rng.choice(['', v[: len(v) // 2], v + '/..', '../' + v, v.upper(), v + 'x'])
    if isinstance(v, list): return rng.choice([[], v[:1], v[: len(v) // 2], v + v[:1], v[::-1], [v]])
    return rng.choice([{}, [v], None])


def mutate(rng, obj) -> str:
    "Change `obj` (a JSON tree) in place by one random mutation; returns what it did."
    path = _walk(rng, obj)
    if not path: return 'nothing'
    *up, k = path
    parent = obj
    for p in up: parent = parent[p]
    op = rng.choice(['odd', 'odd', 'near', 'near', 'drop', 'rename'])
    if op == 'rename' and not isinstance(parent, dict): op = 'drop'
    if op == 'odd': parent[k] = rng.choice(ODD)
    elif op == 'near': parent[k] = _changed(rng, parent[k])
    elif op == 'drop': del parent[k]
    else: parent[rng.choice(ODD_KEYS)] = parent.pop(k)
    return f'{op} {"/".join(map(str, path))}'[:120]


def mutated_json(rng, obj) -> tuple[str, str]:
    "The text of a copy of `obj` with one to three mutations, sometimes cut short; and what was done."
    obj = json.loads(json.dumps(obj))
    did = [mutate(rng, obj) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    text = json.dumps(obj)  # NaN and Infinity as Python's json writes them
    if rng.random() < 0.08:
        n = rng.randrange(len(text))
        text, did = text[:n], did + [f'cut at {n}']
    return text, '; '.join(did)


def _header(b: bytes) -> tuple[dict, int]:
    n = struct.unpack('<Q', b[:8])[0]
    return json.loads(b[8:8 + n]), n


def mutated_safetensors(rng, b: bytes) -> tuple[bytes, str]:
    "The bytes of a safetensors file with its header (or the bytes around it) changed; and what was done."
    h, n = _header(b)
    r = rng.random()
    if r < 0.1:
        m = rng.choice([0, 1, n - 1, n + 1, len(b), 2**64 - 1])
        return struct.pack('<Q', m) + b[8:], f'header length {n} -> {m}'
    if r < 0.17:
        m = rng.randrange(len(b))
        return b[:m], f'file cut at {m}'
    if r < 0.22:
        i = rng.randrange(8, 8 + n)
        return b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:], f'header byte {i} flipped'
    if r < 0.32:  # the same tensors in another order: valid, and the result must be the same
        items = list(h.items())
        rng.shuffle(items)
        hb = json.dumps(dict(items)).encode()
        return struct.pack('<Q', len(hb)) + hb + b[8 + n:], 'tensors reordered'
    text, did = mutated_json(rng, h)
    hb = text.encode()
    return struct.pack('<Q', len(hb)) + hb + b[8 + n:], did


# --- running and judging ----------------------------------------------------------------------------------------------

def _snapshot(root: Path, skip: Path) -> dict:
    "Every file under `root` but `skip`: its size, mtime and hash."
    out = {}
    for p in sorted(root.rglob('*')):
        if p == skip or skip in p.parents or not p.is_file(): continue
        s = p.stat()
        out[str(p.relative_to(root))] = (s.st_size, s.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _run(argv) -> tuple[int, str, str]:
    "`ram ARGV` in this process: exit code, stdout, stderr. An exception escaping `main` fails the test (a traceback)."
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try: rc = main(argv)
        except SystemExit as e: rc = e.code
    return rc, so.getvalue(), se.getvalue()


def _judge(root: Path, out: Path, argv, check_result, rcs: list) -> str | None:
    """Run `argv` (its exit code appended to `rcs`); what went wrong, or None when it succeeded with a correct result or
    failed in one line and cleanly."""
    before = _snapshot(root, out)
    try: rc, _, err = _run(argv)
    except Exception as e: return f'traceback: {type(e).__name__}: {e}'[:300]
    rcs.append(rc)
    if _snapshot(root, out) != before: return 'a file outside the output was touched'
    left = sorted(p.name for p in out.parent.iterdir() if p != out)
    if left: return f'left beside the output: {left}'
    if rc == 0:
        try: check_result()
        except Exception as e: return f'exit 0 with a wrong result: {type(e).__name__}: {e}'[:300]
        return None
    if rc != 1 or 'Traceback' in err: return f'exit {rc}: {err[-300:]!r}'
    lines = err.strip().splitlines()
    if len(lines) != 1 or not lines[0].startswith(f'ram {argv[0]}: error: '):
        return f'not one error line: {err!r}'[:300]
    if out.exists(): return 'a failed run left its output'
    return None


def _quantized(out: Path, plan_file: Path, ref: Path | None = None):
    "A correct `ram quantize` result: a model folder of exactly the plan's bytes, carrying the plan (`ref`'s weights)."
    plan = Plan.load(plan_file)
    assert is_model_folder(out) and safetensors_payload(out) == plan.total_bytes
    assert Plan.load(out / 'ram_plan.json') == plan
    if ref is not None: assert (out / 'model.safetensors').read_bytes() == (ref / 'model.safetensors').read_bytes()


def _allocated(out: Path, prof_file: Path):
    "A correct `ram allocate` result: one plan naming every tensor of the profile, its bytes within its budget."
    prof, (f,) = Profile.load(prof_file), sorted(out.iterdir())
    plan = Plan.load(f)
    assert set(plan.tensors) == set(prof.table.tensor)
    assert plan.total_bytes <= plan.budget_bytes or plan.total_bytes == prof.table.groupby('tensor').bytes.max().sum(
    ) + plan.fixed_bytes


def test_mutated_inputs_give_a_correct_result_or_one_clean_error_line(base, tmp_path, monkeypatch):
    real_tqdm = ram.profiler.tqdm
    monkeypatch.setattr(ram.profiler, 'tqdm', lambda *a, **k: real_tqdm(*a, **{**k, 'disable': True}))
    monkeypatch.setenv('RAM_CACHE', str(tmp_path / 'cache'))  # inside the snapshot: nothing may be written there
    rng = random.Random(SEED)
    inp, outs = tmp_path / 'in', tmp_path / 'out'
    inp.mkdir(), outs.mkdir()
    shutil.copytree(base, tmp_path / 'base')
    src, plan0, prof0, ref = (tmp_path / 'base' / n for n in ('src', 'plan.json', 'profile.json', 'ref'))
    plan_obj, prof_obj = json.loads(plan0.read_text()), json.loads(prof0.read_text())
    weights = (src / 'model.safetensors').read_bytes()
    bad, rcs = [], {k: [] for k in CASES}
    for kind, n in CASES.items():
        for i in range(n):
            out = outs / f'{kind}-{i}'
            if kind == 'plan':
                text, did = mutated_json(rng, plan_obj)
                f = inp / 'plan.json'
                f.write_text(text)
                argv, check = ['quantize', str(src), str(f), '-o', str(out)], lambda: _quantized(out, f)
            elif kind == 'profile':
                text, did = mutated_json(rng, prof_obj)
                f = inp / 'profile.json'
                f.write_text(text)
                argv = ['allocate', str(f), '--budget', '4.5bpw', '-o', str(out)]
                check = lambda: _allocated(out, f)  # noqa: E731
            else:
                m = inp / 'm'
                if m.exists(): shutil.rmtree(m)
                shutil.copytree(src, m)
                b, did = mutated_safetensors(rng, weights)
                (m / 'model.safetensors').write_bytes(b)
                same = b[8:] == weights[8:] or _same_tensors(b, weights)
                if i % 3 == 2:
                    argv = ['profile', str(m), '-o', str(out)]
                    check = lambda: Profile.load(out)  # noqa: E731
                else:
                    argv = ['quantize', str(m), str(plan0), '-o', str(out), '--force']
                    check = lambda: _quantized(out, plan0, ref if same else None)  # noqa: E731
            why = _judge(tmp_path, out, argv, check, rcs[kind])
            if why: bad.append(f'{kind} {i} ({did}): {why}')
            if out.is_dir(): shutil.rmtree(out)
            elif out.exists(): out.unlink()
    assert not bad, f'{len(bad)} of {sum(CASES.values())} mutated inputs misbehaved:\n' + '\n'.join(bad[:25])
    print({k: {'succeeded': v.count(0), 'refused': v.count(1)} for k, v in rcs.items()})
    # the mutations reach past the validators: some inputs of each kind still work, and most are refused
    assert all(0 < v.count(0) < v.count(1) for v in rcs.values()), rcs


def _same_tensors(b: bytes, weights: bytes) -> bool:
    "Whether the mutated file `b` describes the same tensors over the same data as `weights` (its metadata aside)."
    try:
        h, n = _header(b)
        h0, n0 = _header(weights)
    except (ValueError, struct.error, UnicodeDecodeError): return False
    h.pop('__metadata__', None), h0.pop('__metadata__', None)
    return h == h0 and b[8 + n:] == weights[8 + n0:]
