"""Placeholder: the PostgreSQL test server fixture (postgres_url) lands with the PG backend."""

import pytest


@pytest.fixture
def postgres_url() -> str:
    pytest.skip("PostgreSQL backend not built yet")
