from pathlib import Path

import pytest

from crm_core import store

TESTS_DIR = Path(__file__).parent
FIXTURES = TESTS_DIR / "fixtures"


@pytest.fixture
def con(tmp_path):
    """A fresh store in a real DuckDB file, with the canonical tables created empty."""
    c = store.connect(tmp_path / "crm.duckdb")
    yield c
    c.close()
