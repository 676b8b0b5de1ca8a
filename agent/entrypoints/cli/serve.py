"""`lookcloser serve`: the production server (the stock LangGraph server on PostgreSQL + Redis), started here.

The work is in `lookcloser.entrypoints.production`; this module checks the arguments and prints where the server
is. Bad setups (a port taken, Postgres or Redis unreachable or missing, a bad LOOKCLOSER_CONFIG) are one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from lookcloser.core.errors import InputError
from lookcloser.entrypoints.cli.errors import CommandFailed
from lookcloser.entrypoints.cli.output import _note


def serve_command(
    port: int = typer.Option(2024, "--port", min=1, max=65535, help="The server's port."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on (0.0.0.0: every interface; "
                                                         "no authentication: put a proxy in front)."),
    data_dir: Path = typer.Option(Path(".lookcloser-serve"), "--data-dir", metavar="DIR",
                                  help="Where the local PostgreSQL and Redis keep their data (threads survive a "
                                       "restart), and the server's log."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes (each runs queued runs)."),
    jobs_per_worker: int = typer.Option(10, "--jobs-per-worker", min=1, max=256,
                                        help="Runs one process works on at once (langgraph dev's 10; the runtime's "
                                             "own default is 1: twenty questions at once would wait in line)."),
) -> None:
    """Run the production server: the stock LangGraph server on PostgreSQL + Redis (started here when DATABASE_URI
    / REDIS_URI are not set), serving the agent graph with the operator's LOOKCLOSER_VLM / LOOKCLOSER_CONFIG.
    Ctrl-C stops it and what it started."""
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir} is a file, not a folder")
    from lookcloser.entrypoints.production import image_cache_bytes, serve  # noqa: PLC0415

    def ready(url: str, database_uri: str, redis_uri: str) -> None:
        _note(f"serving on {url} (PostgreSQL {database_uri}, Redis {redis_uri}; {workers} worker process"
              f"{'es' if workers != 1 else ''}, decoded photos kept up to {image_cache_bytes() >> 20} MB each "
              f"(LOOKCLOSER_IMAGE_CACHE_MB); log: {data_dir / 'server.log'}); Ctrl-C stops it")

    status = serve(host=host, port=port, data_dir=data_dir, workers=workers, jobs_per_worker=jobs_per_worker,
                   database_uri=os.environ.get("DATABASE_URI") or None, redis_uri=os.environ.get("REDIS_URI") or None,
                   on_ready=ready)
    if status not in (0, -15):
        raise CommandFailed(f"the server stopped with status {status}; see {data_dir / 'server.log'}")
