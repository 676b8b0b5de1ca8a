"""The V* localizer: the default `localizer` tool, wrapping the search with the right cue model.

Text targets run the read-all search with the `text` cue and return one Finding per line read
(lines matching quoted text first, the text in `Finding.text`). The search finds where text is;
the configured `ocr` reader reads it: the default `rapidocr` runs the same PP-OCRv6 models the cue
already ran, so the cue's reads are kept (nothing read twice; tool "vstar"); any other reader
(tesseract, paddleocr, an instance) reads each found line region again, cropped with a margin and
enlarged, and its text replaces the cue's (tool "vstar+READER"). `Finding.search["reader"]` records
which route was taken. Object targets run the find-one
search with an object cue (`owlv2` by default, or `vlm`, `detector`, or any CueModel instance)
and return one Finding, or one per instance when the first look at the whole image is confident
(official V*: a counting question needs every instance). When the search ends below the accept
score, its best box is still returned (official V* evaluation), marked `search["below_accept"]` with
its score, so TELL can tell the VLM how weak it is; `keep_best_below_accept=False` says not found
instead. The contextual cue maps the context object the VLM names with the object cue
(`context_map="object"`, official) or uses its grid position only (`"grid"`).
`search="zoomeye"` runs ZoomEye's tree search (zoomeye.py) for object targets instead, with the `vlm`
cue asking ZoomEye's questions (settings: `zoomeye_options`, ZoomEyeConfig's fields).
Findings carry boxes, not crops.
Cue models are built lazily on first use and kept; a cue that cannot be loaded raises
ModelLoadError with one clear line (the agent turns it into a "failed" finding).
"""

from __future__ import annotations

import threading
import typing
from dataclasses import fields
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import BaseModel, Field

from lookcloser.core.errors import ModelLoadError
from lookcloser.tools.options import options_model
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel
from lookcloser.tools.vstar.find_one import find_one
from lookcloser.tools.vstar.read_all import read_all
from lookcloser.tools.vstar.search import SearchResult
from lookcloser.tools.vstar.text_match import rank_lines
from lookcloser.tools.vstar.text_plan import MODES as TEXT_MODES, TextMode, read_text
from lookcloser.tools.vstar.zoomeye import ZoomEyeConfig, zoomeye_search
from lookcloser.core.types import Box, Detection, Finding, Target

__all__ = ["OBJECT_CUES", "VStarLocalizer", "create_vstar_localizer"]

OBJECT_CUES = ("owlv2", "vlm", "detector")
#: The object search: V* (heatmap priorities, find-one) or ZoomEye (the VLM's confidences, answering stop).
SEARCHES = ("vstar", "zoomeye")
#: How the contextual cue turns the VLM's answer into a map: the context object mapped by the object
#: cue (official V*), or the named 3x3 grid cell only.
CONTEXT_MAPS = ("object", "grid")


