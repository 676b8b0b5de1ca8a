"""Tiling OCR with the text cue: the plain way to read a photo, as fast as this runtime allows.

`tile_grid` is the SAHI-style grid plain tiling uses (square tiles, overlap, the last row and column
shifted back inside the photo). `read_tiles` gives each tile one plain look (`TextCue(plain=True)`:
RapidOCR's own pass on it: a 1024-px tile is seen as is, one detector call), so it reads what plain
tiling reads, except that a line a tile shares with an earlier one (the overlap) is not recognised
again: a box matching a whole line already read surely (IoU >= the cue's REUSE_IOU, read at >= its
REUSE_SCORE) takes that read.

Measured here (2 shared cores, onnxruntime, PP-OCRv6 small, 1024-px tiles) before choosing: four
tiles as one batch took 1.4-1.8x the time of four single calls, two batches of two 1.15x, and two
threads of one core each 1.2x; so tiles go one call each on the cue's threads (both cores).
"""

from __future__ import annotations

from PIL import Image

from lookcloser.core.geometry import boxes_intersect
from lookcloser.core.types import Box, Detection
from lookcloser.tools.vstar.read_all import _cut

__all__ = ["read_tiles", "tile_grid"]


def tile_grid(width: int, height: int, tile: int = 1024, overlap: float = 0.25) -> list[Box]:
    """Tiles covering the photo, `tile` px a side (smaller only where the photo is), overlapping by
    `overlap` of a tile; the last row and column shifted back inside the photo."""
    if tile < 32 or not 0 <= overlap < 1:
        raise ValueError(f"tiles need tile >= 32 px and 0 <= overlap < 1, got tile={tile}, overlap={overlap}")
    stride = max(1, int(tile * (1 - overlap)))

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        return sorted(set(list(range(0, length - tile, stride)) + [length - tile]))

    return [Box(x1=x, y1=y, x2=min(x + tile, width), y2=min(y + tile, height))
            for y in starts(height) for x in starts(width)]


def read_tiles(image: Image.Image, cue, tiles: list[Box], known: list[Detection] | None = None
               ) -> list[tuple[Detection, bool, int]]:
    """Every line read in `tiles` (image px) as (line, cut by an inner tile border, index of its tile). `known`: lines
    read before (image px, whole) and the whole lines earlier tiles read are handed to the cue, which reuses the sure
    ones (`TextCue` reuse_reads)."""
    width, height = image.size
    done = list(known or [])
    lines: list[tuple[Detection, bool, int]] = []
    for index, tile in enumerate(tiles):
        corners = tuple(int(v) for v in (tile.x1, tile.y1, tile.x2, tile.y2))
        patch = image if corners == (0, 0, width, height) else image.crop(corners)
        inside = [Detection(box=d.box.shift(-tile.x1, -tile.y1), score=d.score, text=d.text)
                  for d in done if boxes_intersect(d.box, tile)]
        output = cue(patch, "text", known=inside, plain=True)
        for det in output.detections:
            line = Detection(box=det.box.shift(tile.x1, tile.y1).clip(width, height), score=det.score, text=det.text)
            cut = _cut(line.box, tile, width, height)
            lines.append((line, cut, index))
            if not cut and line.text:
                done.append(line)
    return lines

