"""Resumable and extendable downstream runs (issue 13): `ram eval` keeps every request's result as it is scored, so a
killed run scores only what is left and a larger --limit scores only the new documents. The model calls are counted."""
import json
import os
import signal
import subprocess
import sys
import time

import mlx_lm.evaluate
import pytest

from ram.cli import main
from ram.evaluate import RequestStore
from ram.tiny import save_tiny_model


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp('resume') / 'm')


@pytest.fixture
def calls(monkeypatch):
    "Count the requests mlx-lm's scorer receives; `calls.fail_on = k` makes its k-th call raise (a kill midway)."
    real = mlx_lm.evaluate.MLXLM.loglikelihood

    class Calls(list):
        fail_on = None

    seen = Calls()

    def counted(self, requests):
        if seen.fail_on is not None and len(seen) + 1 == seen.fail_on: raise KeyboardInterrupt('killed midway')
        seen.append(len(requests))
        return real(self, requests)

    monkeypatch.setattr(mlx_lm.evaluate.MLXLM, 'loglikelihood', counted)
    return seen


def _store(cache):
    files = list((cache / 'requests').glob('requests-*.jsonl'))
    assert len(files) == 1, files
    return RequestStore(files[0])


def _eval(tiny, tmp_path, limit, name, task='winogrande'):
    out = tmp_path / f'{name}.json'
    rc = main(['eval', str(tiny), '--tasks', task, '--limit', str(limit), '-o', str(out)])
    return rc, (json.loads(out.read_text()) if out.exists() else None)


def test_interrupted_eval_resumes_and_a_larger_limit_scores_only_new_documents(tiny, tmp_path, monkeypatch, calls):
    calls.fail_on = 2                         # winogrande, 12 documents: 24 contexts, 3 chunks of 8; die in the 2nd
    with pytest.raises(KeyboardInterrupt): _eval(tiny, tmp_path, 12, 'killed')
    assert not (tmp_path / 'killed.json').exists()                      # no half-written result
    test_done = len(_store(tmp_path / 'cache'))
    assert calls == [8] and test_done == 8
    calls.clear(); calls.fail_on = None
    rc, res = _eval(tiny, tmp_path, 12, 'resumed')
    assert rc == 0 and sum(calls) == 24 - 8 == res['requests_scored']    # only what the killed run left
    assert [r['n'] for r in res['table']] == [12] and len(res['documents']['winogrande']) == 12
    calls.clear()
    rc, more = _eval(tiny, tmp_path, 16, 'more')
    assert rc == 0 and sum(calls) == 8 == more['requests_scored']        # documents 12-15, two options each
    assert more['documents']['winogrande'][:12] == res['documents']['winogrande']   # a prefix, the same outcomes
    calls.clear()
    monkeypatch.setenv('RAM_CACHE', str(tmp_path / 'fresh'))             # the same 12 documents in one go
    rc, once = _eval(tiny, tmp_path, 12, 'once')
    assert sum(calls) == 24 and once['documents'] == res['documents'] and once['table'] == res['table']


def test_a_sigkilled_eval_resumes(tiny, tmp_path, monkeypatch, calls):
    "A real kill (SIGKILL, no cleanup) while `ram eval` scores: the rerun scores exactly what the store lacks."
    cache = tmp_path / 'cache'
    env = {**os.environ, 'RAM_CACHE': str(cache)}
    code = (f'from ram.cli import main; main(["eval", {str(tiny)!r}, "--tasks", "arc_challenge", "--limit", "40", '
            f'"-o", {str(tmp_path / "k.json")!r}])')
    p = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300 and p.poll() is None:
        files = list((cache / 'requests').glob('*.jsonl'))
        if files and files[0].stat().st_size > 0: break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    stored = len(_store(cache))
    assert 0 < stored < 160, stored           # 40 ARC documents x 4 choices: killed after the first chunk, not the last
    monkeypatch.setenv('RAM_CACHE', str(cache))
    rc, res = _eval(tiny, tmp_path, 40, 'after', task='arc_challenge')
    assert rc == 0 and sum(calls) == 160 - stored == res['requests_scored']
    assert len(_store(cache)) == 160


