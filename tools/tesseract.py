"""OCR role backed by the Tesseract binary (Debian `tesseract-ocr`; `make test` installs it when root).

No Python binding: the image goes to `tesseract stdin stdout ... tsv` as PNG and the TSV answer
(one row per word, with its block / paragraph / line numbers) is grouped back into lines. Each
line is one Detection: the words joined by spaces, the mean word confidence / 100 as `score`, the
union of the word boxes in the pixels of the image given. One subprocess per `read` (tens of ms
for a small crop); nothing stays loaded, so it is safe to share across threads.

Tesseract reads best with text 20-40 px tall on a clean background: on a large photo it misses
small text, which is why text targets go through the V* localizer first (it finds the lines and
hands this reader each line region, enlarged; see docs/tools.md, "OCR experts").
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from typing import Annotated, Any

from PIL import Image
from pydantic import Field

from lookcloser.core.errors import ModelLoadError
from lookcloser.core.types import Box, Detection

__all__ = ["TesseractOCR", "parse_tsv"]

INSTALL_HINT = "apt-get install tesseract-ocr (Debian/Ubuntu; `make system-deps` does it when root)"


class TesseractOCR:
    """Reads all text lines in an image with Tesseract: `read(image) -> list[Detection]`.

    lang: Tesseract language(s), e.g. "eng" or "eng+deu" (each needs its `tesseract-ocr-LANG` package).
    psm: page segmentation mode: "auto" (default) is 6 (one uniform block) for an image at most
        `block_max_height` px tall (a line region, as the V* localizer hands over: mode 3 reads
        nothing on many such crops) and 3 (automatic page layout) for anything larger; or a number
        (3 = automatic; 6 = one block; 7 = one line; 11 = sparse text).
    min_score: lines whose mean word confidence (0-1) is below this are dropped.
    binary: the executable (name on PATH or a path). threads: OMP_THREAD_LIMIT for each call
    (1 is fastest for small crops, and several reads may run in parallel).
    timeout: seconds one call may take. config: extra `-c VAR=VALUE` settings.
    """

    def __init__(self, lang: str = "eng", psm: int | str = "auto", block_max_height: Annotated[int, Field(ge=1)] = 160,
                 min_score: Annotated[float, Field(ge=0, le=1)] = 0.3, binary: str = "tesseract", threads: Annotated[int, Field(ge=1)] = 1,
                 timeout: Annotated[float, Field(gt=0, le=86_400)] = 60.0,
                 config: dict[str, Any] | None = None) -> None:
        self.name = "tesseract"
        self.lang = str(lang)
        if psm != "auto" and not str(psm).isdigit():
            raise ValueError(f"psm must be 'auto' or a Tesseract page segmentation mode number, got {psm!r}")
        self.psm = psm if psm == "auto" else int(psm)
        self.block_max_height = int(block_max_height)
        self.min_score = float(min_score)
        self.threads = int(threads)
        self.timeout = float(timeout)
        self.config = dict(config or {})
        path = shutil.which(binary)
        if path is None:
            raise ModelLoadError(f"the Tesseract binary '{binary}' was not found on PATH: {INSTALL_HINT}")
        self.binary = path
        self._version: str | None = None
        self._lock = threading.Lock()
        self._check_languages()

    def _run(self, args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ, OMP_THREAD_LIMIT=str(max(1, self.threads)))
        try:
            return subprocess.run([self.binary, *args], input=data, capture_output=True, timeout=self.timeout,
                                  env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"tesseract took longer than {self.timeout:g} s (timeout setting)") from exc
        except OSError as exc:
            raise ModelLoadError(f"could not run '{self.binary}': {exc}; {INSTALL_HINT}") from exc

    def _check_languages(self) -> None:
        listed = self._run(["--list-langs"])
        text = (listed.stdout + listed.stderr).decode("utf-8", "replace")
        if listed.returncode != 0:
            raise ModelLoadError(f"'{self.binary} --list-langs' failed: {text.strip()[:200]}; {INSTALL_HINT}")
        available = {line.strip() for line in text.splitlines()[1:] if line.strip()}
        missing = [lang for lang in self.lang.split("+") if lang not in available]
        if missing:
            packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
            raise ModelLoadError(f"Tesseract has no language data for {', '.join(missing)} (installed: "
                                 f"{', '.join(sorted(available)) or 'none'}): apt-get install {packages}, "
                                 f"or choose another lang")

    @property
    def version(self) -> str:
        if self._version is None:
            out = self._run(["--version"])
            first = (out.stdout + out.stderr).decode("utf-8", "replace").strip().splitlines()
            self._version = first[0] if first else "tesseract"
        return self._version

    def describe(self) -> dict[str, Any]:
        return {"tool": self.name, "backend": self.version, "binary": self.binary, "lang": self.lang,
                "psm": self.psm, "device": "cpu"}

    def page_mode(self, image: Image.Image) -> int:
        """The --psm used for this image."""
        if self.psm == "auto":
            return 6 if image.height <= self.block_max_height else 3
        return int(self.psm)

    def read(self, image: Image.Image) -> list[Detection]:
        if image.width < 1 or image.height < 1:
            return []
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        args = ["stdin", "stdout", "-l", self.lang, "--psm", str(self.page_mode(image))]
        for key, value in self.config.items():
            args += ["-c", f"{key}={value}"]
        done = self._run([*args, "tsv"], buffer.getvalue())
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"tesseract failed (exit {done.returncode}): {message[-1] if message else 'no message'}")
        lines = parse_tsv(done.stdout.decode("utf-8", "replace"))
        return [line.model_copy(update={"box": line.box.clip(image.width, image.height)})
                for line in lines if line.score >= self.min_score]


def parse_tsv(tsv: str) -> list[Detection]:
    """Tesseract's TSV (one row per word, level 5) grouped into lines (block, paragraph, line),
    in Tesseract's reading order; score = mean word confidence / 100."""
    rows = tsv.splitlines()
    if not rows:
        return []
    header = rows[0].split("\t")
    try:
        col = {name: header.index(name) for name in
               ("level", "block_num", "par_num", "line_num", "left", "top", "width", "height", "conf", "text")}
    except ValueError:
        raise RuntimeError(f"unexpected tesseract TSV header: {rows[0][:120]!r}") from None
    grouped: dict[tuple[int, int, int], list[tuple[Box, float, str]]] = {}
    for row in rows[1:]:
        cells = row.split("\t")
        if len(cells) < len(header) or cells[col["level"]] != "5":
            continue
        text = cells[col["text"]].strip()
        conf = float(cells[col["conf"]])
        if not text or conf < 0:
            continue
        x, y = float(cells[col["left"]]), float(cells[col["top"]])
        box = Box(x1=x, y1=y, x2=x + float(cells[col["width"]]), y2=y + float(cells[col["height"]]))
        key = (int(cells[col["block_num"]]), int(cells[col["par_num"]]), int(cells[col["line_num"]]))
        grouped.setdefault(key, []).append((box, conf / 100.0, text))
    lines = []
    for words in grouped.values():
        box = Box(x1=min(b.x1 for b, _, _ in words), y1=min(b.y1 for b, _, _ in words),
                  x2=max(b.x2 for b, _, _ in words), y2=max(b.y2 for b, _, _ in words))
        score = sum(c for _, c, _ in words) / len(words)
        lines.append(Detection(box=box, score=min(1.0, max(0.0, score)), text=" ".join(t for _, _, t in words)))
    return lines
