"""`vlm_grounding`: the agent's own VLM asked for boxes, as a localizer and a detector.

Why: today's VLMs ground well (Qwen2.5-VL / Qwen3-VL, GLM-V, InternVL, PaliGemma, Florence-2, Molmo), and the
VLM is already loaded: no detector weights needed. Each family writes boxes its own way; `lookcloser.core.boxes`
reads them (supervision where it covers the family) and maps them to original-image pixels.

How it looks: the whole photo first, every target in ONE call where the family's reply labels its boxes (else
one call per target). The view is sent on the family's grid (Qwen2.5-VL: sides multiples of 28 within the pixel
budget), so a server's or processor's own resize leaves it as is and absolute coordinates map back exactly; a
backend that says what its model receives (`sent_image_size`) is asked, in case it resizes anyway. A target not
found, or found smaller than `min_box_px` in the view sent (too small to trust at that resolution), is searched
for again inside patches at native resolution, best-first as the V* search orders them (tools/vstar: this
tool's boxes splatted into its heatmap by the `detector` cue), so a 20-px object in a 12-Mpx photo is looked at
closely. A box drawn at >= min_box_px scores 1.0 and ends the search; a smaller one scores 0.5 and is kept only
when no closer look finds better. Bad replies (prose, malformed or truncated JSON, boxes outside the image,
thousands of boxes) are notes on a not_found finding, never an exception; a failing VLM call raises (the graph
makes it a failed finding).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal, Sequence

from PIL import Image
from pydantic import Field

from lookcloser.core import boxes
from lookcloser.core.errors import ModelLoadError
from lookcloser.core.types import Box, Detection, Finding, Target
from lookcloser.core.vlm_protocol import ChatMessage
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueCalibration
from lookcloser.tools.vstar.detector_cue import DetectorCue
from lookcloser.tools.vstar.find_one import find_one

__all__ = ["BoxFormat", "VLMGrounding", "create_vlm_grounding"]

BoxFormat = Literal[tuple(boxes.CONVENTIONS)]  # type: ignore[valid-type]
#: Scores of a box: drawn at >= min_box_px in the view sent (trusted: the search stops), or smaller.
TRUSTED, SMALL = 1.0, 0.5
#: The V* search on this tool's scores: stop on a trusted box, accept a small one when nothing better is found.
CALIBRATION = CueCalibration(stop_confidence=TRUSTED, accept_confidence=SMALL, strong_peak_base=SMALL,
                             strong_peak_decay=1.0, strong_peak_floor=SMALL)
#: Qwen2.5-VL's default budget in TransformersVLM (1280 merged 28x28 patches, ~1 MP).
DEFAULT_VIEW_PIXELS = 1280 * 28 * 28
_NEEDS_VLM = ("vlm_grounding asks the VLM for its own boxes, and no VLM is configured: name one with --vlm SPEC "
              "(e.g. --vlm openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1; Python: Agent(vlm=...))")


class VLMGrounding:
    """Localizer (`locate`, `locate_many`) and detector (`detect`) answering with the VLM's own boxes.

    box_format: the family convention (core.boxes.CONVENTIONS); None: the backend's `box_format`, else its
    `model_type`, else its model name, else 0-1000 relative. max_view_pixels: pixel budget of each view sent.
    min_box_px: a box whose shorter side is below this in the view sent is too small to trust (look closer).
    search: look inside patches when the whole photo does not give a trusted box; max_looks: VLM looks per
    target in that search, the whole photo included. max_new_tokens: reply budget of each call.
    """

    name = "vlm_grounding"

    def __init__(self, vlm: Any, *, box_format: BoxFormat | None = None,
                 max_view_pixels: Annotated[int, Field(ge=boxes.QWEN25_MIN_PIXELS)] = DEFAULT_VIEW_PIXELS,
                 min_box_px: Annotated[float, Field(ge=0)] = 12.0, search: bool = True,
                 max_looks: Annotated[int, Field(ge=1)] = 21,
                 max_new_tokens: Annotated[int, Field(ge=16)] = 512) -> None:
        if vlm is None or not callable(getattr(vlm, "generate", None)):
            raise ModelLoadError(_NEEDS_VLM)
        if box_format is not None:
            boxes.convention(box_format)  # a ValueError listing the known ones
        self.vlm = vlm
        self.box_format = box_format
        self.max_view_pixels = int(max_view_pixels)
        self.min_box_px = float(min_box_px)
        self.search = bool(search)
        self.max_looks = int(max_looks)
        self.max_new_tokens = int(max_new_tokens)
        self._convention: tuple[boxes.Convention, str] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ convention
    @property
    def backend(self) -> Any:
        """The backend under the agent's traced wrapper (ChatVLM keeps it as `backend`)."""
        found = self.vlm
        while getattr(found, "backend", None) is not None and found.backend is not found:
            found = found.backend
        return found

    def convention(self) -> tuple[boxes.Convention, str]:
        """The family convention and where it came from (this tool's box_format, the backend's, its model_type,
        its model name, or the default); a transformers backend is loaded to read its config's model_type."""
        with self._lock:
            if self._convention is None:
                backend = self.backend
                fmt = self.box_format or getattr(backend, "box_format", None)
                if not fmt and getattr(backend, "model_type", "") is None and callable(getattr(backend, "load", None)):
                    backend.load()  # the VLM is about to be asked anyway; its config says the family
                name = getattr(backend, "model_id", None) or getattr(backend, "name", None)
                self._convention = boxes.derive_convention(fmt, model_type=getattr(backend, "model_type", None),
                                                           model_name=name)
            return self._convention

    def _sent_size(self, view: tuple[int, int], conv: boxes.Convention) -> tuple[int, int]:
        """What the model receives of a view: the backend says so when it can; else the view itself (on the
        family's grid already, so a smart resize leaves it)."""
        method = getattr(self.backend, "sent_image_size", None)
        if callable(method):
            try:
                return tuple(int(v) for v in method(view))  # type: ignore[return-value]
            except NotImplementedError:  # a processor whose resize rule is unknown
                pass
        return boxes.smart_resize(*view) if conv.coords == "grid" else view

    # ------------------------------------------------------------------ one look
    def look(self, image: Image.Image, names: Sequence[str], notes: list[str] | None = None) -> list[list[Detection]]:
        """Ask the VLM for every name's boxes in `image` (one call, or one per name when the family's reply does
        not label its boxes); per name, detections in `image` pixels scored TRUSTED or SMALL. What went wrong
        with a reply goes to `notes`."""
        conv, _ = self.convention()
        notes = notes if notes is not None else []
        image = image.convert("RGB")
        view_size = boxes.view_size(image.width, image.height, conv, self.max_view_pixels)
        view = image if view_size == image.size else image.resize(view_size, Image.Resampling.BICUBIC)
        sent = self._sent_size(view_size, conv)
        found: list[list[Detection]] = [[] for _ in names]
        groups = [list(range(len(names)))] if conv.batch else [[i] for i in range(len(names))]
        for group in groups:
            asked = [names[i] for i in group]
            reply = self.vlm.generate([ChatMessage("user", [view, boxes.prompt(conv, asked)])],
                                      max_new_tokens=self.max_new_tokens)
            parsed = boxes.parse(reply.text, conv, sent_size=sent, out_size=image.size)
            notes.extend(parsed.notes)
            scale = min(sent[0] / image.width, sent[1] / image.height)  # image px -> px the model saw
            for box in parsed.boxes:
                index = self._assign(box, asked, notes)
                if index is None:
                    continue
                bx = Box.from_list(box.xyxy)
                score = TRUSTED if box.point or min(bx.width, bx.height) * scale >= self.min_box_px else SMALL
                found[group[index]].append(Detection(box=bx, score=score, label=names[group[index]]))
        for detections in found:
            detections.sort(key=lambda d: -d.score)
        return found

    @staticmethod
    def _assign(box: boxes.ParsedBox, names: list[str], notes: list[str]) -> int | None:
        """Which asked name a box belongs to: the only one, else the one its label names (closest spelling)."""
        if len(names) == 1:
            return 0
        if not box.label:
            notes.append(f"an unlabelled box in a reply about {len(names)} targets was dropped")
            return None
        folded = [n.casefold() for n in names]
        if box.label.casefold() in folded:
            return folded.index(box.label.casefold())
        from rapidfuzz import fuzz, process  # noqa: PLC0415

        match = process.extractOne(box.label.casefold(), folded, scorer=fuzz.WRatio, score_cutoff=80)
        if match is None:
            notes.append(f"a box labelled {box.label[:40]!r} matches none of the targets and was dropped")
            return None
        return match[2]

    # ------------------------------------------------------------------ roles
    def detect(self, image: Image.Image, phrases: Sequence[str]) -> list[list[Detection]]:
        """Detector role: one look at `image` for every phrase; boxes in `image` pixels."""
        if isinstance(phrases, str):
            raise TypeError("phrases must be a list of strings, not one string")
        return self.look(image, [" ".join(str(p).split()) for p in phrases])

    def locate(self, image: Image.Image, target: Target | str) -> list[Finding]:
        return self.locate_many(image, [Target(name=target) if isinstance(target, str) else target])[0]

    def locate_many(self, image: Image.Image, targets: Sequence[Target]) -> list[list[Finding]]:
        """Every target: the whole photo in one look, then (per target without a trusted box) the V* search
        over native-resolution patches with this tool's boxes as its cue."""
        names = [" ".join(t.name.split()) for t in targets]
        if any(not n for n in names):
            raise ValueError("vlm_grounding needs a non-empty target name")
        conv, why = self.convention()
        notes: list[str] = []
        whole = self.look(image, names, notes)
        results = []
        for target, name, root in zip(targets, names, whole):
            record = {"box_format": conv.name, "box_format_from": why, "source": conv.source}
            trusted = [d for d in root if d.score >= TRUSTED]
            if trusted or not self.search:
                record.update(looks=1, notes=_unique(notes))
                results.append(self._findings(target, trusted or root, record))
                continue
            patches = _Patches(self, image, root, list(notes))
            config = SearchConfig(max_steps=self.max_looks)
            result = find_one(image, name, DetectorCue(patches, calibration=CALIBRATION), config)
            record.update(looks=patches.looks, notes=_unique(patches.notes))
            best = ([result.best] if result.found and result.best is not None else [])
            summary = result.summary()
            summary["grounding"] = record
            results.append(self._findings(target, result.instances or best, record, summary))
        return results

    def _findings(self, target: Target, found: list[Detection], record: dict[str, Any],
                  summary: dict[str, Any] | None = None) -> list[Finding]:
        search = summary or {"grounding": record}
        if not found:
            why = "; ".join(record["notes"][:3]) or "the VLM drew no box for it"
            return [Finding(target=target, status="not_found", tool=self.name, search=search,
                            error=f"not found in {record['looks']} VLM look(s): {why}")]
        return [Finding(target=target, status="found", box=d.box, score=d.score, tool=self.name,
                        search=search if i == 0 else {"grounding": record, "instance": i + 1})
                for i, d in enumerate(found)]


class _Patches:
    """The detector the V* search's `detector` cue calls for one target: the whole photo's look is the one
    already made for every target; each patch is a new look, counted, its notes kept."""

    name = "vlm_grounding"

    def __init__(self, tool: VLMGrounding, image: Image.Image, root: list[Detection], notes: list[str]) -> None:
        self.tool, self.image, self.root, self.notes = tool, image, root, notes
        self.looks = 1

    def detect(self, patch: Image.Image, phrases: Sequence[str]) -> list[list[Detection]]:
        if patch is self.image:  # the search's first look is the whole photo: asked already
            return [list(self.root)]
        self.looks += 1
        return self.tool.look(patch, list(phrases), self.notes)


def _unique(notes: list[str], limit: int = 10) -> list[str]:
    seen: list[str] = []
    for note in notes:
        if note not in seen:
            seen.append(note)
    return seen[:limit]


def create_vlm_grounding(context: Any = None, **options: Any) -> VLMGrounding:
    """Registry factory: the agent's VLM (`context.vlm`); without one, a ModelLoadError naming --vlm."""
    return VLMGrounding(getattr(context, "vlm", None), **options)
