"""`python -m lookcloser.entrypoints.cli` runs the `lookcloser` command."""

from lookcloser.entrypoints.cli import main

main()
