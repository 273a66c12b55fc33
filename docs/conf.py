# Sphinx configuration of the docs site; tools/docs.py stages the notebooks and runs Sphinx with it.
import configparser, os, shutil, sys
from pathlib import Path

_cfg = configparser.ConfigParser()
_cfg.read(Path(__file__).resolve().parents[1] / 'settings.ini')
_s = _cfg['DEFAULT']

project = _s['title']
author = _s['author']
copyright = _s['copyright']
release = version = _s['version']

extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.viewcode', 'sphinx.ext.mathjax']
root_doc = 'index'
exclude_patterns = ['**.ipynb_checkpoints']

# render the outputs stored in the notebooks; never execute them here
nb_execution_mode = 'off'
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence']
myst_heading_anchors = 3

# MathJax 2 from this machine, copied into the site (_static/mathjax/), so pages typeset math offline and from file://.
# RAM_MATHJAX names a MathJax 2 folder (the one holding MathJax.js); else the first of MATHJAX_DIRS that holds one
# (/usr/share/javascript/mathjax: Debian's libjs-mathjax, which tools/setup-mathjax.sh installs); else the CDN, with a
# warning. MathJax 3 trees (no MathJax.js) are not used: this configuration is MathJax 2's.
MATHJAX_DIRS = ['/usr/share/javascript/mathjax', '/usr/share/mathjax2']
MATHJAX_CDN = 'https://cdn.jsdelivr.net/npm/mathjax@2.7.9/MathJax.js'
MATHJAX_CONFIG = 'TeX-AMS_CHTML'   # the combined config: TeX input, CommonHTML output, AMS macros
# what the pages load: MathJax.js, that config, the jax and extensions they load on demand, the fonts in one format
MATHJAX_SUBSET = ['MathJax.js', f'config/{MATHJAX_CONFIG}.js', 'jax/input/TeX', 'jax/output/CommonHTML',
                  'jax/output/PreviewHTML', 'jax/element/mml', 'extensions', 'fonts/HTML-CSS/TeX/woff']


def _is_mathjax2(d: Path) -> bool: return (d / 'MathJax.js').is_file() and (d / f'config/{MATHJAX_CONFIG}.js').is_file()


def find_mathjax() -> Path | None:
    "The MathJax 2 folder to copy into the site, or None (then the pages load MathJax from its CDN)."
    if os.environ.get('RAM_MATHJAX'):
        d = Path(os.environ['RAM_MATHJAX'])
        if not _is_mathjax2(d): raise FileNotFoundError(f'RAM_MATHJAX={d}: no MathJax.js, config/{MATHJAX_CONFIG}.js')
        return d
    return next((Path(d) for d in MATHJAX_DIRS if _is_mathjax2(Path(d))), None)


mathjax_source = find_mathjax()
if mathjax_source is None:
    print('WARNING: no local MathJax 2 (looked at RAM_MATHJAX, ' + ', '.join(MATHJAX_DIRS) + '): the pages will load '
          'it from its CDN and show raw TeX offline. Install it with `bash tools/setup-mathjax.sh` (Debian/Ubuntu: '
          '`apt-get install libjs-mathjax`) or set RAM_MATHJAX to a MathJax 2 folder.', file=sys.stderr)
# sphinx.ext.mathjax keeps the `?config=` of a path to MathJax.js, and emits mathjax2_config as MathJax.Hub.Config(..)
mathjax_path = ('mathjax/MathJax.js' if mathjax_source else MATHJAX_CDN) + f'?config={MATHJAX_CONFIG}'
# Sphinx writes math as \(..\) and \[..\]; MyST marks each page `tex2jax_ignore` and its math `math`, so MathJax
# typesets exactly what MyST parsed as math (myst-parser sets this up for MathJax 3 only; see _mathjax2_only)
myst_mathjax_classes = 'tex2jax_process|mathjax_process|math|output_area'
mathjax2_config = {
    'tex2jax': {'inlineMath': [['\\(', '\\)']], 'displayMath': [['\\[', '\\]']], 'processEscapes': False,
                'processEnvironments': False, 'ignoreClass': 'tex2jax_ignore|mathjax_ignore',
                'processClass': myst_mathjax_classes},
    'messageStyle': 'none',   # no "Loading [MathJax]..." box in the corner
}

autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
autodoc_preserve_defaults = True

html_theme = 'pydata_sphinx_theme'
html_title = f'{project} {version}'
html_theme_options = {
    'github_url': _s['git_url'],
    'show_toc_level': 2,
    'navigation_with_keys': False,
    'show_nav_level': 2,
}
html_show_sourcelink = False
suppress_warnings = ['mystnb.unknown_mime_type', 'myst.header']
html_static_path = ['_static']
html_css_files = ['ram.css']


def _mathjax2_only(app):
    "myst-parser fills mathjax3_config, which Sphinx emits as `window.MathJax = ..`; MathJax 2 reads mathjax2_config."
    app.config.mathjax3_config = None


def _copy_mathjax(app, exc):
    if exc is None and mathjax_source and app.builder.format == 'html':
        dest = Path(app.outdir) / '_static' / 'mathjax'
        for rel in MATHJAX_SUBSET:
            src = mathjax_source / rel
            if src.is_dir(): shutil.copytree(src, dest / rel, dirs_exist_ok=True)
            else: (dest / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(src, dest / rel)


def setup(app):
    app.connect('builder-inited', _mathjax2_only, priority=900)   # after myst-parser's override_mathjax (500)
    app.connect('build-finished', _copy_mathjax)
