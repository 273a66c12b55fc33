"Packaging for RAM. Everything comes from settings.ini, the one place dependencies are pinned."
import platform
from configparser import ConfigParser
from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
reqs = cfg.get('requirements', '').split()
if platform.system() == 'Linux': reqs += cfg.get('linux_requirements', '').split()
evl = cfg.get('eval_requirements', '').split()  # lm-evaluation-harness for `ram eval` (it needs torch)
dev = cfg.get('dev_requirements', '').split() + evl

setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0',
    url=cfg['git_url'], packages=find_packages(include=['ram', 'ram.*']),
    include_package_data=True, install_requires=reqs, extras_require={'eval': evl, 'dev': dev},
    python_requires='>=' + cfg['min_python'], zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
