"""Do RAM's gains transfer to text it was not calibrated on? Perplexity on ARC-Challenge and WinoGrande text.

    python bench/transfer.py [--model reference] [--n 32] [--length 512] [--modes weight fisher taylor]
                             [--at 4b-g64 4b-g32] [--high 6.264] [--calib-n 16] [--out runs/transfer.json]

The calibrated modes (fisher, taylor) measure their D on WikiText-2 calibration windows, and the
quality claims are WikiText-2 perplexity on other windows of the same articles; taylor's first-order
term even points the plan along the direction that lowers WikiText-2's loss. So a gain measured on
WikiText-2 may partly be adaptation to that text. This scores the same conditions on two texts no
mode ever saw: the ARC-Challenge questions (all three splits, "Question: ...\\nAnswer: <correct
choice>") and the WinoGrande dev sentences (the correct option filled in), each tokenized as one
stream (items joined with "\\n\\n") and cut into --n windows of --length tokens (seed 42). Each mode
is allocated at the exact bytes of each uniform config in --at; with --high B, each calibrated
mode also at B bits per weight (where taylor scores below the unquantized model on WikiText-2;
fisher, whose D is never negative, is the control there). Printed per text: PPL, the share of
the unquantized-to-uniform gap recovered, and the paired Wilcoxon p-value against uniform (and
against the unquantized model) on the same windows.
The weight mode is data-free: its share is the control for what transfer looks like without any
calibration text. Scores are kept in the condition cache (keyed on the text's tokens too), so a
stopped run resumes.
"""
import argparse
import json
import time
from pathlib import Path

TEXTS = ('arc_challenge', 'winogrande')


