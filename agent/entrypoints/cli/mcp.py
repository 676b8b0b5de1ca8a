"""`lookcloser mcp`: serve ask, find and read_text to MCP clients, over stdio or streamable HTTP.

The MCP SDK is an optional extra (`lookcloser[mcp]`): without it the command says which pip command adds
it (`NotInstalled`). A --port that cannot be listened on is refused before any model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lookcloser.core.errors import InputError, LookCloserError
from lookcloser.entrypoints.cli.output import _note
from lookcloser.entrypoints.cli.params import (CONFIG_HELP, TOOL_HELP, VLM_HELP, _image_folder, _parameter,
                                               _settings, _trace_folder)


class NotInstalled(LookCloserError):
    """An optional extra a command needs is not installed; the message says which pip command adds it."""


def mcp_command(
    image_dir: Optional[list[Path]] = typer.Option(None, "--image-dir", parser=_parameter(_image_folder), metavar="DIR",
                                                   help="A folder whose image files clients may name by path (repeat); "
                                                        "without it clients send images as data URLs or base64 only."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Serve streamable HTTP on this port (at /mcp) instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="With --port: the address to listen on (no authentication: "
                                                         "keep it local or put a proxy in front)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help=VLM_HELP),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    trace_dir: Optional[Path] = typer.Option(None, "--trace-dir", parser=_parameter(_trace_folder), metavar="DIR",
                                             help="Write a trace of each tool call here (default: $LOOKCLOSER_TRACE_DIR, else none)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds for each call's question or search; default: no limit."),
) -> None:
    """Serve ask, find and read_text to MCP clients (Claude Desktop, IDE agents): over stdio, or streamable
    HTTP with --port. One agent answers every call (models load once)."""
    if timeout is not None and not (0 < timeout < float("inf")):
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    if port is None and host != "127.0.0.1":
        raise InputError("--host goes with --port (the address of the HTTP server); stdio needs neither")
    if port is not None:
        _check_listen(host, port)
    settings = _settings(config_file, tool, vlm, timeout).agent_kwargs()
    try:
        from lookcloser.entrypoints.mcp_server import serve  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types"):
            raise
        raise NotInstalled("`lookcloser mcp` needs the MCP SDK, which is not installed: pip install 'lookcloser[mcp]'") from None
    from lookcloser.agent import Agent  # noqa: PLC0415

    folders = list(image_dir or [])
    if settings["config"].image_dir:  # a --config file's [config] image_dir is one more folder
        folders.append(Path(settings["config"].image_dir))
    agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
    where = f"http://{host}:{port}/mcp" if port is not None else "stdio"
    _note(f"lookcloser MCP server on {where}; image folders: {', '.join(map(str, folders)) or 'none (data URLs and base64 only)'}")
    try:
        serve(agent, folders, port=port, host=host)
    except KeyboardInterrupt:
        pass


def _check_listen(host: str, port: int) -> None:
    """--host/--port can be listened on (a port in use is one line now, not a server log after the models load)."""
    import socket  # noqa: PLC0415

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
