"""connect(url): which URLs build which backend, and that secrets stay out of messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ostinato._backends._mask import mask_url
from ostinato._backends.memory import MemoryBackend
from ostinato._backends.sqlite import SqliteBackend
from ostinato._connect import connect

from .helpers import FakeClock


def test_memory() -> None:
    clock = FakeClock()
    backend = connect("memory://", clock=clock)
    assert isinstance(backend, MemoryBackend)
    assert backend.clock is clock
    with pytest.raises(ValueError):
        connect("memory://somewhere")


def test_sqlite_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = connect("sqlite:///data/app.db")
    assert isinstance(relative, SqliteBackend) and relative.path == "data/app.db"
    absolute = connect(f"sqlite:///{tmp_path}/app.db")  # what people type: "sqlite:///" + path
    assert isinstance(absolute, SqliteBackend) and absolute.path == f"{tmp_path}/app.db"
    assert connect("sqlite:////var/lib/app.db").path == "/var/lib/app.db"  # type: ignore[attr-defined]
    assert connect("sqlite:///my%20file.db").path == "my file.db"  # type: ignore[attr-defined]
    assert connect("sqlite://:memory:").path == ":memory:"  # type: ignore[attr-defined]
    assert connect("sqlite:///:memory:").path == ":memory:"  # type: ignore[attr-defined]
    for bad in ("sqlite://", "sqlite:///", "sqlite://host/app.db"):
        with pytest.raises(ValueError):
            connect(bad)


def test_sqlite_options() -> None:
    clock = FakeClock()
    backend = connect("sqlite:///x.db?durable=false&busy_timeout=0.5", clock=clock)
    assert isinstance(backend, SqliteBackend)
    assert (backend.durable, backend.busy_timeout, backend.clock) == (False, 0.5, clock)
    assert connect("sqlite:///x.db", durable=False).durable is False  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        connect("sqlite:///x.db?durable=maybe")
    with pytest.raises(TypeError):
        connect("sqlite:///x.db", no_such_option=1)


def test_unknown_scheme_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match=r"memory://.*sqlite.*postgresql"):
        connect("mysql://root:hunter2@db/app")
    with pytest.raises(ValueError) as err:
        connect("redis://user:hunter2@host:6379/0")
    assert "hunter2" not in str(err.value)
    with pytest.raises(ValueError):
        connect("app.db")


def test_mask_url() -> None:
    assert mask_url("postgresql://bob:s3cret@db.example:5432/app?sslmode=require") == (
        "postgresql://bob:***@db.example:5432/app?sslmode=require"
    )
    assert mask_url("postgresql://bob@db/app") == "postgresql://bob@db/app"
    assert mask_url("postgresql://db/app") == "postgresql://db/app"
    assert "p@ss" not in mask_url("postgresql://bob:p%40ss@[::1]:5432/app")


def test_postgres_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import ostinato._backends.postgres  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "ostinato._backends.postgres":
            pytest.skip("the PostgreSQL backend module is not there yet")
    except ImportError:
        pass
    monkeypatch.delitem(sys.modules, "ostinato._backends.postgres", raising=False)
    for name in [m for m in sys.modules if m == "psycopg" or m.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'ostinato\[postgres\]'") as err:
        connect("postgresql://bob:s3cret@localhost/app")
    assert "s3cret" not in str(err.value)
