"""Print the import graph of the `ram` package from its code, in chapter (notebook) order, and check it.

    python tools/import_graph.py          # the graph; exit 1 on a violation

Each module is generated from one notebook (its `File to edit:` header); chapters are ordered by notebook name
(00_core < 00a_blas < ... < 09_cli). Every `ram` import counts, at the top of a module or inside a function. The
checks: no module imports one from a later chapter, there is no import cycle, and nothing imports `ram.cli` (the
command line is a leaf, like mlx-lm's `main()` functions)."""
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAF = 'cli'


def modules(lib: Path = ROOT / 'ram') -> dict[str, str]:
    "module name -> its notebook's name, for every generated module."
    out = {}
    for f in sorted(lib.glob('*.py')):
        m = re.search(r'File to edit: \.\./nbs/(\S+)\.ipynb', f.read_text(encoding='utf-8'))
        if m: out[f.stem] = m[1]
    return out


def imports(path: Path, known) -> dict[str, int]:
    "The `ram` modules that `path` imports (absolute or relative, anywhere in the file), with the first line number."
    out = {}
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        names = []
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: names = [mod] if mod else [a.name for a in node.names]
            elif mod.startswith('ram.'): names = [mod.split('.')[1]]
            elif mod == 'ram': names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split('.')[1] for a in node.names if a.name.startswith('ram.')]
        for n in names:
            if n in known and n != path.stem: out.setdefault(n, node.lineno)
    return out


def check(lib: Path = ROOT / 'ram') -> tuple[list[str], list[str]]:
    "(report lines, violations)."
    mods = modules(lib)
    order = sorted(mods, key=lambda m: mods[m])
    rank = {m: i for i, m in enumerate(order)}
    graph = {m: imports(lib / f'{m}.py', mods) for m in order}
    lines, bad = [], []
    for m in order:
        deps = sorted(graph[m], key=rank.get)
        lines.append(f'{mods[m]:<16} ram.{m:<10} <- {", ".join(deps) or "(nothing of ram)"}')
        for d in deps:
            if rank[d] > rank[m]:
                bad.append(f'ram.{m} ({mods[m]}) imports ram.{d} from a later chapter ({mods[d]}), line {graph[m][d]}')
            if d == LEAF:
                bad.append(
                    (f'ram.{m} imports ram.{LEAF}, which must be a leaf that nothing imports (line {graph[m][d]})')
                )
    state = {}

    def visit(m, stack):  # depth-first search for a cycle
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1: bad.append('import cycle: ' + ' -> '.join(stack[stack.index(d):] + [m, d]))
            elif d not in state: visit(d, stack + [m])
        state[m] = 2
    for m in order:
        if m not in state: visit(m, [])
    return lines, bad


if __name__ == '__main__':
    lines, bad = check()
    print('chapter          module        <- imports (ram modules)')
    print('\n'.join(lines))
    if bad:
        print('\nimport graph violations:\n  ' + '\n  '.join(bad), file=sys.stderr)
        sys.exit(1)
    print(f'\n{len(lines)} modules: no import from a later chapter, no cycle, nothing imports ram.{LEAF}')
