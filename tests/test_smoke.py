"Import every module and run the command line's help: the package installs and its entry point works."
import importlib
import pkgutil
import subprocess
import sys

import ram


def test_every_module_imports():
    names = [m.name for m in pkgutil.iter_modules(ram.__path__) if not m.name.startswith('_')]
    assert {
        'core',
        'blas',
        'models',
        'profiler',
        'allocator',
        'quantizer',
        'metrics',
        'evaluate',
        'baselines',
        'reproduce',
        'cli',
    } <= set(names)
    for n in names: importlib.import_module(f'ram.{n}')


def test_cli_help():
    out = subprocess.run([sys.executable, '-c', 'from ram.cli import main; main(["reproduce", "--help"])'],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '--protocol' in out.stdout and 'reference' in out.stdout


def test_cli_bad_input_is_a_clear_error(tmp_path, capsys):
    from ram.cli import main
    assert main(['ppl', str(tmp_path / 'missing')]) == 1
    assert 'no model folder' in capsys.readouterr().err
    assert main(['eval', str(tmp_path / 'missing'), '--limit', '1']) == 1
    assert 'no model folder' in capsys.readouterr().err
    assert main(['reproduce', '--dry-run', '--templates', str(tmp_path)]) == 1
    assert 'robustness.ipynb not found' in capsys.readouterr().err