def test_request_store_ignores_a_torn_line(tmp_path):
    s = RequestStore(tmp_path / 's.jsonl')
    s.add({RequestStore.key('a', ' b'): (-1.5, True), RequestStore.key('a', ' c'): (-2.5, False)})
    with open(tmp_path / 's.jsonl', 'a') as f: f.write('["abc", -1.')              # a write cut by a kill
    back = RequestStore(tmp_path / 's.jsonl')
    assert back.results == s.results and len(back) == 2
    back.add({RequestStore.key('d', ' e'): (-3.0, True)})                     # appended on a line of its own
    assert len(RequestStore(tmp_path / 's.jsonl')) == 3


def test_a_longer_perplexity_run_scores_only_the_new_windows(tiny, tmp_path, monkeypatch):
    """The condition cache extends a perplexity result: after 2 windows, a run of 4 (same length and seed) scores
    windows 3 and 4 only, and writes the same table and statistics as a run of 4 from nothing."""
    import ram.evaluate
    from ram.evaluate import PPLResult
    from ram.reproduce import cached_ppl
    from ram.scoring import Protocol
    scored = []
    real = ram.evaluate.score_windows
    monkeypatch.setattr(ram.evaluate, 'score_windows', lambda m, w, **kw: scored.append(len(w)) or real(m, w, **kw))
    cached_ppl(tiny, None, Protocol(2, 32, 3), tmp_path / 'a', 'u', progress=False)
    r = cached_ppl(tiny, None, Protocol(4, 32, 3), tmp_path / 'a', 'u', progress=False)
    whole = cached_ppl(tiny, None, Protocol(4, 32, 3), tmp_path / 'b', 'u', progress=False)
    assert scored == [2, 2, 4] and r.provenance['reused_windows'] == 2 and 'reused_windows' not in whole.provenance
    assert r.table.equals(whole.table) and r.stats == whole.stats
    back = {p.name: PPLResult.load(p) for p in (tmp_path / 'a').glob('ppl-*.json')}
    assert len(back) == 2 and sorted(len(b.table) for b in back.values()) == [2, 4]
    cached_ppl(tiny, None, Protocol(3, 32, 4), tmp_path / 'a', 'u', progress=False)  # another seed: other windows
    assert scored[-1] == 3


def test_perplexity_on_another_text_has_its_own_cache_entry(tiny, tmp_path, monkeypatch):
    """A plan scored on another token stream (`tokens`) is not served the WikiText-2 result of the same plan and
    protocol, nor another stream's; the same stream again is served from the cache."""
    import numpy as np
    import ram.evaluate
    from ram.reproduce import cached_ppl
    from ram.scoring import Protocol
    scored = []
    real = ram.evaluate.score_windows
    monkeypatch.setattr(ram.evaluate, 'score_windows', lambda m, w, **kw: scored.append(len(w)) or real(m, w, **kw))
    proto, rng = Protocol(2, 32, 3), np.random.default_rng(0)
    wiki = cached_ppl(tiny, None, proto, tmp_path, 'u', progress=False)
    a, b = (rng.integers(0, 200, 4 * 32).astype(np.int32) for _ in range(2))
    ra = cached_ppl(tiny, None, proto, tmp_path, 'u', tokens=a, progress=False)
    rb = cached_ppl(tiny, None, proto, tmp_path, 'u', tokens=b, progress=False)
    again = cached_ppl(tiny, None, proto, tmp_path, 'u', tokens=a, progress=False)
    assert scored == [2, 2, 2] and len(list(tmp_path.glob('ppl-*.json'))) == 3
    assert len({wiki.ppl, ra.ppl, rb.ppl}) == 3 and again.ppl == ra.ppl and list(again.table.nll) == list(ra.table.nll)
