"""The banned-call table: which imported names are nondeterministic in workflow code.

This is data, not logic.  Each entry maps a dotted *prefix* (a module, or a class inside one) to
the names under it that workflow code must not touch, each with the rule code it belongs to and
the advice shown to the user.  ``"*"`` bans every name under the prefix.  A lookup walks the
resolved dotted name from its longest prefix down, so ``os.environ.get`` matches ``os`` ->
``environ``, and ``requests.Session().get`` matches ``requests`` -> ``*``.

Projects extend or trim it from ``[tool.ostinato.lint]`` (see ``config.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Ban:
    code: str
    advice: str


@dataclass(frozen=True)
class Match:
    """A table hit: the banned dotted name as the user should read it, and why."""

    name: str
    depth: int  # how many dotted parts of the resolved name ``name`` covers
    ban: Ban
    wildcard: bool  # matched through "*" (the whole module is banned)


_NOW = Ban("OST101", "use workflow.now()")
_MONOTONIC = Ban(
    "OST101", "use workflow.now() (subtract two of them for a duration, or time it in an activity)"
)
_RANDOM = Ban("OST102", "use workflow.random() (a random.Random seeded from the history)")
_SECRETS = Ban("OST102", "generate secrets in an activity, or use workflow.random() if not secret")
_URANDOM = Ban("OST102", "use workflow.random().randbytes(n), or an activity for secret bytes")
_UUID = Ban("OST102", "use workflow.uuid4()")
_SLEEP = Ban("OST103", "use await workflow.sleep(seconds) (a durable timer)")
_IO = Ban("OST104", "move it into an activity and call it with workflow.execute_activity()")
_FILE_IO = Ban("OST104", "read or write files in an activity (workflow.execute_activity())")
_PROCESS = Ban("OST104", "run processes in an activity (workflow.execute_activity())")
_DB = Ban("OST104", "query the database in an activity (workflow.execute_activity())")
_THREADS = Ban(
    "OST105",
    "use asyncio tasks (asyncio.gather, asyncio.create_task) in the workflow, "
    "or move the work into an activity",
)
_ENV = Ban("OST106", "pass it in as a workflow argument, or read it in an activity")
_ID = Ban("OST108", "use a stable key: workflow.uuid4(), a counter, or the object's own data")

_IO_MODULES = (
    # network
    "socket",
    "ssl",
    "select",
    "selectors",
    "http.client",
    "urllib.request",
    "urllib3",
    "requests",
    "httpx",
    "aiohttp",
    "grpc",
    "ftplib",
    "smtplib",
    "poplib",
    "imaplib",
    "webbrowser",
    "boto3",
    "botocore",
    # databases
    "redis",
    "pymongo",
    "motor",
    "elasticsearch",
    "kafka",
    "aiokafka",
    "pika",
    "aio_pika",
)
_DB_MODULES = (
    "sqlite3",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "asyncpg",
    "aiosqlite",
    "pymysql",
    "MySQLdb",
    "mysql.connector",
    "cx_Oracle",
    "oracledb",
    "pyodbc",
    "duckdb",
)
_FILE_MODULES = ("shutil", "glob", "tempfile", "aiofiles", "fileinput", "mmap")

DEFAULT_TABLE: Mapping[str, Mapping[str, Ban]] = {
    # OST101 wall clock / monotonic clocks, OST103 blocking sleep
    "time": {
        "time": _NOW,
        "time_ns": _NOW,
        "monotonic": _MONOTONIC,
        "monotonic_ns": _MONOTONIC,
        "perf_counter": _MONOTONIC,
        "perf_counter_ns": _MONOTONIC,
        "process_time": _MONOTONIC,
        "process_time_ns": _MONOTONIC,
        "thread_time": _MONOTONIC,
        "thread_time_ns": _MONOTONIC,
        "sleep": _SLEEP,
    },
    "datetime.datetime": {"now": _NOW, "utcnow": _NOW, "today": _NOW},
    "datetime.date": {"today": _NOW},
    # OST102 randomness
    "random": {"*": _RANDOM},
    "numpy.random": {"*": _RANDOM},
    "secrets": {"*": _SECRETS},
    "uuid": {"uuid1": _UUID, "uuid4": _UUID},
    # OST104 I/O
    "builtins": {"open": _FILE_IO, "input": _IO, "id": _ID},
    "io": {"open": _FILE_IO, "open_code": _FILE_IO, "FileIO": _FILE_IO},
    "pathlib.Path": {
        name: _FILE_IO
        for name in (
            "open",
            "read_text",
            "read_bytes",
            "write_text",
            "write_bytes",
            "exists",
            "is_file",
            "is_dir",
            "stat",
            "iterdir",
            "glob",
            "rglob",
            "mkdir",
            "unlink",
            "rmdir",
            "rename",
            "replace",
            "touch",
            "cwd",
            "home",
        )
    },
    "os.path": {
        name: _FILE_IO
        for name in (
            "exists",
            "lexists",
            "isfile",
            "isdir",
            "islink",
            "getsize",
            "getmtime",
            "getatime",
            "getctime",
            "realpath",
            "abspath",
            "expanduser",
        )
    },
    "subprocess": {"*": _PROCESS},
    "asyncio": {
        "create_subprocess_exec": _PROCESS,
        "create_subprocess_shell": _PROCESS,
        "open_connection": _IO,
        "open_unix_connection": _IO,
        "start_server": _IO,
        "start_unix_server": _IO,
        # OST105
        "to_thread": _THREADS,
        "run_coroutine_threadsafe": _THREADS,
    },
    "os": {
        **{
            name: _PROCESS
            for name in (
                "system",
                "popen",
                "fork",
                "forkpty",
                "kill",
                "killpg",
                "execl",
                "execle",
                "execlp",
                "execlpe",
                "execv",
                "execve",
                "execvp",
                "execvpe",
                "spawnl",
                "spawnle",
                "spawnlp",
                "spawnlpe",
                "spawnv",
                "spawnve",
                "spawnvp",
                "spawnvpe",
                "posix_spawn",
                "posix_spawnp",
                "startfile",
            )
        },
        **{
            name: _FILE_IO
            for name in (
                "open",
                "read",
                "write",
                "listdir",
                "scandir",
                "walk",
                "stat",
                "lstat",
                "remove",
                "unlink",
                "rename",
                "replace",
                "mkdir",
                "makedirs",
                "rmdir",
                "removedirs",
                "chmod",
                "chown",
                "truncate",
            )
        },
        # OST102
        "urandom": _URANDOM,
        "getrandom": _URANDOM,
        # OST106 environment
        **{
            name: _ENV
            for name in (
                "environ",
                "environb",
                "getenv",
                "getenvb",
                "putenv",
                "unsetenv",
                "getcwd",
                "getcwdb",
                "getpid",
                "getppid",
                "getlogin",
                "cpu_count",
                "uname",
            )
        },
    },
    "sys": {"argv": _ENV, "orig_argv": _ENV, "stdin": _IO},
    "platform": {"node": _ENV, "uname": _ENV},
    "getpass": {"getuser": _ENV, "getpass": _IO},
    # OST105 threads, processes, executors
    "threading": {"*": _THREADS},
    "_thread": {"*": _THREADS},
    "multiprocessing": {"*": _THREADS},
    "concurrent.futures": {"*": _THREADS},
    **{module: {"*": _IO} for module in _IO_MODULES},
    **{module: {"*": _DB} for module in _DB_MODULES},
    **{module: {"*": _FILE_IO} for module in _FILE_MODULES},
}

# Methods banned whatever the receiver is, because the receiver (an event loop) can't be resolved
# statically: ``asyncio.get_running_loop().run_in_executor(...)``.
METHOD_BANS: Mapping[str, Ban] = {"run_in_executor": _THREADS}


class BanTable:
    """The default table, plus a project's additions and exemptions."""

    def __init__(
        self,
        extra: Mapping[str, Ban] | None = None,
        allow: Iterable[str] = (),
        base: Mapping[str, Mapping[str, Ban]] = DEFAULT_TABLE,
    ) -> None:
        merged: dict[str, dict[str, Ban]] = {prefix: dict(names) for prefix, names in base.items()}
        for dotted, ban in (extra or {}).items():
            prefix, _, name = dotted.rpartition(".")
            if not prefix:
                prefix, name = "builtins", dotted
            merged.setdefault(prefix, {})[name] = ban
        self._table: Mapping[str, Mapping[str, Ban]] = MappingProxyType(merged)
        self._allow = frozenset(allow)

    def entries(self) -> Iterable[tuple[str, str, Ban]]:
        """Every (prefix, name, ban) triple, sorted; used to document the table."""
        for prefix in sorted(self._table):
            for name, ban in sorted(self._table[prefix].items()):
                yield prefix, name, ban

    def lookup(self, qualname: str) -> Match | None:
        parts = qualname.split(".")
        for end in range(1, len(parts) + 1):
            if ".".join(parts[:end]) in self._allow:
                return None
        for split in range(len(parts) - 1, 0, -1):
            names = self._table.get(".".join(parts[:split]))
            if names is None:
                continue
            ban = names.get(parts[split])
            wildcard = ban is None
            if wildcard:
                ban = names.get("*")
            if ban is not None:
                shown = parts[: split + 1] if parts[0] != "builtins" else parts[1 : split + 1]
                return Match(".".join(shown), split + 1, ban, wildcard)
        return None
