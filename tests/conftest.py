import os

import pytest


def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', default=False, help='also run tests on the real reference model')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: needs the real reference model (run with --slow or RAM_SLOW=1)')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--slow') or os.environ.get('RAM_SLOW') == '1': return
    skip = pytest.mark.skip(reason='slow: run with --slow or RAM_SLOW=1')
    for item in items:
        if 'slow' in item.keywords: item.add_marker(skip)


@pytest.fixture(autouse=True)
def ram_cache(request, monkeypatch):
    """Each test's own RAM cache (`$RAM_CACHE` = its tmp_path/cache): nothing a test scores or profiles is read from or
    left in the user's ~/.cache/ram. Slow tests keep the real cache: they reuse the reference model's profiles."""
    if 'slow' in request.keywords: return None
    cache = request.getfixturevalue('tmp_path') / 'cache'
    monkeypatch.setenv('RAM_CACHE', str(cache))
    return cache
