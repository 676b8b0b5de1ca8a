"""Start-up time of the `lookcloser` command: help, and the errors that must come before any model loads.

Each command runs as a fresh process (the installed `lookcloser` script next to this Python, else
`python -m lookcloser.entrypoints.cli`) `--repeat` times; the table shows the best and the median wall-clock
seconds and the exit status. Run it on an idle machine:

    .venv/bin/python benchmarks/cli_startup.py --repeat 5
    .venv/bin/python benchmarks/cli_startup.py --command "/path/to/other/venv/bin/lookcloser"

The last row times `python -c "import lookcloser.entrypoints.cli"`: the import cost every command pays (left
out with --command, which times another installation).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def lookcloser_command() -> list[str]:
    script = Path(sys.executable).parent / "lookcloser"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lookcloser.entrypoints.cli"]


def cases(workdir: Path) -> list[tuple[str, list[str]]]:
    image = workdir / "tiny.png"
    # A valid 1x1 PNG written without Pillow, so the benchmark itself stays light.
    image.write_bytes(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cf"
        "c0000003010100c9fe92ef0000000049454e44ae426082"))
    blocker = workdir / "a_file"
    blocker.write_text("not a directory")
    return [
        ("lookcloser --help", ["--help"]),
        ("lookcloser trace --help", ["trace", "--help"]),
        ("ask: missing image file", ["ask", "/nonexistent.jpg", "q"]),
        ("find: missing image file", ["find", "/nonexistent.jpg", "text"]),
        ("find: empty TARGET", ["find", str(image), ""]),
        ("ask: --save-vis with a bad extension", ["ask", str(image), "q", "--save-vis", str(workdir / "v.gif")]),
        ("ask: --trace-dir is a file", ["ask", str(image), "q", "--trace-dir", str(blocker)]),
    ]


def best_of(command: list[str], repeat: int) -> tuple[float, float, int]:
    times, code = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        code = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (best and median reported)")
    parser.add_argument("--command", help="how to start lookcloser, e.g. to time another checkout "
                                          "(default: the lookcloser script next to this Python)")
    args = parser.parse_args()
    base = shlex.split(args.command) if args.command else lookcloser_command()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(name, *best_of(base + argv, args.repeat)) for name, argv in cases(Path(tmp))]
    if not args.command:  # the import row times this Python's lookcloser, not another checkout's
        rows.append(("python -c 'import lookcloser.entrypoints.cli'",
                     *best_of([sys.executable, "-c", "import lookcloser.entrypoints.cli"], args.repeat)))
    width = max(len(name) for name, *_ in rows)
    print(f"{'command':<{width}}  best of {args.repeat} (s)  median (s)  exit")
    for name, best, median, code in rows:
        print(f"{name:<{width}}  {best:>15.3f}  {median:>10.3f}  {code:>4}")


if __name__ == "__main__":
    main()
