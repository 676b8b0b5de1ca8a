"""The V* best-first heatmap search (SEAL, arXiv 2312.14135), training-free and cue-agnostic.

One global priority queue holds the whole frontier. Each visited patch is shown to a cue model,
which returns a heatmap over the patch and scored detections. Children get the official
ancestor-weighted priority, so a deep branch is dropped as soon as a shallower patch elsewhere
looks better. What a visited patch leads to is the caller's `Strategy`; this module knows none:

* `find_one` (objects, find_one.py): stop at the first confident detection, else accept the best
  one seen when the queue runs dry.
* `read_all` (text, read_all.py): keep expanding while the map shows text not yet read legibly;
  return every line read (deduplicated).
* `ZoomEye` (zoomeye.py): rank by the VLM's yes/no confidences (`Expansion.priorities`), stop when
  the question looks answerable.

Pure: no model is loaded, the image is only cropped. Boxes in the result are original-image pixels.
Each visited patch is a LangChain chain run ("vstar.step", metadata `SEARCH_STEP`), so it nests under
whatever run called the search and reaches tracers and the agent's counters through langchain-core's
callbacks, as any runnable does; the cue's own calls (VLM, tools) nest under the step.
"""

from __future__ import annotations

import heapq
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from langchain_core.runnables import RunnableLambda
from PIL import Image

from lookcloser.core.deadline import expired
from lookcloser.core.geometry import is_leaf, split_box
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel, CueOutput
from lookcloser.core.types import SEARCH_STEP, Box, Detection

__all__ = [
    "Expansion", "Look", "Node", "Outcome", "SearchMode", "SearchResult", "SearchStep", "StopReason",
    "check_heatmap", "child_priority", "rect_mass", "search", "split_patch",
]

SearchMode = Literal["find", "read_all"]
StopReason = Literal["confident", "best_seen", "exhausted", "budget"]

#: Side of the small uint8 copy of each step's heatmap kept for visualisation.
_THUMB_SIDE = 128


@dataclass
class SearchStep:
    """One visited patch. `box` and `detections` are original-image pixels."""

    order: int
    level: int
    box: Box
    priority: float
    peak: float
    strong: bool
    detections: list[Detection]
    context: str  # "not_needed" | "skipped" | "no_prior" | "object: PHRASE" | "grid: CELL" | "not_used_in_read_all"
    leaf: bool
    children: int = 0
    heatmap: np.ndarray | None = field(default=None, repr=False)  # uint8 thumbnail, 255 = node max

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "level": self.level,
            "box": self.box.to_list(),
            "priority": round(float(self.priority), 6),
            "peak": round(float(self.peak), 4),
            "strong": bool(self.strong),
            "detections": [_det_dict(d) for d in self.detections],
            "context": self.context,
            "leaf": self.leaf,
            "children": self.children,
        }


@dataclass
class SearchResult:
    """What a search did and found. `best` is the find-mode answer; `lines` the read-all lines."""

    phrase: str
    mode: SearchMode
    cue: str
    image_size: tuple[int, int]
    min_patch_size: int
    best: Detection | None
    found: bool
    stop_reason: StopReason
    steps: list[SearchStep]
    cue_calls: int
    context_calls: int
    seconds: float
    lines: list[Detection] = field(default_factory=list)
    skipped_read: int = 0  # read-all: queued patches dropped because their text was read meanwhile
    instances: list[Detection] = field(default_factory=list)  # find: every confident box of a confident first look

    def summary(self) -> dict[str, Any]:
        """JSON-safe record for Finding.search and traces."""
        return {
            "phrase": self.phrase,
            "mode": self.mode,
            "cue": self.cue,
            "image_size": list(self.image_size),
            "min_patch_size": self.min_patch_size,
            "found": self.found,
            "stop_reason": self.stop_reason,
            "best": _det_dict(self.best) if self.best else None,
            "lines": [_det_dict(d) for d in self.lines],
            "instances": [_det_dict(d) for d in self.instances],
            "cue_calls": self.cue_calls,
            "context_calls": self.context_calls,
            "skipped_read": self.skipped_read,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
        }


