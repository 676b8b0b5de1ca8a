"""How to read a photo's text: tile it, search it, or tile only what the search's first look marks.

A cost model, per photo, in one unit: detector input megapixels (Mpx), the cost that dominates on a CPU.
Recognition is left out of the comparison: both ways recognise about as many crops (one run, reads reused:
plain tiling 604 / 324 / 142 on the tuned / untuned / heldout splits, the search 541 / 291 / 147). Plain tiling's cost is known from the photo's size
alone: its tiles (`tiles.tile_grid`, 1024 px, 25% overlap). The search's is known only after its first
look, the root (a plain look at a photo up to 2000 px, a native one up to `native_max_pixels`, else a
coarse one):

* before any look: if the root look alone would cost more than tiling, **tile**. (For a photo of one
  tile the root *is* that tile's plain pass, so the search starts: the same cost.)
* after the root look of a photo of one tile: plain tiling is that one pass, so any closer look costs
  more than tiling and would read what tiling cannot: stop (**root**, recorded as mode "root"; on
  the held-out split closer looks read nothing more on any of its 10 one-tile photos). `mode="search"`
  still looks closer on such a photo.
* after the root look, "how much of the map is text" decides: the rest of the search is estimated
  from the views the read-all policy queued for the unread text the root's map shows (each at the
  scale it would be seen, `view_cost`), times `DEPTH_FACTOR` for the looks those lead to. If root +
  rest stays within tiling's cost, **search** on. Otherwise tile only the tiles holding those views
  (**tile_marked**) when that costs less than the rest of the search and the root saw the photo more
  coarsely than a tile's plain pass sees it (else the tiles would see nothing the root did not: a
  plain or native root, up to `native_max_pixels`); else search on (the root is spent either way).

`mode` forces one way: "search" (the V* read-all search, no plan), "tile" (plain tiling with the
fast path), "tile_marked" (root look, then the marked tiles), "auto" (the model above, default).
Every decision and its numbers are recorded (`TextPlan.record`, in `Finding.search["plan"]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from PIL import Image

from lookcloser.core.geometry import boxes_intersect
from lookcloser.core.types import Box
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.ppocr import plain_scale
from lookcloser.tools.vstar.read_all import ReadAll, dedupe_lines
from lookcloser.tools.vstar.search import Expansion, Look, SearchResult, search
from lookcloser.tools.vstar.tiles import read_tiles, tile_grid

__all__ = ["DEPTH_FACTOR", "MODES", "TextMode", "TextPlan", "choose_after_root", "read_text", "view_cost"]

TextMode = Literal["auto", "search", "tile", "tile_marked"]
MODES: tuple[str, ...] = get_args(TextMode)
#: Close looks lead to more: the rest of the search costs this much more than the views the root queued
#: (measured on the 11 tuned photos with a native root: rest / first-level views 0.89-1.27, mean 1.03;
#: on 8 untuned ones 0.87-2.42, mean 1.29; a view too large for a native look: `view_cost`).
DEPTH_FACTOR = 1.1


@dataclass
class TextPlan:
    """What the cost model decided for one photo, with its numbers (Mpx). `mode`: "search", "tile",
    "tile_marked", or "root" (the root look was the whole read: a photo of one tile)."""

    mode: str
    asked: str
    tiling_mpx: float
    tiles: int
    root_mpx: float | None = None
    rest_mpx: float | None = None
    marked_tiles: int | None = None
    marked_mpx: float | None = None
    text_fraction: float | None = None
    root_scale: float | None = None  # detector px per photo px of the root look
    tile_scale: float | None = None  # the same for a tile's plain pass
    marked: list[Box] = field(default_factory=list, repr=False)

    def record(self) -> dict[str, Any]:
        keys = ("mode", "asked", "tiling_mpx", "tiles", "root_mpx", "rest_mpx", "marked_tiles", "marked_mpx",
                "text_fraction", "root_scale", "tile_scale")
        return {k: (round(v, 3) if isinstance(v, float) else v) for k in keys if (v := getattr(self, k)) is not None}


def read_text(image: Image.Image, cue, config: SearchConfig, phrase: str = "text", mode: str = "auto",
              tile: int = 1024, overlap: float = 0.25) -> tuple[SearchResult, TextPlan]:
    """Read every line of text in `image` the way `mode` (or, for "auto", the cost model) says."""
    if mode not in MODES:
        raise ValueError(f"text mode must be one of {', '.join(MODES)}, got {mode!r}")
    width, height = image.size
    grid = tile_grid(width, height, tile, overlap)
    tiling = _tiles_mpx(cue, grid)
    plan = TextPlan(mode=mode, asked=mode, tiling_mpx=tiling, tiles=len(grid))
    if mode == "search":
        strategy = ReadAll(cue, config, image.size)
        return search(image, phrase, cue, config, strategy=strategy), plan
    root = cue.look_pixels(width, height, plain=True) / 1e6
    plan.root_mpx = root
    if mode == "tile" or (mode == "auto" and root > tiling):
        plan.mode = "tile"
        return _tiled(image, phrase, cue, config, grid, plan), plan

    def after_root(look: Look, expansion: Expansion) -> Expansion | None:
        views = [view for _, view, _ in expansion.children]
        rest = DEPTH_FACTOR * sum(view_cost(cue, v) for v in views) / 1e6
        marked = [t for t in grid if any(boxes_intersect(t, v) for v in views)]
        plan.rest_mpx, plan.marked, plan.marked_tiles = rest, marked, len(marked)
        plan.marked_mpx = _tiles_mpx(cue, marked)
        plan.root_scale = float(look.output.extra.get("scale", 1.0))
        plan.tile_scale = min(plain_scale(int(t.width), int(t.height)) for t in grid)
        plan.text_fraction = float((expansion.guide > config.read_text_threshold).mean()) if expansion.guide.size else 0.0
        plan.mode = "tile_marked" if mode == "tile_marked" else choose_after_root(plan)
        return None if plan.mode in ("tile_marked", "root") else expansion

    strategy = ReadAll(cue, config, image.size, after_root=after_root)
    result = search(image, phrase, cue, config, strategy=strategy)
    if plan.mode != "tile_marked" or not plan.marked:
        if plan.mode == "auto":
            plan.mode = "search"  # the root was a leaf or queued nothing: the search is done
        return result, plan
    lines = list(strategy.lines)
    known = [line for line, cut in lines if not cut]
    looks = list(strategy.look_of)
    first = max(looks, default=0) + 1
    for line, cut, tile_index in read_tiles(image, cue, plan.marked, known=known):
        lines.append((line, cut))
        looks.append(first + tile_index)
    keep = [i in strategy.plain for i in range(len(strategy.lines))] + [not c for _, c in lines[len(strategy.lines):]]
    result.lines = dedupe_lines([d for d, _ in lines], config.read_dedupe_overlap, cut=[c for _, c in lines], keep=keep,
                                looks=looks)
    result.found, result.best = bool(result.lines), result.lines[0] if result.lines else None
    return result, plan


def choose_after_root(plan: TextPlan) -> str:
    """The cost model's choice once the root look is spent: "root" (stop) for a photo of one tile when
    going on would cost more than tiling; "search" on while root + the rest of the search stays within
    tiling's cost, while going on costs less than tiling the marked tiles, or when the root saw the photo
    at least as closely as the tiles would; else "tile_marked"."""
    rest, marked = plan.rest_mpx or 0.0, plan.marked_mpx or 0.0
    if plan.tiles == 1 and (plan.root_mpx or 0.0) + rest > plan.tiling_mpx:
        return "root"
    if (plan.root_mpx or 0.0) + rest <= plan.tiling_mpx or rest <= marked:
        return "search"
    if plan.root_scale is not None and plan.tile_scale is not None and plan.root_scale >= 0.95 * plan.tile_scale:
        return "search"
    return "tile_marked"


def view_cost(cue, view: Box) -> float:
    """Detector px a queued view will cost: its look, plus, when it is too large to be seen natively
    (a coarse look), its own area once more for the native looks at its children."""
    cost = float(cue.look_pixels(int(view.width), int(view.height)))
    if view.area > getattr(cue, "native_max_pixels", float("inf")):
        cost += view.area
    return cost


def _tiled(image: Image.Image, phrase: str, cue, config: SearchConfig, grid: list[Box], plan: TextPlan) -> SearchResult:
    """Plain tiling through the fast path, as a SearchResult (no search steps)."""
    import time

    start = time.perf_counter()
    lines = read_tiles(image, cue, grid)
    kept = dedupe_lines([d for d, _, _ in lines], config.read_dedupe_overlap, cut=[c for _, c, _ in lines],
                        keep=[not c for _, c, _ in lines], looks=[t for _, _, t in lines])
    return SearchResult(phrase=phrase, mode="read_all", cue=cue.name, image_size=image.size,
                        min_patch_size=config.min_patch_size(*image.size), best=kept[0] if kept else None,
                        found=bool(kept), stop_reason="exhausted", steps=[], cue_calls=len(grid), context_calls=0,
                        seconds=time.perf_counter() - start, lines=kept)


def _tiles_mpx(cue, tiles: list[Box]) -> float:
    """Detector input Mpx of one plain look at each tile."""
    return sum(cue.look_pixels(int(t.width), int(t.height), plain=True) for t in tiles) / 1e6
