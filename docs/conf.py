# Sphinx configuration of the docs site; tools/docs.py stages the notebooks and runs Sphinx with it.
import configparser
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