def _det_dict(det: Detection) -> dict[str, Any]:
    return {"box": det.box.to_list(), "score": round(float(det.score), 4), "label": det.label, "text": det.text}


# --- heatmaps -----------------------------------------------------------------------------------


def _axis_weights(n: int, lo: float, hi: float) -> np.ndarray:
    """Fraction of each unit cell [k, k+1) covered by the interval [lo, hi]."""
    edges = np.arange(n + 1, dtype=np.float64)
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, 1.0)


def rect_mass(heatmap: np.ndarray, box: Box, patch: Box) -> float:
    """Heatmap mass inside `box` (original px) for a heatmap spanning `patch`; exact for fractional cells."""
    h, w = heatmap.shape
    sx, sy = w / patch.width, h / patch.height
    wx = _axis_weights(w, (box.x1 - patch.x1) * sx, (box.x2 - patch.x1) * sx)
    wy = _axis_weights(h, (box.y1 - patch.y1) * sy, (box.y2 - patch.y1) * sy)
    return float(wy @ heatmap @ wx)


def check_heatmap(output: CueOutput, cue_name: str) -> np.ndarray:
    """The cue's heatmap as float64, negatives clipped; a ValueError names the cue when it is unusable."""
    heatmap = np.asarray(output.heatmap, dtype=np.float64)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"cue model '{cue_name}' returned a heatmap of shape {heatmap.shape}; expected (h, w)")
    if not np.all(np.isfinite(heatmap)):
        raise ValueError(f"cue model '{cue_name}' returned a heatmap with NaN or infinite values")
    return np.clip(heatmap, 0.0, None)


def _thumbnail(heatmap: np.ndarray) -> np.ndarray:
    h, w = heatmap.shape
    top = float(heatmap.max())
    scaled = (heatmap / top * 255.0) if top > 0 else np.zeros_like(heatmap)
    step = max(1, int(np.ceil(max(h, w) / _THUMB_SIDE)))
    return np.clip(scaled[::step, ::step], 0, 255).astype(np.uint8)


def _normalise(heatmap: np.ndarray) -> np.ndarray:
    """Official V* normalisation: min-max to [0, 1]; a flat map becomes all zeros."""
    low, high = float(heatmap.min()), float(heatmap.max())
    if high <= low:
        return np.zeros_like(heatmap)
    return (heatmap - low) / (high - low)


def _shrink(heatmap: np.ndarray, side: int = 256) -> np.ndarray:
    """Box-filter a guide map down to at most `side` px a side (masses stay proportional)."""
    h, w = heatmap.shape
    if max(h, w) <= side:
        return heatmap
    ratio = side / max(h, w)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize(size, Image.BOX), dtype=np.float64)


def _to_original(det: Detection, patch: Box, width: int, height: int) -> Detection:
    return Detection(box=det.box.shift(patch.x1, patch.y1).clip(width, height), score=float(det.score),
                     label=det.label, text=det.text)


def split_patch(box: Box, config: SearchConfig) -> list[Box]:
    """The official split of a patch (`lookcloser.core.geometry.split_box`) as Boxes."""
    return [Box.from_list(part) for part in split_box(box, config)]


# --- the frontier ---------------------------------------------------------------------------------


@dataclass
class Expanded:
    """An expanded node as an ancestor: its box, level and its normalised guide map."""

    box: Box
    level: int
    guide: np.ndarray
    total: float
    parent: "Expanded | None"
    state: Any = None  # what the strategy kept for this patch (Expansion.state)


@dataclass(order=True)
class Node:
    """A queued patch: highest priority first, then first queued."""

    sort_key: tuple[float, int]
    core: Box = field(compare=False)  # the node of the official split tree
    box: Box = field(compare=False)  # what is looked at: the core, or a read-all view of it
    level: int = field(compare=False)
    priority: float = field(compare=False)
    parent: Expanded | None = field(compare=False)


