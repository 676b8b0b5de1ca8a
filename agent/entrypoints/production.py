"""The production server (`lookcloser serve`): the stock LangGraph server (langgraph-api) on PostgreSQL + Redis,
through langgraph-runtime-pg and its `langhost serve` CLI, without Docker.

Why this and not `langgraph dev`: durable threads in PostgreSQL, a real task queue in Redis (runs survive a
server that dies, several server processes share one database), no in-memory queue that polls. Why this and not
Aegra: docs/serving.md ("Production server").

What it does: checks the setup before anything starts (the port, the operator's LOOKCLOSER_VLM /
LOOKCLOSER_CONFIG, DATABASE_URI / REDIS_URI when given, the server binaries when not), starts a local PostgreSQL
and Redis for the user when no URI is given (their data under `data_dir`, so a restart finds the same threads;
free ports), writes the server's langgraph.json (the served graph and its HTTP guard; the runtime's own Postgres
checkpointer), keeps the photos clients send in a table of that database (LOOKCLOSER_IMAGE_STORE), runs
`langhost serve` with N worker processes, and on Ctrl-C / SIGTERM stops the server, then what it started. Every
failure is one `ServeError` line naming the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Callable, Mapping

from lookcloser.core.errors import LookCloserError

__all__ = ["LocalServices", "ServeError", "check_port", "free_port", "serve", "server_config", "server_env"]

#: How long PostgreSQL, Redis and the server get to answer at start.
START_SECONDS = 60.0
#: glibc malloc arenas for the server's processes. With glibc's default (8 per core) the server's RSS grew with
#: every distinct 12-Mpx photo (441 -> 1315 MB over 100 photos, still growing); with 2 it stayed at 798-826 MB
#: from the 10th photo to the 100th (benchmarks/serving.py, docs/serving.md). An operator's own setting wins.
MALLOC_ARENAS = "2"


class ServeError(LookCloserError):
    """The production server cannot start or stopped: the message names what (a port, a URI, a binary)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """ServeError when `port` cannot be listened on at `host` (taken, or not this machine's address)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another server on it? "
                             "pick another --port)") from None


def _binary(name: str) -> str | None:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _wait(what: str, ready: Callable[[], bool], process: subprocess.Popen | None, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if process is not None and process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise ServeError(f"{what} did not start (see {log}){': ' + tail[0][:200] if tail else ''}")
        time.sleep(0.2)


def _postgres_ready(uri: str) -> bool:
    import psycopg  # noqa: PLC0415

    try:
        psycopg.connect(uri, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def _redis_ready(uri: str) -> bool:
    import redis  # noqa: PLC0415

    try:
        return bool(redis.Redis.from_url(uri, socket_connect_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def check_uris(database_uri: str | None, redis_uri: str | None) -> None:
    """ServeError naming the URI that does not answer (those the user gave: they must be up already)."""
    if database_uri and not _postgres_ready(database_uri):
        raise ServeError(f"PostgreSQL at DATABASE_URI={_redacted(database_uri)} does not answer (is it running, and "
                         "may this user connect?)")
    if redis_uri and not _redis_ready(redis_uri):
        raise ServeError(f"Redis at REDIS_URI={_redacted(redis_uri)} does not answer (is it running?)")


def _redacted(uri: str) -> str:
    """The URI without its password."""
    head, at, tail = uri.rpartition("@")
    if not at:
        return uri
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}:***@{tail}" if ":" in credentials else uri


@dataclass
class LocalServices:
    """PostgreSQL and Redis started for the user, their data under `data_dir` (kept between starts)."""

    data_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    database_uri: str | None = None
    redis_uri: str | None = None

    def start_postgres(self) -> str:
        initdb, postgres = _binary("initdb"), _binary("postgres")
        if initdb is None or postgres is None:
            raise ServeError("PostgreSQL is not installed (apt-get install postgresql, or `make system-deps`); or "
                             "set DATABASE_URI to a server of yours")
        root = self.data_dir / "postgres"
        data, sockets = root / "data", root / "sockets"
        sockets.mkdir(parents=True, exist_ok=True)
        as_owner = self._as_postgres(root)
        if not (data / "PG_VERSION").exists():
            done = subprocess.run([*as_owner, initdb, "-D", str(data), "-A", "trust", "-U", "lookcloser"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise ServeError(f"initdb failed for {data}: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        port = free_port()
        log = root / "server.log"
        process = subprocess.Popen([*as_owner, postgres, "-D", str(data), "-p", str(port), "-k", str(sockets),
                                    "-h", "127.0.0.1"], stdout=log.open("a"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        uri = f"postgresql://lookcloser@127.0.0.1:{port}/postgres"
        _wait("PostgreSQL", lambda: _postgres_ready(uri), process, log)
        self.database_uri = uri
        return uri

    def start_redis(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise ServeError("Redis is not installed (apt-get install redis-server, or `make system-deps`); or set "
                             "REDIS_URI to a server of yours")
        root = self.data_dir / "redis"
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = root / "server.log"
        # append-only file: the queue's state survives a restart as the threads do
        process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
                                    "--appendonly", "yes", "--save", ""], stdout=log.open("a"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        uri = f"redis://127.0.0.1:{port}"
        _wait("Redis", lambda: _redis_ready(uri), process, log)
        self.redis_uri = uri
        return uri

    @staticmethod
    def _as_postgres(root: Path) -> list[str]:
        """PostgreSQL refuses to run as root: as root, the data belongs to (and the server runs as) `postgres`."""
        if os.geteuid() != 0:
            return []
        for parent in root.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise ServeError(f"PostgreSQL runs as the user postgres, which cannot enter {parent} (no access for "
                                 "others): choose a --data-dir it can reach, or chmod o+x that folder")
        for path in (root, *root.rglob("*")):
            shutil.chown(path, "postgres")
        return ["runuser", "-u", "postgres", "--"]

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def server_config(data_dir: Path) -> Path:
    """The server's langgraph.json in `data_dir`: the served graph of this installation (its operator reads
    LOOKCLOSER_VLM / LOOKCLOSER_CONFIG), with the runtime's own PostgreSQL checkpointer (not `langgraph dev`'s
    in-memory one)."""
    import importlib.util  # noqa: PLC0415

    def origin(module: str) -> str:  # the module's file: importing lookcloser.graphs.served reads the operator
        return str(importlib.util.find_spec(module).origin)

    path = data_dir / "langgraph.json"
    config = {"dependencies": ["."], "graphs": {"lookcloser": f"{origin('lookcloser.graphs.served')}:graph"},
              "http": {"app": f"{origin('lookcloser.runtime.context_guard')}:app"}}  # unknown context keys refused
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def _check_operator() -> None:
    """The operator's setup, read now as the server will read it: a bad LOOKCLOSER_CONFIG or LOOKCLOSER_PUBLIC_URL
    stops us here."""
    from lookcloser.runtime.context_guard import public_url  # noqa: PLC0415
    from lookcloser.runtime.serving import Operator  # noqa: PLC0415

    Operator.from_env()
    try:
        public_url()
        image_cache_bytes()
    except ValueError as exc:
        raise ServeError(str(exc)) from None


def image_cache_bytes() -> int:
    """The decoded-image cache bound of each server process (LOOKCLOSER_IMAGE_CACHE_MB, default 1024 MB; ValueError
    naming a bad value): a process's photos decoded beyond it are dropped, least recently used first."""
    from lookcloser.imaging.store import _max_bytes_from_env  # noqa: PLC0415

    return _max_bytes_from_env()


