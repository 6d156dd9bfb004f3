"""Fixtures for the intel tests; the results-directory builders are in intel_factory.py."""

import pytest

from distillwatch import store


@pytest.fixture
def con(tmp_path):
    c = store.connect(tmp_path / "store.duckdb")
    yield c
    c.close()