def child_priority(child: Box, ancestor: Expanded, config: SearchConfig) -> float:
    """Official V* priority: sum over the ancestors (the expanded node included) of
    (ancestor map mass inside the child / the ancestor's total mass) / base ** level(ancestor)."""
    total = 0.0
    node: Expanded | None = ancestor
    while node is not None:
        if node.total > 0:
            total += rect_mass(node.guide, child, node.box) / node.total / config.level_weight_base ** node.level
        node = node.parent
    return total


@dataclass
class Expansion:
    """What a strategy makes of a visited patch: the map that ranks its children, the children as
    (core box of the split tree, box to look at, levels below the patch), and `state`, anything the
    strategy wants back when it meets a child (kept on the child's `parent`)."""

    guide: np.ndarray
    children: list[tuple[Box, Box, int]]
    state: Any = None
    #: The children's own priorities, one per child, used as given instead of the ancestor-weighted
    #: V* priority (the ZoomEye strategy ranks by VLM confidences, zoomeye.py); None: the V* rule.
    priorities: list[float] | None = None


class _Frontier:
    """The global best-first queue over every level of the split tree."""

    def __init__(self, root: Box) -> None:
        self._counter = 0
        self._queue: list[Node] = [Node((0.0, 0), root, root, 1, 0.0, None)]

    def __bool__(self) -> bool:
        return bool(self._queue)

    def pop(self) -> Node:
        return heapq.heappop(self._queue)

    def expand(self, node: Node, expansion: Expansion, config: SearchConfig) -> None:
        """Queue the children of a visited node with their ancestor-weighted priorities."""
        guide = _shrink(_normalise(expansion.guide))
        expanded = Expanded(node.box, node.level, guide, float(guide.sum()), node.parent, expansion.state)
        given = expansion.priorities
        if given is not None and len(given) != len(expansion.children):
            raise ValueError(f"an expansion gave {len(given)} priorities for {len(expansion.children)} children")
        for i, (child, view, depth) in enumerate(expansion.children):
            self._counter += 1
            priority = float(given[i]) if given is not None else child_priority(child, expanded, config)
            heapq.heappush(self._queue, Node((-priority, self._counter), child, view, node.level + depth, priority, expanded))


# --- strategies -----------------------------------------------------------------------------------


@dataclass
class Look:
    """A visited patch as a strategy sees it: the queued node, the patch's pixels, the cue's output,
    the checked heatmap and the step record (the strategy may set its `context`)."""

    node: Node
    patch: Image.Image
    output: CueOutput
    heatmap: np.ndarray
    step: SearchStep


@dataclass
class Outcome:
    """What a strategy reports when the search ends."""

    found: bool
    best: Detection | None
    stop_reason: StopReason
    lines: list[Detection] = field(default_factory=list)
    context_calls: int = 0
    skipped_read: int = 0
    instances: list[Detection] = field(default_factory=list)


class Strategy(Protocol):
    """What happens at each visited patch. `stop_reason` set by `visit` ends the search."""

    mode: SearchMode
    stop_reason: StopReason | None

    def skip(self, node: Node) -> bool: ...  # drop a queued node without looking at it

    def cue_hints(self, node: Node) -> dict[str, Any]: ...  # extra keyword arguments for the cue call

    def visit(self, look: Look) -> Expansion | None: ...  # None: nothing to queue below this patch

    def finish(self, stop_reason: StopReason) -> Outcome: ...


# --- the search -----------------------------------------------------------------------------------


def search(
    image: Image.Image,
    phrase: str,
    cue: CueModel,
    config: SearchConfig | None = None,
    *,
    strategy: Strategy,
) -> SearchResult:
    """Best-first V* search of `image` for `phrase` with `cue`, `strategy` deciding what each visited
    patch means (`find_one.FindOne`, `read_all.ReadAll`). See the module docstring."""
    config = config or SearchConfig()
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError(f"search phrase must be a non-empty string, got {phrase!r}")
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"cannot search an empty image ({width}x{height})")
    min_size = config.min_patch_size(width, height)
    start = time.perf_counter()
    steps: list[SearchStep] = []
    outcome = strategy.finish(_walk(image, phrase, cue, config, strategy, min_size, steps, start))
    return SearchResult(
        phrase=phrase, mode=strategy.mode, cue=cue.name, image_size=(width, height), min_patch_size=min_size,
        best=outcome.best, found=outcome.found, stop_reason=outcome.stop_reason, steps=steps,
        cue_calls=len(steps), context_calls=outcome.context_calls, seconds=time.perf_counter() - start,
        lines=outcome.lines, skipped_read=outcome.skipped_read, instances=outcome.instances,
    )


