"""Find-one strategy of the V* search (objects): stop at the first confident detection.

A detection >= calibration.stop_confidence ends the search ("confident"); when that happens at the
first look (the whole image), every detection of that look above the stop confidence is kept as an
instance, as the official code does (a counting question needs them all). Otherwise every non-leaf
patch is split by the official rule; a patch whose heatmap is too weak to trust (peak <=
calibration.strong_peak(level)) is ranked by the contextual cue's map instead, when there is one
(SEAL's fallback on the VLM's world knowledge). When the queue runs dry the best detection seen is
accepted if >= calibration.accept_confidence ("best_seen"); below it the result is not found, but
`best` is kept (the localizer may still hand it to the VLM, as the official evaluation does).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel, CueOutput
from lookcloser.tools.vstar.search import (Expansion, Look, Node, Outcome, SearchResult, StopReason, check_heatmap,
                                           search, split_patch)
from lookcloser.core.types import Detection

__all__ = ["ContextMap", "FindOne", "find_one"]

#: The contextual cue: (patch, phrase) -> a prior heatmap over the patch, or None (context_cue.py).
ContextMap = Callable[[Image.Image, str], "np.ndarray | None"]


def find_one(image: Image.Image, phrase: str, cue: CueModel, config: SearchConfig | None = None, *,
             context_cue: ContextMap | None = None) -> SearchResult:
    """Find `phrase` in `image` with the object `cue` (the V* search with this strategy)."""
    config = config or SearchConfig()
    return search(image, phrase, cue, config, strategy=FindOne(phrase, cue, config, context_cue))


class FindOne:
    """The find-one policy: keeps the best detection seen and the contextual-cue calls made."""

    mode = "find"

    def __init__(self, phrase: str, cue: CueModel, config: SearchConfig, context_cue: ContextMap | None) -> None:
        self.phrase = phrase
        self.calibration = cue.calibration
        self.config = config
        self.context_cue = context_cue
        self.best: Detection | None = None
        self.instances: list[Detection] = []
        self.context_calls = 0
        self.stop_reason: StopReason | None = None

    def skip(self, node: Node) -> bool:
        return False

    def cue_hints(self, node: Node) -> dict:
        return {}

    def visit(self, look: Look) -> Expansion | None:
        for det in look.step.detections:
            if self.best is None or det.score > self.best.score:
                self.best = det
        if self.best is not None and self.best.score >= self.calibration.stop_confidence:
            self.stop_reason = "confident"
            if look.node.level == 1:  # the whole image: keep every confident instance (official V*)
                confident = [d for d in look.step.detections if d.score >= self.calibration.stop_confidence]
                self.instances = sorted(confident, key=lambda d: -d.score)
            return None
        if look.step.leaf:
            return None
        guide = look.heatmap if look.step.strong else self._context_guide(look)
        return Expansion(guide, [(child, child, 1) for child in split_patch(look.node.core, self.config)])

    def _context_guide(self, look: Look) -> np.ndarray:
        """The contextual cue's prior for a weak patch (the step records whether it was used)."""
        if self.context_cue is None:  # the step keeps context "skipped"
            return look.heatmap
        self.context_calls += 1
        prior = self.context_cue(look.patch, self.phrase)
        if prior is None:
            look.step.context = "no_prior"
            return look.heatmap
        guide = check_heatmap(CueOutput(heatmap=prior, peak=0.0), "context cue")
        look.step.context = getattr(self.context_cue, "last_source", None) or "used"
        return guide

    def finish(self, stop_reason: StopReason) -> Outcome:
        found = self.best is not None and self.best.score >= self.calibration.accept_confidence
        if found and stop_reason == "exhausted":
            stop_reason = "best_seen"
        return Outcome(found=found, best=self.best, stop_reason=stop_reason, context_calls=self.context_calls,
                       instances=self.instances if len(self.instances) > 1 else [])