class VStarLocalizer:
    """Localizer protocol: `locate(image, target) -> list[Finding]` in original-image pixels.

    cue: object cue name ("owlv2", "vlm", "detector") or a CueModel instance.
    text_cue: None (build the PP-OCR `text` cue on first text target) or a CueModel instance.
    vlm: the shared VLM; used by the `vlm` cue and for the contextual cue (when use_context).
    detector: a Detector for the `detector` cue (or a zero-argument callable returning one).
    ocr: the reader of text targets: None (the text cue's own reads), an OCR instance, or a
        zero-argument callable returning one (resolved on the first text target). A default
        RapidOCR reader (`RapidOCRTool` with no engine options) shares the cue's reads.
    read_margin: margin around a found line, as a fraction of its height (horizontal; half of it
        vertical), when another reader reads it. read_line_px: the crop is enlarged so the line is
        this tall for that reader (at most `read_max_upscale` times).
    """

    name = "vstar"

    def __init__(self, *, cue: str | CueModel = "owlv2", text_cue: CueModel | None = None, vlm: Any = None,
                 detector: Any = None, config: SearchConfig | None = None, use_context: bool = True,
                 model: str | None = None, device: str = "auto", text_options: dict[str, Any] | None = None,
                 ocr: Any = None, read_margin: Annotated[float, Field(ge=0)] = 0.5,
                 read_line_px: Annotated[float, Field(gt=0)] = 48.0, read_max_upscale: Annotated[float, Field(ge=1)] = 4.0, context_map: str = "object", keep_best_below_accept: bool = True,
                 search: Literal["vstar", "zoomeye"] = "vstar", zoomeye_options: dict[str, Any] | None = None) -> None:
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
        if search == "zoomeye" and cue != "vlm" and isinstance(cue, str):
            raise ValueError(f"search='zoomeye' asks the VLM ZoomEye's questions: it needs cue='vlm', got {cue!r}")
        self.search = search
        self.zoomeye = ZoomEyeConfig(**(zoomeye_options or {}))
        if context_map not in CONTEXT_MAPS:
            raise ValueError(f"context_map must be one of {', '.join(CONTEXT_MAPS)}, got {context_map!r}")
        self.context_map = context_map
        self.keep_best_below_accept = bool(keep_best_below_accept)
        if isinstance(cue, str) and cue not in OBJECT_CUES:
            raise ValueError(f"unknown V* object cue '{cue}'; choose one of {', '.join(OBJECT_CUES)} or pass a CueModel")
        self.cue_spec = cue
        self.vlm = vlm
        self.detector = detector
        self.config = config or SearchConfig()
        self.use_context = use_context
        self.model = model
        self.device = device
        self.text_options = dict(text_options or {})
        # how a photo's text is read (text_plan): the cost model's choice, or a forced mode; not TextCue's
        self.text_mode = str(self.text_options.pop("mode", "auto"))
        self.text_tile = int(self.text_options.pop("tile", 1024))
        self.text_tile_overlap = float(self.text_options.pop("tile_overlap", 0.25))
        if self.text_mode not in TEXT_MODES:
            raise ValueError(f"text_options.mode must be one of {', '.join(TEXT_MODES)}, got {self.text_mode!r}")
        self._object_cue: CueModel | None = None if isinstance(cue, str) else cue
        self._text_cue = text_cue
        self._context_cue: Any = None
        if isinstance(ocr, str):
            raise ValueError(f"the V* localizer's `ocr` option takes a reader instance; name a registered reader "
                             f"with tools={{'ocr': {ocr!r}}} (CLI: --tool ocr={ocr})")
        self.ocr = ocr
        self.read_margin = float(read_margin)
        self.read_line_px = float(read_line_px)
        self.read_max_upscale = max(1.0, float(read_max_upscale))
        self._reader: Any = None
        self._reader_resolved = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ cues
    def text_cue(self) -> CueModel:
        with self._lock:
            if self._text_cue is None:
                from lookcloser.tools.vstar.text_cue import TextCue

                try:
                    self._text_cue = TextCue(**self.text_options)
                except ModelLoadError:
                    raise
                except (ImportError, OSError, RuntimeError) as exc:
                    raise ModelLoadError(f"could not load the V* text cue (PP-OCRv6 via onnxruntime): {exc}") from exc
            return self._text_cue

    def object_cue(self) -> CueModel:
        with self._lock:
            if self._object_cue is None:
                self._object_cue = self._build_object_cue(str(self.cue_spec))
            return self._object_cue

    def _build_object_cue(self, name: str) -> CueModel:
        try:
            if name == "owlv2":
                from lookcloser.tools.vstar.owlv2_cue import Owlv2Cue

                options = {"device": self.device}
                if self.model:
                    options["model"] = self.model
                return Owlv2Cue(**options)
            if name == "vlm":
                if self.vlm is None:
                    raise ModelLoadError("the V* 'vlm' cue needs a VLM, but none is configured")
                from lookcloser.tools.vstar.vlm_cue import VLMCue

                return VLMCue(self.vlm)
            detector = self.detector() if callable(self.detector) and not hasattr(self.detector, "detect") else self.detector
            if detector is None:
                raise ModelLoadError("the V* 'detector' cue needs a detector, but none is configured")
            from lookcloser.tools.vstar.detector_cue import DetectorCue

            return DetectorCue(detector)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - every load failure becomes one clear line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"could not load the V* '{name}' cue model: {type(exc).__name__}: {reason}") from exc

    def reader(self) -> Any:
        """The OCR that reads text targets' lines, or None when the cue's own reads are used
        (no reader configured, or the default RapidOCR, which runs the cue's own models)."""
        with self._lock:
            if not self._reader_resolved:
                reader = self.ocr
                if callable(reader) and not hasattr(reader, "read"):
                    try:
                        reader = reader()
                    except LookupError:  # no `ocr` role configured: the cue reads
                        reader = None
                self._reader = reader
                self._reader_resolved = True
            return self._reader

    def context_cue(self) -> Any:
        """The contextual cue (ask the VLM where the target likely is), or None without a VLM."""
        if self.vlm is None or not self.use_context:
            return None
        mapper = self.object_cue() if self.context_map == "object" else None  # (takes the lock itself)
        with self._lock:
            if self._context_cue is None:
                try:
                    from lookcloser.tools.vstar.context_cue import make_context_cue
                except ImportError as exc:
                    raise ModelLoadError(f"the V* contextual cue is not available: {exc}") from exc
                self._context_cue = make_context_cue(self.vlm, mapper=mapper)
            return self._context_cue

    # ---------------------------------------------------------------- locate
    def locate(self, image: Image.Image, target: Target | str) -> list[Finding]:
        if isinstance(target, str):
            if not target.strip():
                raise ValueError("the V* localizer needs a non-empty target phrase, got an empty string")
            target = Target(name=target)
        if not target.name.strip():
            raise ValueError("the V* localizer needs a non-empty target phrase")
        if target.kind == "text":
            reader = self.reader()
            cue = self.text_cue()
            if hasattr(cue, "look_pixels"):  # the PP-OCR cue: tile, search, or both, by the cost model
                result, plan = read_text(image, cue, self.config, phrase=target.name, mode=self.text_mode,
                                         tile=self.text_tile, overlap=self.text_tile_overlap)
            else:  # another text cue (a test double): the search alone
                result, plan = read_all(image, cue, self.config, phrase=target.name), None
            if reader is None or shares_cue(reader):
                findings = self._text_findings(target, result, reader)
            else:
                findings = self._read_findings(image, target, result, reader)
            if plan is not None:
                for finding in findings:
                    finding.search = dict(finding.search or {}, plan=plan.record())
            return findings
        if self.search == "zoomeye":
            result = zoomeye_search(image, target.name, self.object_cue(), self.config, self.zoomeye)
        else:
            result = find_one(image, target.name, self.object_cue(), self.config, context_cue=self.context_cue())
        summary = result.summary()
        if result.best is None or (not result.found and not self.keep_best_below_accept):
            return [Finding(target=target, status="not_found", tool=self.name, search=summary,
                            score=float(result.best.score) if result.best else None)]
        if not result.found:
            summary["below_accept"] = True
        return [Finding(target=target, status="found", box=det.box, score=float(det.score), tool=self.name,
                        search=summary if i == 0 else dict(summary, steps=[], instance=i + 1))
                for i, det in enumerate(result.instances or [result.best])]

    def _text_findings(self, target: Target, result: SearchResult, reader: Any = None) -> list[Finding]:
        """The cue's reads kept (no reader, or the default RapidOCR sharing the cue's models)."""
        summary = dict(result.summary(), reader={"name": getattr(reader, "name", None) or "text cue",
                                                  "route": "shared with the text cue" if reader is not None
                                                  else "text cue (no ocr configured)"})
        lines = result.lines
        if reader is not None:
            min_score = float(getattr(_inner(reader), "min_score", 0.0) or 0.0)
            lines = [line for line in lines if line.score >= min_score]
        if not lines:
            return [Finding(target=target, status="not_found", tool=self.name, search=summary)]
        findings = []
        for line, match in rank_lines(lines, target.name):
            record = dict(summary, match=round(match, 4) if match is not None else None)
            findings.append(Finding(target=target, status="found", box=line.box, score=float(line.score),
                                    text=line.text, tool=self.name, search=record))
        return findings

    def _read_findings(self, image: Image.Image, target: Target, result: SearchResult, reader: Any) -> list[Finding]:
        """Another reader reads each line region the search found; its text replaces the cue's."""
        tool = f"{self.name}+{reader.name}"
        read: list[tuple[Detection, Detection]] = []  # (the reader's line in original pixels, the cue's line)
        for line in result.lines:
            text_read = self.read_region(image, line.box, reader)
            if text_read is not None:
                read.append((text_read, line))
        route = {"name": reader.name, "route": "reads each line region the search found",
                 "regions": len(result.lines), "regions_read": len(read)}
        summary = dict(result.summary(), reader=route)
        if not read:
            return [Finding(target=target, status="not_found", tool=tool, search=summary)]
        cue_text = {id(mine): cue for mine, cue in read}
        findings = []
        for line, match in rank_lines([mine for mine, _ in read], target.name):
            cue = cue_text[id(line)]
            record = dict(summary, match=round(match, 4) if match is not None else None,
                          cue_text=cue.text, cue_score=round(float(cue.score), 4))
            findings.append(Finding(target=target, status="found", box=line.box, score=float(line.score),
                                    text=line.text, tool=tool, search=record))
        return findings

    def read_region(self, image: Image.Image, box: Box, reader: Any) -> Detection | None:
        """Read one found line with `reader`: crop the box with a margin, enlarge it so the line is
        about `read_line_px` tall, read, keep the reader's lines that lie on the found line (centre
        inside the box, vertically), joined in reading order. The box is the found one; the score
        the reader's mean confidence. None when the reader reads nothing there."""
        height = max(box.height, 1.0)
        mx, my = self.read_margin * height, self.read_margin * height / 2
        left, top = max(0, int(box.x1 - mx)), max(0, int(box.y1 - my))
        right, bottom = min(image.width, int(box.x2 + mx + 1)), min(image.height, int(box.y2 + my + 1))
        if right <= left or bottom <= top:
            return None
        region = image.crop((left, top, right, bottom))
        scale = min(self.read_max_upscale, max(1.0, self.read_line_px / height))
        if scale > 1.0:
            region = region.resize((max(1, round(region.width * scale)), max(1, round(region.height * scale))),
                                   Image.Resampling.BICUBIC)
        lines = []
        for det in reader.read(region):
            if not (det.text or "").strip():
                continue
            cy = top + (det.box.y1 + det.box.y2) / 2 / scale
            cx = left + (det.box.x1 + det.box.x2) / 2 / scale
            if box.y1 - my / 2 <= cy <= box.y2 + my / 2 and box.x1 - mx <= cx <= box.x2 + mx:
                lines.append(det)
        if not lines:
            return None
        lines.sort(key=lambda d: d.box.x1)
        score = sum(d.score for d in lines) / len(lines)
        return Detection(box=box, score=float(score), text=" ".join(d.text.strip() for d in lines))


