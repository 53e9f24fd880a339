import shutil
from pathlib import Path

import pytest

from crm_core import ingest, store
from crm_core.sample import SAMPLE_DIR

TESTS_DIR = Path(__file__).parent
FIXTURES = TESTS_DIR / "fixtures"


@pytest.fixture
def con(tmp_path):
    """A fresh store in a real DuckDB file, with the canonical tables created empty."""
    c = store.connect(tmp_path / "crm.duckdb")
    yield c
    c.close()


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory) -> Path:
    """A store holding the bundled sample data, loaded once per test run; tests copy it before changing it."""
    path = tmp_path_factory.mktemp("sample_store") / "crm.duckdb"
    con = store.connect(path)
    try:
        reports = ingest.load_folder(con, SAMPLE_DIR)
    finally:
        con.close()
    assert all(r.ok for r in reports), [r.message for r in reports if not r.ok]
    return path


@pytest.fixture
def store_copy(sample_store, tmp_path) -> Path:
    """A test's own copy of the sample store, for tests that write (notes, goals, imports)."""
    path = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


@pytest.fixture(scope="module")
def release_app_caches():
    """The app caches its connection (per database path) and query results: AppTest modules drop them when done."""
    yield
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