def image_store_setting(database_uri: str) -> str:
    """Where the server keeps the photos clients send (`lookcloser.imaging.uploads`): LOOKCLOSER_IMAGE_STORE when
    the operator set it, else a table in the server's own database, so every server process and replica shares it;
    the table is made now, so a database that refuses it stops the server here."""
    from lookcloser.core.errors import ImageError  # noqa: PLC0415
    from lookcloser.imaging.uploads import PostgresImages  # noqa: PLC0415

    setting = os.environ.get("LOOKCLOSER_IMAGE_STORE", "").strip() or database_uri
    try:
        if setting.startswith(("postgresql://", "postgres://")):
            PostgresImages(setting).get("0" * 32)  # creates the table
        else:  # a folder (shared by this machine's server processes); the server runs in --data-dir: made absolute
            setting = str(Path(setting).resolve())
            Path(setting).mkdir(parents=True, exist_ok=True)
    except (ImageError, OSError) as exc:
        raise ServeError(f"the image store LOOKCLOSER_IMAGE_STORE={_redacted(setting)} cannot be used: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    except Exception as exc:  # noqa: BLE001  (psycopg's errors: a database that refuses CREATE TABLE)
        raise ServeError(f"the image store in {_redacted(setting)} cannot be set up: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}") from None
    return setting


def server_env(environ: Mapping[str, str], image_store: str) -> dict[str, str]:
    """The server's environment: the operator's, the image store's setting, and MALLOC_ARENA_MAX (`MALLOC_ARENAS`)
    unless the operator set it."""
    env = {**environ, "LOOKCLOSER_IMAGE_STORE": image_store}
    env.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    return env


def serve(*, host: str = "127.0.0.1", port: int = 2024, data_dir: Path = Path(".lookcloser-serve"), workers: int = 1,
          database_uri: str | None = None, redis_uri: str | None = None, jobs_per_worker: int | None = None,
          on_ready: Callable[[str, str, str], None] | None = None) -> int:
    """Run the production server until interrupted; its exit status. `on_ready(url, database_uri, redis_uri)` is
    called once everything answers."""
    if shutil.which("langhost") is None and not _module("langhost"):
        raise ServeError("the production server needs langhost and langgraph-runtime-pg: `make install`, or pip "
                         "install --no-deps langgraph-runtime-pg==0.11.1.post1 langhost==0.11.1.post1 and "
                         "'lookcloser[serve]' (docs/serving.md says why --no-deps)")
    check_port(host, port)
    _check_operator()
    check_uris(database_uri, redis_uri)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    local = LocalServices(data_dir)
    server: subprocess.Popen | None = None
    stopping = {"signal": None}

    def stop(signum: int, _frame: object) -> None:
        stopping["signal"] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        database_uri = database_uri or local.start_postgres()
        redis_uri = redis_uri or local.start_redis()
        config = server_config(data_dir)
        env = server_env(os.environ, image_store_setting(database_uri))
        command = [sys.executable, "-m", "langhost", "serve", "--host", host, "--port", str(port), "-c", str(config),
                   "--database-uri", database_uri, "--redis-uri", redis_uri, "--workers", str(workers),
                   "--no-browser"]
        if jobs_per_worker is not None:
            command += ["--n-jobs-per-worker", str(jobs_per_worker)]
        log = data_dir / "server.log"
        server = subprocess.Popen(command, cwd=data_dir, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        (data_dir / "server.pid").write_text(f"{server.pid}\n")  # its process group: the server and its workers
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        _wait(f"the server on {url}", lambda: _answers(url), server, log)
        if on_ready is not None:
            on_ready(url, database_uri, redis_uri)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        local.stop()


def _module(name: str) -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec(name) is not None


def _answers(url: str) -> bool:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