@dataclass
class _Walk:
    """What every step of one search shares."""

    image: Image.Image
    cue: CueModel
    config: SearchConfig
    strategy: Strategy
    min_size: int
    steps: list[SearchStep]
    frontier: _Frontier


def _walk(image: Image.Image, phrase: str, cue: CueModel, config: SearchConfig, strategy: Strategy, min_size: int,
          steps: list[SearchStep], start: float) -> StopReason:
    """Pop, look, expand until the strategy stops, the queue runs dry or the budget is spent."""
    walk = _Walk(image, cue, config, strategy, min_size, steps, _Frontier(Box(x1=0, y1=0, x2=image.width, y2=image.height)))
    while walk.frontier:
        if len(steps) >= config.max_steps or time.perf_counter() - start >= config.max_seconds or expired():
            return "budget"  # expired(): the question's (or the search node's) deadline, lookcloser.core.deadline
        node = walk.frontier.pop()
        if strategy.skip(node):
            continue
        run_id = uuid.uuid4()
        inputs = {"box": node.box.to_list(), "level": node.level, "priority": round(node.priority, 6),
                  "phrase": phrase, "cue": cue.name, "mode": strategy.mode}
        _STEP.invoke(inputs, {"run_id": run_id, "metadata": {SEARCH_STEP: str(run_id)}}, walk=walk, node=node)
        if strategy.stop_reason is not None:
            return strategy.stop_reason
    return "exhausted"


def _step(inputs: dict[str, Any], *, walk: _Walk, node: Node) -> dict[str, Any]:
    """One visited patch: look, let the strategy decide, queue the children. Returns the step's trace outputs."""
    look = _look(walk.image, inputs["phrase"], walk.cue, node, walk.min_size, order=len(walk.steps) + 1,
                 hints=walk.strategy.cue_hints(node))
    step = look.step
    walk.steps.append(step)
    expansion = walk.strategy.visit(look)
    children = expansion.children if expansion is not None else []
    if children:
        walk.frontier.expand(node, expansion, walk.config)
    step.children = len(children)
    return {"peak": step.peak, "strong": step.strong, "context": step.context,
            "detections": [_det_dict(d) for d in step.detections], "children": len(children)}


#: A step as a runnable: `invoke` opens its chain run under the caller's run (inputs: the patch; outputs: what it saw).
_STEP = RunnableLambda(_step, name="vstar.step")


def _look(image: Image.Image, phrase: str, cue: CueModel, node: Node, min_size: int, order: int,
          hints: dict[str, Any] | None = None) -> Look:
    """Crop the node's box, run the cue on it (with the strategy's `hints`, if any), and record
    the step (boxes mapped to the image)."""
    box = node.box
    leaf = is_leaf(node.core, min_size)
    corners = tuple(int(v) for v in (box.x1, box.y1, box.x2, box.y2))
    patch = image if corners == (0, 0, image.width, image.height) else image.crop(corners)  # no copy of the root
    output = cue(patch, phrase, **hints) if hints else cue(patch, phrase)
    heatmap = check_heatmap(output, cue.name)
    detections = [_to_original(d, box, image.width, image.height) for d in output.detections]
    strong = float(output.peak) > cue.calibration.strong_peak(node.level)
    step = SearchStep(
        order=order, level=node.level, box=box, priority=node.priority, peak=float(output.peak), strong=strong,
        detections=detections, context="not_needed" if (strong or leaf) else "skipped", leaf=leaf,
        heatmap=_thumbnail(heatmap),
    )
    return Look(node=node, patch=patch, output=output, heatmap=heatmap, step=step)