def text_rows(name: str, root: Path) -> list[str]:
    "The items of `name` as plain text, each with its correct answer in place (see the module docstring)."
    def jsonl(f): return [json.loads(s) for s in (root / f).read_text().splitlines() if s.strip()]
    if name == 'arc_challenge':
        rows = []
        for split in ('train', 'validation', 'test'):
            for d in jsonl(f'arc_challenge/{split}.jsonl'):
                ans = d['choices']['text'][d['choices']['label'].index(d['answerKey'])]
                rows.append(f"Question: {d['question']}\nAnswer: {ans}")
        return rows
    if name == 'winogrande':
        return [f"{d['context_options'][d['gold']]} {d['continuation']}" for d in jsonl('winogrande/validation.jsonl')]
    raise ValueError(f'unknown text {name!r}; valid: {", ".join(TEXTS)}')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='reference')
    p.add_argument('--n', type=int, default=32); p.add_argument('--length', type=int, default=512)
    p.add_argument('--modes', nargs='+', default=['weight', 'fisher', 'taylor'])
    p.add_argument('--at', nargs='+', default=['4b-g64', '4b-g32'])
    p.add_argument('--high', type=float, default=None, help='also each calibrated mode at this bpw')
    p.add_argument('--calib-n', type=int, default=16); p.add_argument('--calib-length', type=int, default=512)
    p.add_argument('--out', default='runs/transfer.json')
    a = p.parse_args()
    from ram.blas import ensure_fast_blas
    ensure_fast_blas()
    from ram.allocator import plan_budgets
    from ram.baselines import uniform_plan
    from ram.metrics import gap_recovered, paired
    from ram.profiler import mode_profiles
    from ram.quantizer import load_condition
    from ram.reproduce import cached_ppl, condition_cache
    from ram.scoring import Protocol, corpus_tokens, data_dir

    t0 = time.perf_counter()
    profs = mode_profiles(a.model, ('weight', *a.modes), calib_n=a.calib_n, calib_length=a.calib_length)
    prof = profs['weight'][0]
    tok = load_condition(a.model, None, lazy=True).tokenizer
    proto = Protocol(a.n, a.length, 42, 'custom')
    conds = [('unquantized', None)]
    for u in a.at:
        up = uniform_plan(prof, u)
        conds.append((f'uniform {u}', up))
        for m in a.modes:
            (plan,) = plan_budgets(profs[m][0], [up.total_bytes], mode=m)
            if plan.total_bytes > up.total_bytes: raise SystemExit(f'RAM {m} exceeds uniform {u} bytes')
            conds.append((f'RAM {m} @ {u}', plan))
    cal = [m for m in a.modes if m != 'weight']
    if a.high is not None:
        budget = int(a.high * prof.meta['n_params'] / 8)  # Plan.bpw = 8 x bytes / parameters
        for m in cal:
            (plan,) = plan_budgets(profs[m][0], [budget], mode=m)
            conds.append((f'RAM {m} @ {plan.bpw:.3f} bpw', plan))
    res, cache = {'model': a.model, 'protocol': proto.to_dict(), 'texts': {}}, condition_cache(a.model)
    for text in TEXTS:
        toks = corpus_tokens(tok, text_rows(text, data_dir()))
        scored = {lab: cached_ppl(a.model, plan, proto, cache, f'{text}: {lab}', tokens=toks) for lab, plan in conds}
        base = scored['unquantized']
        out = res['texts'][text] = {'tokens': int(len(toks)), 'rows': []}
        print(f'\n{text}: {len(toks):,} tokens, {proto.n} windows of {proto.length} (seed 42); unquantized PPL '
              f'{base.ppl:.3f}, median {base.stats["median_ppl"]:.3f}')
        print(f"{'condition':<28}{'bytes':>12}{'PPL':>9}{'median':>9}{'recovered':>11}{'p vs uniform':>14}"
              f"{'vs unquantized: p, windows worse':>34}")
        for lab, plan in conds:
            r = scored[lab]
            u = next((f'uniform {c}' for c in a.at if lab.endswith(f'@ {c}')), None)
            rec = gap_recovered(r.ppl, scored[u].ppl, base.ppl) if u else None
            pu = paired(scored[u].table, r.table)['wilcoxon_p'] if u else None
            pq = paired(base.table, r.table) if plan is not None else None
            pb, nw = (pq['wilcoxon_p'], round(pq['share_b_worse'] * proto.n)) if pq else (None, None)
            out['rows'].append({'condition': lab, 'bytes': plan.total_bytes if plan else None, 'ppl': r.ppl,
                                'median': r.stats['median_ppl'], 'recovered': rec, 'p_vs_uniform': pu,
                                'p_vs_unquantized': pb, 'windows_worse_than_unquantized': nw})
            print(f"{lab:<28}{plan.total_bytes if plan else 0:>12,}{r.ppl:>9.3f}{r.stats['median_ppl']:>9.3f}"
                  f"{'' if rec is None else f'{100 * rec:.1f}%':>11}{'' if pu is None else f'{pu:.2g}':>14}"
                  f"{'' if pb is None else f'{pb:.2g}':>26}{'' if nw is None else f'{nw}/{proto.n}':>8}", flush=True)
        out['pairs'] = []  # each two RAM modes at the same bytes, paired on the same windows
        for u in a.at:
            ms = [m for m in a.modes if f'RAM {m} @ {u}' in scored]
            for i, m1 in enumerate(ms):
                for m2 in ms[i + 1:]:
                    t1, t2 = scored[f'RAM {m1} @ {u}'], scored[f'RAM {m2} @ {u}']
                    pr = paired(t1.table, t2.table)
                    out['pairs'].append({'at': u, 'a': m1, 'b': m2, 'ppl_a': t1.ppl, 'ppl_b': t2.ppl,
                                         'wilcoxon_p': pr['wilcoxon_p'],
                                         'b_worse': round(pr['share_b_worse'] * proto.n)})
                    print(f'  at {u}: {m2} {t2.ppl:.3f} against {m1} {t1.ppl:.3f}, Wilcoxon p={pr["wilcoxon_p"]:.2g}, '
                          f'{m2} worse on {out["pairs"][-1]["b_worse"]}/{proto.n} windows')
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f'written: {a.out} ({time.perf_counter() - t0:.0f} s)')


if __name__ == '__main__':
    main()
