"""A real PostgreSQL server for the tests (loaded by conftest via ``pytest_plugins``).

``OSTINATO_TEST_PG_URL`` set: tests use that server (its user must be allowed to CREATE and
DROP databases). Otherwise a throwaway server is started once per test session from the
machine's PostgreSQL binaries (``initdb``/``pg_ctl``/``postgres`` from ``$PATH``,
``/usr/lib/postgresql/*/bin`` ...): a fresh cluster in a temp dir, listening on a free port of
127.0.0.1 only, with its unix socket in the temp dir. It runs with ``fsync=off``: a test server
needs no durability, and it makes database creation and commits several times faster. It is
stopped at the end of the session (and by ``atexit`` if the session dies).

When running as root (CI containers) the server runs as the ``postgres`` system user, since
PostgreSQL refuses to run as root; the user is created when it does not exist.

No binaries found is a test *failure*, not a skip: on Debian/Ubuntu install them with
``apt-get install -y postgresql``. ``OSTINATO_SKIP_PG=1`` skips the PostgreSQL tests on
purpose (a laptop without PostgreSQL); CI never sets it.

Fixtures:
- ``pg_server`` (session): the server, with ``.url(dbname)``, ``.stop()``, ``.start()``,
  ``.restart()`` for fault tests, and ``.password``.
- ``postgres_url`` (function): a URL to a new, empty database, dropped after the test.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

__all__ = ["PgServer", "find_pg_bindir", "pg_server", "postgres_url"]

INSTALL_HINT = "install them with: apt-get install -y postgresql (Debian/Ubuntu)"
_BINARIES = ("initdb", "pg_ctl", "postgres")
_RUN_AS = "postgres"


def find_pg_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres (newest version first), or None."""
    candidates: list[Path] = []
    explicit = os.environ.get("OSTINATO_PG_BINDIR")
    if explicit:
        candidates.append(Path(explicit))
    for name in _BINARIES:
        found = shutil.which(name)
        if found:
            # /usr/local/bin/initdb is often a symlink into the real bindir: follow it.
            candidates.append(Path(os.path.realpath(found)).parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")

    def version(path: str) -> tuple[int, ...]:
        numbers = re.findall(r"\d+", Path(path).parent.name)
        return tuple(int(n) for n in numbers)

    candidates.extend(Path(p) for p in sorted(versioned, key=version, reverse=True))
    candidates.extend(Path(p) for p in ("/usr/local/pgsql/bin", "/opt/homebrew/bin"))
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in _BINARIES):
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


class PgServer:
    """A throwaway PostgreSQL cluster controlled with pg_ctl."""

    user = "ostinato_test"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = "pw-" + secrets.token_hex(12)
        self.port = _free_port()
        self.run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.run_as = _ensure_system_user(_RUN_AS)
        # The server user must reach the directory; /tmp is world-traversable.
        base = "/tmp" if self.run_as is not None and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="ostinato-pg-", dir=base))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.logfile = self.root / "server.log"
        self.sockdir.mkdir()
        if self.run_as is not None:
            for path in (self.root, self.sockdir):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        self.running = False

    def _cmd(self, *args: str) -> list[str]:
        command = [str(a) for a in args]
        if self.run_as is not None:
            return ["runuser", "-u", self.run_as.pw_name, "--", *command]
        return command

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log[-4000:]}"
            )

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as is not None:
            os.chown(pwfile, self.run_as.pw_uid, self.run_as.pw_gid)
        pwfile.chmod(0o600)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            # A test server needs no durability; these make it several times faster.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_connections": "off",
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# ostinato test server\n")
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop (disconnecting every client) and start again on the same port."""
        self.stop(mode)
        self.start()

    def url(self, dbname: str = "postgres") -> str:
        return (
            f"postgresql://{self.user}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{dbname}"
        )

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class ExternalServer:
    """A server given by OSTINATO_TEST_PG_URL: no control over its process."""

    def __init__(self, url: str) -> None:
        self.base_url = url
        parts = urlsplit(url)
        self.password = parts.password or ""

    def url(self, dbname: str = "postgres") -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))

    def stop(self, mode: str = "fast") -> None:
        pytest.skip("OSTINATO_TEST_PG_URL points at an external server: cannot stop it")

    start = restart = stop


def _admin_execute(url: str, statement: str) -> None:
    import psycopg  # lazily: the rest of the suite runs without the postgres extra

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | ExternalServer]:
    if os.environ.get("OSTINATO_SKIP_PG") == "1":
        pytest.skip("OSTINATO_SKIP_PG=1: PostgreSQL tests skipped on purpose")
    external = os.environ.get("OSTINATO_TEST_PG_URL")
    if external:
        server = ExternalServer(external)
        try:
            yield server
        finally:
            _drop_template(server)
        return
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $PATH or "
            f"/usr/lib/postgresql/*/bin; {INSTALL_HINT}, or set OSTINATO_TEST_PG_URL to a "
            "server the tests may create databases on (OSTINATO_SKIP_PG=1 skips on purpose)",
            pytrace=False,
        )
    server = PgServer(bindir)
    atexit.register(server.cleanup)
    started = time.monotonic()
    try:
        server.init()
        server.start()
    except Exception as exc:
        server.cleanup()
        pytest.fail(f"could not start a test PostgreSQL from {bindir}: {exc}", pytrace=False)
    print(
        f"\n[ostinato] test PostgreSQL from {bindir} on 127.0.0.1:{server.port} "
        f"(started in {time.monotonic() - started:.1f}s, fsync=off)"
    )
    try:
        yield server
    finally:
        _TEMPLATES.pop(id(server), None)
        server.cleanup()
        atexit.unregister(server.cleanup)


_TEMPLATES: dict[int, str] = {}


def _empty_template(server: PgServer | ExternalServer) -> str:
    """An empty database to clone test databases from (created once per server)."""
    key = id(server)
    if key not in _TEMPLATES:
        name = "ostinato_empty_" + secrets.token_hex(4)
        _admin_execute(server.url("postgres"), f'CREATE DATABASE "{name}" TEMPLATE template0')
        _TEMPLATES[key] = name
    return _TEMPLATES[key]


def _drop_template(server: PgServer | ExternalServer) -> None:
    name = _TEMPLATES.pop(id(server), None)
    if name is not None:
        with contextlib.suppress(Exception):
            _admin_execute(server.url("postgres"), f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def postgres_url(pg_server: PgServer | ExternalServer) -> Iterator[str]:
    """A new empty database for one test, dropped afterwards."""
    dbname = "ostinato_t_" + secrets.token_hex(6)
    admin = pg_server.url("postgres")
    template = _empty_template(pg_server)
    create = f'CREATE DATABASE "{dbname}" TEMPLATE "{template}"'
    try:
        # FILE_COPY (PostgreSQL 15+) from a small empty template: ~50 ms instead of ~200 ms.
        _admin_execute(admin, create + " STRATEGY FILE_COPY")
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != "42601":  # not "syntax error": before 15
            raise
        _admin_execute(admin, create)
    try:
        yield pg_server.url(dbname)
    finally:
        # The test may have restarted or stopped the server.
        if isinstance(pg_server, PgServer) and not pg_server.running:
            pg_server.start()
        for attempt in range(3):
            try:
                _admin_execute(admin, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                break
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(0.5)
