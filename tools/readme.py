"Render nbs/index.ipynb to README.md (GitHub markdown) without Quarto: markdown cells as they are, shown code fenced."
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
nb = json.loads((root / 'nbs' / 'index.ipynb').read_text())
parts = []
for c in nb['cells']:
    src = ''.join(c['source']).strip()
    if not src or '#| hide' in src: continue
    if c['cell_type'] == 'markdown': parts.append(src)
    elif c['cell_type'] == 'code': parts.append(f'```python\n{src}\n```')
text = '<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook -->\n\n' + '\n\n'.join(parts) + '\n'
out = root / 'README.md'
if '--check' in sys.argv:
    if not out.exists() or out.read_text() != text:
        sys.exit('README.md is out of date with nbs/index.ipynb: run `python tools/readme.py`')
    print('ok: README.md matches nbs/index.ipynb')
else: out.write_text(text)
