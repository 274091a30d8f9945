"""The storage contract, run against every backend (memory, SQLite, PostgreSQL).

The tests live in the package, ``ostinato.testing.conformance``, so a backend of a third
party runs the same ones (docs/backends.md); here they get our backends, one per
``backend_url`` of tests/conftest.py.
"""

from __future__ import annotations

import pytest
from ostinato._connect import connect
from ostinato.backends import Backend, Clock
from ostinato.testing.conformance import BackendConformance, BackendFactory


class TestConformance(BackendConformance):
    @pytest.fixture
    def make_backend(self, backend_url: str) -> BackendFactory:
        def make(clock: Clock) -> Backend:
            return connect(backend_url, clock=clock)

        return make
