"""The V* localizer: the default `localizer` tool, wrapping the search with the right cue model.

Text targets run the read-all search with the `text` cue and return one Finding per line read
(lines matching quoted text first, the text in `Finding.text`). Object targets run the find-one
search with an object cue (`owlv2` by default, or `vlm`, `detector`, or any CueModel instance)
and return one Finding. Findings carry boxes, not crops.
Cue models are built lazily on first use and kept; a cue that cannot be loaded raises
ModelLoadError with one clear line (the agent turns it into a "failed" finding).
"""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from lookcloser.errors import ModelLoadError
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel
from lookcloser.tools.vstar.search import SearchResult, search
from lookcloser.tools.vstar.text_match import rank_lines
from lookcloser.types import Finding, Target

__all__ = ["OBJECT_CUES", "VStarLocalizer", "create_vstar_localizer"]

OBJECT_CUES = ("owlv2", "vlm", "detector")


class VStarLocalizer:
    """Localizer protocol: `locate(image, target) -> list[Finding]` in original-image pixels.

    cue: object cue name ("owlv2", "vlm", "detector") or a CueModel instance.
    text_cue: None (build the PP-OCR `text` cue on first text target) or a CueModel instance.
    vlm: the shared VLM; used by the `vlm` cue and for the contextual cue (when use_context).
    detector: a Detector for the `detector` cue (or a zero-argument callable returning one).
    """

    name = "vstar"

    def __init__(self, *, cue: str | CueModel = "owlv2", text_cue: CueModel | None = None, vlm: Any = None,
                 detector: Any = None, config: SearchConfig | None = None, use_context: bool = True,
                 model: str | None = None, device: str = "auto", text_options: dict[str, Any] | None = None) -> None:
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
        self._object_cue: CueModel | None = None if isinstance(cue, str) else cue
        self._text_cue = text_cue
        self._context_cue: Any = None
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
                    raise ModelLoadError(f"could not load the V* text cue (PP-OCRv4 via onnxruntime): {exc}") from exc
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

    def context_cue(self) -> Any:
        """The contextual cue (ask the VLM where the target likely is), or None without a VLM."""
        if self.vlm is None or not self.use_context:
            return None
        with self._lock:
            if self._context_cue is None:
                try:
                    from lookcloser.tools.vstar.context_cue import make_context_cue
                except ImportError as exc:
                    raise ModelLoadError(f"the V* contextual cue is not available: {exc}") from exc
                self._context_cue = make_context_cue(self.vlm)
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
            result = search(image, target.name, self.text_cue(), self.config, mode="read_all")
            return self._text_findings(target, result)
        result = search(image, target.name, self.object_cue(), self.config, mode="find",
                        context_cue=self.context_cue())
        summary = result.summary()
        if not result.found or result.best is None:
            return [Finding(target=target, status="not_found", tool=self.name, search=summary,
                            score=float(result.best.score) if result.best else None)]
        return [Finding(target=target, status="found", box=result.best.box, score=float(result.best.score),
                        tool=self.name, search=summary)]

    def _text_findings(self, target: Target, result: SearchResult) -> list[Finding]:
        summary = result.summary()
        if not result.lines:
            return [Finding(target=target, status="not_found", tool=self.name, search=summary)]
        findings = []
        for line, match in rank_lines(result.lines, target.name):
            record = dict(summary, match=round(match, 4) if match is not None else None)
            findings.append(Finding(target=target, status="found", box=line.box, score=float(line.score),
                                    text=line.text, tool=self.name, search=record))
        return findings


def create_vstar_localizer(context: Any = None, **options: Any) -> VStarLocalizer:
    """Registry factory. Options: cue ("owlv2" | "vlm" | "detector"), model, device, use_context,
    text_options (dict for TextCue: det_side, max_upscale, min_box_px, native_max_pixels, threads), and any
    SearchConfig field (e.g. max_steps=50)."""
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
    known = {"cue", "text_cue", "detector", "use_context", "model", "device", "text_options"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown V* localizer option(s) {unknown}; known: {sorted(known | config_fields)}")
    return VStarLocalizer(vlm=vlm, config=config, **options)