def _inner(tool: Any) -> Any:
    """The tool inside the agent's wrapper (`ExpertTool` keeps it as `inner`)."""
    while hasattr(tool, "inner") and tool.inner is not tool:
        tool = tool.inner
    return tool


def shares_cue(reader: Any) -> bool:
    """True for a reader whose reads are the text cue's own (the default RapidOCR with its bundled
    PP-OCRv6 models and no engine options says so: `reads_like_the_text_cue`): no second read."""
    return bool(getattr(_inner(reader), "reads_like_the_text_cue", False))


def create_vstar_localizer(context: Any = None, **options: Any) -> VStarLocalizer:
    """Registry factory. Options: cue ("owlv2" | "vlm" | "detector"), model, device, use_context,
    context_map ("object" | "grid"), keep_best_below_accept,
    ocr (reader instance; by default the agent's configured `ocr` tool), read_margin, read_line_px,
    read_max_upscale, search ("vstar" | "zoomeye") and zoomeye_options (dict for ZoomEyeConfig),
    text_options (dict for TextCue: det_side, max_upscale, min_box_px, native_max_pixels,
    max_input_pixels, runtime, threads, ...; and how a photo's text is read, `text_plan`: mode "auto" |
    "search" | "tile" | "tile_marked", tile, tile_overlap), and any SearchConfig field (e.g. max_steps=50)."""
    config_fields = set(SearchConfig.__dataclass_fields__)
    config_options = {k: options.pop(k) for k in list(options) if k in config_fields}
    config = options.pop("config", None) or SearchConfig()
    if config_options:
        config = config.with_options(**config_options)
    vlm = getattr(context, "vlm", None) if context is not None else None
    detector = None
    if context is not None and options.get("cue") == "detector" and "detector" not in options:
        detector = lambda: context.tool("detector")  # noqa: E731 - resolved on first object search
    options.setdefault("detector", detector)
    if context is not None and "ocr" not in options:
        options["ocr"] = lambda: context.tool("ocr")  # the configured reader, resolved on the first text target
    return VStarLocalizer(vlm=vlm, config=config, **options)


