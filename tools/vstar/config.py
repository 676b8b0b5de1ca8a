"""Every constant of the V* search in one place, each a named, documented default.

The per-cue-model thresholds (stop / accept confidence, what a "strong" heatmap is) live in the
cue model's `CueCalibration`, because an OWLv2 score is not a SEAL logit. What is here is the
algorithm itself: how patches split, when a patch is a leaf, how priorities are weighted, the
read-all policy for text targets, and the budget guards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["SearchConfig"]


@dataclass(frozen=True)
class SearchConfig:
    """Constants of the best-first heatmap search (SEAL / V* defaults unless noted).

    Splitting (official V*): a patch with height/width >= `tall_ratio` splits into 1 column x
    `split_parts` rows; with height/width <= `wide_ratio` into `split_parts` columns x 1 row;
    otherwise 2 x 2. The last row/column absorbs the integer remainder.

    Leaf rule: the minimum patch size is max(ceil(min(W, H) / `min_size_divisor`), `min_size_floor`)
    for the original image W x H. A patch whose SHORTER side is <= that size is a leaf (it is
    looked at, never split) -- the official code's rule: `min(w, h) <= smallest_size`. A patch that cannot be split into parts at least
    `min_split_px` wide/high on the split axis is also a leaf (guards 1x1 images and thin strips).

    Priority (official V*): child priority = sum over the child's ancestors, the current node
    included, of (heatmap mass inside the child / heatmap mass of that node) / `level_weight_base`
    ** level(node). The root is level 1.

    Find-one mode stops at the first detection >= calibration.stop_confidence, else accepts the best
    seen >= calibration.accept_confidence when the queue runs dry.

    Read-all mode (text targets): see the `read_*` fields.

    Budget guards: at most `max_steps` visited patches and `max_seconds` wall time; stop reason
    "budget" when one is hit.
    """

    # --- splitting and leaves -------------------------------------------------------------
    tall_ratio: float = 2.0
    wide_ratio: float = 0.5
    split_parts: int = 4
    min_size_divisor: int = 4
    min_size_floor: int = 224
    min_split_px: int = 8

    # --- priority ---------------------------------------------------------------------------
    level_weight_base: float = 4.0

    # --- budget -----------------------------------------------------------------------------
    max_steps: int = 200
    max_seconds: float = 300.0

    # --- read-all mode (text) -----------------------------------------------------------------
    #: A line counts as read legibly at or above this recognizer confidence.
    read_legible_confidence: float = 0.85
    #: ... and only if its height at the detector's input was at least this many pixels
    #: (smaller text is detected but its box is unreliable: look closer; measured: a 12 px box
    #: cut off part of "UNION" and was read "GNIOI" at 0.86).
    read_min_text_px: float = 16.0
    #: A patch is "resolved" when the detector sees it at >= this scale (detector input px per
    #: original px). In a resolved patch only the unread text the map shows is looked at closer.
    #: Below it, small text may leave no trace in the map, so absence of evidence proves nothing
    #: and every child is expanded. 1.0: only a native look shows 6-14 px text in the map (PP-OCRv4:
    #: 13-35 px lines were ~0 at 0.4-0.9; PP-OCRv6 small sees >= ~14 px text at 0.7, which the
    #: coarse-look mode uses with 0.7 here: docs/vstar.md).
    read_resolved_scale: float = 1.0
    #: Map probability that counts as text (the DB binarisation threshold of PP-OCR).
    read_text_threshold: float = 0.3
    #: Minimum area (detector-input px) of unread text / faint evidence in a child to expand it.
    read_min_blob_px: float = 12.0
    #: Children of an unresolved patch overlap by this fraction of their size so a line cut by
    #: a split is whole in one (a line still cut is not legible and gets a close look).
    read_child_overlap: float = 0.05
    #: In a resolved patch, look at an expanded child only around its unread text (grown to
    #: whole blobs, plus `read_focus_margin` original px of context) instead of the whole child:
    #: an unread line costs a small close look, not a quadrant.
    read_focus: bool = True
    read_focus_margin: float = 48.0
    #: In a resolved patch, look at each group of unread text blobs (each blob grown by
    #: read_focus_margin, merged where they overlap) instead of each split child around all its
    #: unread text: a child holding two far-apart lines costs two small looks, not one the size
    #: of the child. A group too large to see closer is split as a child would be. Part of the
    #: coarse-look mode; off by default: after a native root look it read fewer untuned strings
    #: (57 vs 64 of 120; docs/vstar.md).
    read_blob_views: bool = False
    #: A closer look must enlarge the text by at least this factor at the detector input (the
    #: cue's `input_scale`, else the size ratio); otherwise the child's own children are queued
    #: in its place (the same pixels at the same scale show nothing new).
    read_focus_min_gain: float = 1.25
    #: Reads of the same line across levels: boxes with IoU (or overlap of the smaller) above
    #: this are one line; a whole read beats a cut one, then the most confident read is kept.
    read_dedupe_overlap: float = 0.5

    def min_patch_size(self, width: int, height: int) -> int:
        """The leaf size for an original image of width x height."""
        return max(math.ceil(min(width, height) / self.min_size_divisor), self.min_size_floor)

    def with_options(self, **options: Any) -> "SearchConfig":
        """A copy with some fields changed; unknown names raise a ValueError listing the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown SearchConfig option(s) {unknown}; known: {sorted(known)}")
        return replace(self, **options)

    def __post_init__(self) -> None:
        if self.split_parts < 2:
            raise ValueError(f"split_parts must be >= 2, got {self.split_parts}")
        if not 0 < self.wide_ratio < 1 < self.tall_ratio:
            raise ValueError(
                f"need 0 < wide_ratio < 1 < tall_ratio, got wide_ratio={self.wide_ratio}, tall_ratio={self.tall_ratio}"
            )
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not 0 < self.max_seconds <= 86_400:
            raise ValueError(f"max_seconds must be > 0 and at most a day (86400), got {self.max_seconds}")
        if self.level_weight_base <= 1:
            raise ValueError(f"level_weight_base must be > 1, got {self.level_weight_base}")
