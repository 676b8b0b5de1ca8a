"""The `lookcloser` command (entry point `lookcloser.entrypoints.cli:main`)."""

from lookcloser.entrypoints.cli.main import app, main

__all__ = ["app", "main"]