def vstar_options() -> type[BaseModel]:
    """The V* localizer's typed options (checked when the agent is built): VStarLocalizer's keyword
    arguments, TextCue's as the nested `text_options`, and every SearchConfig field with its own checks."""
    from lookcloser.tools.vstar.text_cue import TextCue  # noqa: PLC0415 - onnxruntime only when checked

    hints = typing.get_type_hints(SearchConfig)
    search_fields = {f.name: (hints[f.name], f.default) for f in fields(SearchConfig)}
    text_model = options_model(TextCue, name="text_options", exclude=("self", "calibration"), extra={
        "mode": (TextMode, "auto"),
        "tile": (Annotated[int, Field(ge=32)], 1024), "tile_overlap": (Annotated[float, Field(ge=0, lt=1)], 0.25)})
    zoomeye_model = options_model(ZoomEyeConfig, name="zoomeye_options", exclude=("self",))
    return options_model(VStarLocalizer, name="vstar options", exclude=("self", "vlm", "config"),
                         extra={**search_fields, "text_options": (text_model | None, None),
                                "zoomeye_options": (zoomeye_model | None, None)},
                         check=_search_config_holds)


def _search_config_holds(options: dict[str, Any]) -> None:
    """SearchConfig's own range checks (split_parts >= 2, max_steps >= 1, ...) on the fields set."""
    chosen = {k: v for k, v in options.items() if k in SearchConfig.__dataclass_fields__}
    if chosen:
        SearchConfig(**chosen)
