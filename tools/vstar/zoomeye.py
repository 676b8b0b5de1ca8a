"""The ZoomEye tree search (om-ai-lab/ZoomEye, arXiv 2411.16044) as a strategy of our best-first search.

ZoomEye walks the same kind of tree V* does (each node split 2x2, or 1x4 / 4x1 when elongated), but
ranks the queue by the VLM's own yes/no confidences, not by a heatmap:

* confidence = 2·P(yes) − 1 (P over the yes/no tokens), so in [-1, 1];
* a queued node's priority = w·existence + (1 − w)·latent, with w = (1 − b)/D²·depth² + b: near the
  root the VLM's common-sense guess ("could it be found by zooming in?") counts, deep down only
  "is it here?" does (depth: root 0; D: the tree's depth, at most `depth_limit`);
* each popped node is asked whether the question can be answered from it; the search ends at the
  first node whose answering confidence reaches τ. After 3·D pops, and again every 2 pops after that,
  τ is lowered (by `decrease`, the last step repeating), and the best popped node at or above the
  lowered τ ends the search; once τ falls below `answer_lower`, the search gives up (not found).

Ours differs where our pipeline differs (docs/vstar.md, "ZoomEye, checked against its code"). The
VLM questions are the `vlm` cue's (vlm_cue.py, hint `zoomeye`); this module holds the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from PIL import Image
from pydantic import Field

from lookcloser.core.types import Box, Detection
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel
from lookcloser.tools.vstar.search import Expansion, Look, Node, Outcome, SearchResult, StopReason, search, split_patch
from lookcloser.tools.vstar.vlm_cue import ZoomEyeAsk

__all__ = ["ZoomEye", "ZoomEyeConfig", "priority_weight", "tree_depth", "zoomeye_search"]


@dataclass(frozen=True)
class ZoomEyeConfig:
    """ZoomEye's settings; defaults are its Qwen2.5-VL ones (eval/perform_zoom_eye.py, zoom_model_qwenvl.py),
    the family of our default VLM. Its other settings: LLaVA-OneVision b 0.6, τ 0.6, decrease 0.1, 0.1, 0.2;
    InternVL2.5 b 0.6, τ 0.2, lower -0.2, decrease 0.1, 0.1, 0.2; LLaVA-1.5 b 0.2, τ 0.6.

    bias: b of the weight. depth_limit: D is the tree's depth but at most this. patch_size: a node whose
    longer side is under it is a leaf; also the least side of a node's window. patch_scale: the window is
    this much larger than the node. answer_upper / answer_lower: τ at the start, and the floor below which
    the search gives up. decrease: how much τ drops each time (the last value repeats). pops_per_depth:
    τ first drops after this many pops per level of D; pop_step: then every this many pops.
    question: the answering question when the caller has none (ZoomEye's, for a question with several targets).
    """

    bias: Annotated[float, Field(ge=0, le=1)] = 0.6
    depth_limit: Annotated[int, Field(ge=1)] = 5
    patch_size: Annotated[int, Field(ge=8)] = 448
    patch_scale: Annotated[float, Field(ge=1)] = 1.2
    answer_upper: Annotated[float, Field(ge=-1, le=1)] = 0.95
    answer_lower: Annotated[float, Field(ge=-1, le=1)] = 0.0
    decrease: tuple[Annotated[float, Field(gt=0)], ...] = (0.05, 0.1, 0.2)
    pops_per_depth: Annotated[int, Field(ge=1)] = 3
    pop_step: Annotated[int, Field(ge=1)] = 2
    question: str = "What does the {target} look like?"

    def __post_init__(self) -> None:
        if not 0 <= self.bias <= 1:
            raise ValueError(f"bias must be in [0, 1], got {self.bias}")
        if not self.decrease or any(d <= 0 for d in self.decrease):
            raise ValueError(f"decrease must be one or more positive steps, got {self.decrease!r}")
        if self.answer_lower > self.answer_upper:
            raise ValueError(f"answer_lower {self.answer_lower} is above answer_upper {self.answer_upper}")
        if "{target}" not in self.question:
            raise ValueError(f"the ZoomEye question must contain '{{target}}', got {self.question!r}")


def priority_weight(depth: int, max_depth: int, bias: float) -> float:
    """w = (1 − b)/D²·depth² + b (zoom_model.py, get_confidence_weight): b at the root, 1 at depth D."""
    return (1.0 - bias) / max_depth ** 2 * depth ** 2 + bias


def is_terminal(box: Box, patch_size: int, split: SearchConfig) -> bool:
    """ZoomEye's leaf (tree.py, is_terminal): the longer side is under `patch_size` (or it cannot be split)."""
    return max(box.width, box.height) < patch_size or not split_patch(box, split)


def tree_depth(width: int, height: int, patch_size: int, split: SearchConfig) -> int:
    """The depth of ZoomEye's tree over a width x height image (tree.py, ImageTree.max_depth). The
    last child of a split is the largest (it takes the remainder), so it is always the last to become a leaf."""
    box, depth = Box(x1=0, y1=0, x2=width, y2=height), 0
    while not is_terminal(box, patch_size, split):
        box, depth = split_patch(box, split)[-1], depth + 1
    return depth


def zoomeye_search(image: Image.Image, phrase: str, cue: CueModel, config: SearchConfig | None = None,
                   zoomeye: ZoomEyeConfig | None = None, *, question: str | None = None) -> SearchResult:
    """Find the node of `image` that answers `question` (default: ZoomEye's question about `phrase`)."""
    config = config or SearchConfig()
    strategy = ZoomEye(image, phrase, config, zoomeye or ZoomEyeConfig(), question=question)
    return search(image, phrase, cue, config, strategy=strategy)


class ZoomEye:
    """ZoomEye's type-1 search (zoom_eye.py, zoom_eye_search_type1) for one target, as a Strategy.
    Needs a cue that understands the `zoomeye` hint (VLMCue)."""

    mode = "find"

    def __init__(self, image: Image.Image, phrase: str, config: SearchConfig, zoomeye: ZoomEyeConfig, *,
                 question: str | None = None) -> None:
        self.image = image
        self.phrase = phrase
        self.config = config
        self.settings = zoomeye
        self.question = question if question and question.strip() else zoomeye.question.format(target=phrase)
        self.max_depth = min(tree_depth(image.width, image.height, zoomeye.patch_size, config), zoomeye.depth_limit)
        self.threshold = zoomeye.answer_upper
        self.pop_limit = zoomeye.pops_per_depth * self.max_depth
        self._decrease = list(zoomeye.decrease)
        self.pops = 0
        self.popped: list[tuple[Box, float]] = []  # every popped node's box and answering confidence
        self.best: tuple[Box, float] | None = None
        self.stop_reason: StopReason | None = None

    def skip(self, node: Node) -> bool:
        return False

    def _children(self, node: Node) -> list[Box]:
        if node.level - 1 >= self.max_depth or is_terminal(node.core, self.settings.patch_size, self.config):
            return []
        return split_patch(node.core, self.config)

    def _stop_at(self) -> float | None:
        """The answering confidence that ends the search at the coming pop (then its children need no
        questions): τ; at a pop that lowers τ, the lowered τ, or anything when it ends the search anyway."""
        if self.pops + 1 < self.pop_limit:
            return self.threshold
        lowered = self.threshold - self._decrease[0]
        if lowered < self.settings.answer_lower or any(a >= lowered for _, a in self.popped):
            return float("-inf")
        return lowered

    def cue_hints(self, node: Node) -> dict:
        ask = ZoomEyeAsk(image=self.image, box=node.box, children=tuple(self._children(node)), question=self.question,
                         answer_stop=self._stop_at(), patch_size=self.settings.patch_size,
                         patch_scale=self.settings.patch_scale)
        return {"zoomeye": ask}

    def visit(self, look: Look) -> Expansion | None:
        extra = look.output.extra
        if "answering" not in extra:
            raise ValueError("the ZoomEye search needs the 'vlm' cue (it asks ZoomEye's questions); "
                             "this cue gave no answering confidence")
        answering = float(extra["answering"])
        box, depth = look.node.box, look.node.level - 1
        self.pops += 1
        self.popped.append((box, answering))
        look.step.context = f"zoomeye: answering {answering:+.3f}, tau {self.threshold:.3f}"
        if answering >= self.threshold:
            self.best, self.stop_reason = (box, answering), "confident"
            return None
        if self.pops >= self.pop_limit:
            self.threshold -= self._decrease[0]
            if len(self._decrease) > 1:
                self._decrease.pop(0)
            self.pop_limit += self.settings.pop_step
            reached = [entry for entry in self.popped if entry[1] >= self.threshold]
            if reached:
                self.best, self.stop_reason = max(reached, key=lambda entry: entry[1]), "best_seen"
                return None
            if self.threshold < self.settings.answer_lower:
                self.stop_reason = "exhausted"
                return None
        children = self._children(look.node)
        look.step.leaf = not children
        if not children:
            return None
        w = priority_weight(depth + 1, self.max_depth, self.settings.bias)
        priorities = [w * e + (1 - w) * lat for e, lat in zip(extra["existence"], extra["latent"], strict=True)]
        return Expansion(look.heatmap, [(child, child, 1) for child in children], priorities=priorities)

    def finish(self, stop_reason: StopReason) -> Outcome:
        if self.best is None:
            return Outcome(found=False, best=None, stop_reason=stop_reason)
        box, answering = self.best
        # Detection scores are probabilities: the answering confidence mapped back to P(yes).
        return Outcome(found=True, best=Detection(box=box, score=(answering + 1) / 2, label=self.phrase),
                       stop_reason=stop_reason)
