"""A VLM's own boxes: each family's grounding convention, from reply text to original-image pixels.

Why here: the conventions are pure text -> numbers, needed by the grounding expert (tools), by the backends that
say what grid their model saw (vlm) and by a zoom strategy (graphs); core is the one layer below all of them.
supervision's `Detections.from_vlm` parses the families it covers (Qwen2.5-VL, Qwen3-VL, PaliGemma); it is the
`[grounding]` extra and is imported inside `parse`, so importing this module stays cheap. The families it does
not parse from reply text get our own small parsers: GLM-V's box tokens, InternVL's `<ref>/<box>`, Florence-2's
raw `<loc_N>` text (supervision only reads Florence-2's post-processed dicts) and Molmo's points.

Every box comes back validated: finite, not inverted, clipped to the image, no repeats, at most `max_boxes` of
them; what was dropped, and why, is in `Parsed.notes`. Nothing here raises on a model's reply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CONVENTIONS", "DEFAULT_CONVENTION", "Convention", "Parsed", "ParsedBox", "convention",
           "derive_convention", "parse", "prompt", "smart_resize", "view_size"]

#: Qwen2.5-VL's grid: sides are multiples of patch_size 14 x merge_size 2 (preprocessor_config.json), within
#: min_pixels 56*56 and max_pixels 28*28*16384 = 12,845,056 (the released checkpoints' processor settings).
GRID_FACTOR = 28
QWEN25_MIN_PIXELS = 56 * 56
QWEN25_MAX_PIXELS = 28 * 28 * 16384
#: A reply with more distinct boxes than this is a runaway (a model repeating itself): none is kept. Only the first
#: MAX_CHARS characters of a reply are read, so a reply of thousands of boxes costs milliseconds.
MAX_BOXES = 100
MAX_CHARS = 20_000
#: A point (Molmo) becomes a square this many pixels wide in the view the model was sent.
POINT_BOX_PX = 32.0

Coords = Literal["grid", "relative", "points"]


@dataclass(frozen=True)
class Convention:
    """How one family writes boxes. coords: "grid" (absolute pixels of the image as the processor resized it),
    "relative" (0..scale of the image's width / height) or "points" (Molmo). parser: "supervision" or "lookcloser"
    (our own). batch: one prompt can name every target and the reply labels each box. prompt: str.format
    template with {targets} (batch) or {target}. source: where the format is documented."""

    name: str
    families: str
    coords: Coords
    scale: float
    parser: str
    batch: bool
    prompt: str
    source: str


_QWEN_PROMPT = ('Locate every instance that belongs to the following categories: {targets}. '
                'Report bbox coordinates in JSON format, as [{{"bbox_2d": [x1, y1, x2, y2], "label": "..."}}] '
                'with each label one of those categories; report [] when none is visible.')

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("qwen2_5_vl", "Qwen2.5-VL", "grid", 1.0, "supervision", True, _QWEN_PROMPT,
               "absolute pixels of the smart-resized input (QwenLM/Qwen2.5-VL cookbooks/spatial_understanding.ipynb; "
               "grid: transformers qwen2_vl image_processing smart_resize)"),
    Convention("qwen3_vl", "Qwen3-VL", "relative", 1000.0, "supervision", True, _QWEN_PROMPT,
               "0-1000 relative (QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb: 'changed from absolute coordinates "
               "... to relative coordinates ranging from 0 to 1000')"),
    Convention("glm", "GLM-4.1V, GLM-4.5V, GLM-4.6V", "relative", 1000.0, "lookcloser", False,
               "Help me to locate {target} in the image and give me its bounding boxes.",
               "<|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|>, 0-1000, bracket style may vary (zai-org/GLM-V README, "
               "Grounding)"),
    Convention("internvl", "InternVL 2.5 / 3 / 3.5", "relative", 1000.0, "lookcloser", False,
               "Please provide the bounding box coordinate of the region this sentence describes: <ref>{target}</ref>",
               "<ref>label</ref><box>[[x1,y1,x2,y2]]</box>, 0-1000 (OpenGVLab/InternVL "
               "internvl_chat/eval/refcoco/evaluate_grounding.py)"),
    Convention("paligemma", "PaliGemma, PaliGemma 2", "relative", 1024.0, "supervision", True,
               "detect {targets}",
               "<locY1><locX1><locY2><locX2> label, y first, 1024 bins (google PaliGemma model card; "
               "supervision from_paligemma)"),
    Convention("florence_2", "Florence-2", "relative", 1000.0, "lookcloser", True,
               "<CAPTION_TO_PHRASE_GROUNDING>{targets}",
               "phrase<loc_x1><loc_y1><loc_x2><loc_y2>, 1000 bins, a bin's centre (transformers florence2 "
               "processing_florence2.py, dequantize: (bin + 0.5) * size / 1000)"),
    Convention("molmo", "Molmo, Molmo 2", "points", 1.0, "lookcloser", False, "Point to the {target}.",
               'Molmo: <point x="61.5" y="40.6" alt="..."> 0-100 (allenai/Molmo-7B-O-0924 discussion 1); Molmo 2: '
               '<points coords="1 1 520 430 ..."> 0-1000 (allenai/Molmo2-4B model card)'),
    Convention("relative_1000", "any other model", "relative", 1000.0, "supervision", True, _QWEN_PROMPT,
               "Qwen3-VL-style JSON, else bracketed [x1, y1, x2, y2], 0-1000 relative (the default)"),
)}
DEFAULT_CONVENTION = "relative_1000"

#: transformers config model_type -> convention.
_MODEL_TYPES = {
    "qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl", "qwen3_vl_moe": "qwen3_vl",
    "glm4v": "glm", "glm4v_moe": "glm", "glm46v": "glm",
    "internvl": "internvl", "internvl_chat": "internvl",
    "paligemma": "paligemma", "florence2": "florence_2", "florence_2": "florence_2",
    "molmo": "molmo", "molmo2": "molmo",
}
#: A model's name (an OpenAI-compatible server's model, a hub id), lower-cased with only letters and digits kept.
_NAMES = ((re.compile(r"qwen25vl"), "qwen2_5_vl"), (re.compile(r"qwen3vl"), "qwen3_vl"),
          (re.compile(r"glm\d*v"), "glm"), (re.compile(r"internvl"), "internvl"),
          (re.compile(r"paligemma"), "paligemma"), (re.compile(r"florence"), "florence_2"),
          (re.compile(r"molmo"), "molmo"))


def convention(name: str) -> Convention:
    """The convention called `name`; a ValueError lists the known ones."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in CONVENTIONS:
        raise ValueError(f"unknown box_format {name!r}; known: {', '.join(CONVENTIONS)}")
    return CONVENTIONS[key]


def derive_convention(box_format: str | None = None, *, model_type: str | None = None,
                      model_name: str | None = None) -> tuple[Convention, str]:
    """The convention to read a model's boxes in, and why: `box_format` when set, else the transformers config's
    `model_type`, else the model's name, else 0-1000 relative."""
    if box_format:
        return convention(box_format), "box_format"
    if model_type and str(model_type).lower() in _MODEL_TYPES:
        return CONVENTIONS[_MODEL_TYPES[str(model_type).lower()]], f"model_type {model_type}"
    flat = re.sub(r"[^a-z0-9]", "", str(model_name or "").lower())
    for pattern, name in _NAMES:
        if pattern.search(flat):
            return CONVENTIONS[name], f"model name {model_name}"
    return CONVENTIONS[DEFAULT_CONVENTION], "default (unknown model)"


# ------------------------------------------------------------------------------------------ sizes
def smart_resize(width: int, height: int, *, factor: int = GRID_FACTOR, min_pixels: int = QWEN25_MIN_PIXELS,
                 max_pixels: int = QWEN25_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of Qwen2-VL / Qwen2.5-VL's resized input: sides multiples of `factor`, pixels within
    [min_pixels, max_pixels], aspect kept (transformers' `smart_resize`, same arithmetic; tests compare the two:
    importing transformers' costs seconds and torchvision)."""
    if min(width, height) < 1:
        raise ValueError(f"an image needs at least 1x1 pixels, got {width}x{height}")
    if max(width, height) / min(width, height) > 200:
        raise ValueError(f"aspect ratio {max(width, height) / min(width, height):.0f} is above the 200 Qwen allows")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def view_size(width: int, height: int, conv: Convention, max_pixels: int) -> tuple[int, int]:
    """The size to send an image of width x height at: on the family's grid for grid conventions (so a processor
    that smart-resizes it again changes nothing), else shrunk to max_pixels with its aspect (never enlarged)."""
    if conv.coords == "grid":
        return smart_resize(width, height, max_pixels=max(max_pixels, QWEN25_MIN_PIXELS))
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def prompt(conv: Convention, names: list[str]) -> str:
    """The family's grounding request for `names` (one name unless the convention batches)."""
    if conv.batch:
        if conv.name == "paligemma":  # "detect cat ; dog"
            joined = " ; ".join(names)
        elif conv.name == "florence_2":  # a caption whose phrases are grounded
            joined = ". ".join(names) + "."
        else:
            joined = ", ".join(f'"{n}"' for n in names)
        return conv.prompt.format(targets=joined)
    if len(names) != 1:
        raise ValueError(f"the {conv.name} convention asks for one target per call, got {len(names)}")
    return conv.prompt.format(target=names[0])


# ------------------------------------------------------------------------------------------ parsing
@dataclass
class ParsedBox:
    """One box in pixels of the image it was mapped to; `label` as the model wrote it; `point`: it was a point."""

    xyxy: tuple[float, float, float, float]
    label: str | None = None
    point: bool = False


@dataclass
class Parsed:
    boxes: list[ParsedBox] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|NaN|nan|-?[Ii]nf(?:inity)?)"
_QUAD = re.compile(rf"[\[(<]\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*[\])>]")
_PAIRS = re.compile(rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*,\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)")
_PALIGEMMA = re.compile(r"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>")
_BBOX_2D = re.compile(rf'"bbox_2d"\s*:\s*\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]')


def parse(text: str, conv: Convention, *, sent_size: tuple[int, int], out_size: tuple[int, int],
          max_boxes: int = MAX_BOXES, max_chars: int = MAX_CHARS) -> Parsed:
    """The boxes of a grounding reply, in pixels of an image of `out_size` (width, height).

    sent_size: the (width, height) the model saw that image at (grid conventions read absolute pixels of it; a
    point's box is POINT_BOX_PX of it). Boxes that are not finite, inverted, empty, wholly outside the image or
    repeats are dropped, the rest clipped; more than `max_boxes` is a runaway reply and gives none. Never raises
    on the reply: `notes` says what went wrong (one note per reason)."""
    out = Parsed()
    text = str(text or "")
    if len(text) > max_chars:
        out.notes.append(f"reply of {len(text)} characters: only the first {max_chars} were read")
        text = text[:max_chars]
    sent_w, sent_h = sent_size
    width, height = out_size
    if min(sent_w, sent_h, width, height) <= 0:
        raise ValueError(f"sent_size and out_size must be positive, got {sent_size} and {out_size}")
    try:
        raw = _read(text, conv, sent_size, out_size)
    except ImportError as exc:
        raise ImportError(f"reading {conv.families} boxes needs supervision: pip install 'lookcloser[grounding]' "
                          f"({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - a malformed reply is a note, never a traceback
        out.notes.append(f"the reply's boxes are malformed ({type(exc).__name__}: {_first_line(exc)}): {_quote(text)}")
        return out
    if not raw:
        out.notes.append(f"no box in the reply ({conv.name} convention): {_quote(text)}")
        return out
    dropped: dict[str, list[str]] = {}  # why -> the boxes dropped for it
    seen: set[tuple] = set()
    for xyxy, label, point in raw:
        problem = _problem(xyxy)
        x1, y1, x2, y2 = (float(v) for v in xyxy) if problem is None else (0.0, 0.0, 0.0, 0.0)
        box = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width),
               min(max(y2, 0.0), height))
        if problem is None and (box[2] <= box[0] or box[3] <= box[1]):
            problem = f"outside the image ({width}x{height})"
        label = label.strip() if isinstance(label, str) and label.strip() else None
        key = (tuple(round(v, 1) for v in box), label)
        if problem is None and key in seen:
            problem = "a repeat of an earlier box"
        if problem is not None:
            dropped.setdefault(problem, []).append(_show(xyxy))
            continue
        seen.add(key)
        out.boxes.append(ParsedBox(box, label, point))
    for problem, shown in dropped.items():
        more = f" and {len(shown) - 1} more" if len(shown) > 1 else ""
        out.notes.append(f"box {shown[0]}{more} dropped: {problem}")
    if len(out.boxes) > max_boxes:
        out.notes.append(f"the reply holds {len(out.boxes)} boxes, more than {max_boxes}: taken as a runaway reply, "
                         "none kept")
        out.boxes = []
    if any(b.point for b in out.boxes):
        out.notes.append(f"{conv.families} answers with points: each became a {POINT_BOX_PX:g}-px box around it "
                         "(in the view sent)")
    return out


def _read(text: str, conv: Convention, sent: tuple[int, int], out: tuple[int, int]) -> list[tuple]:
    """(xyxy in `out` pixels, label, is_point) per box, before validation."""
    if conv.name in ("qwen2_5_vl", "qwen3_vl", "relative_1000"):
        space = sent if conv.coords == "grid" else (conv.scale, conv.scale)
        found = _supervision(text, conv.name, sent, out)
        if not found:  # a lone object or a box without a label: supervision's parser skips both
            found = [(_scaled(q, space, out), None, False) for q in _BBOX_2D.findall(text)]
        if not found and conv.name == "relative_1000":
            found = [(_scaled(q, space, out), None, False) for q in _quads(text)]
        return found
    if conv.name == "paligemma":
        return _supervision(text, conv.name, sent, out)
    relative = (conv.scale, conv.scale)
    if conv.name == "glm":
        # the markers may have been decoded away (skip_special_tokens): then the bracketed boxes of the whole text
        spans = [part.split("<|end_of_box|>", 1)[0] for part in text.split("<|begin_of_box|>")[1:]] or [text]
        return [(_scaled(q, relative, out), None, False) for span in spans for q in _quads(span)]
    if conv.name == "internvl":
        refs = {m.end(): m.group(1) for m in re.finditer(r"<ref>([^<]*)</ref>\s*", text)}  # where each ref ends
        found = []
        for box in re.finditer(r"<box>([^<]*)</box>", text):
            label = refs.get(box.start())
            found.extend((_scaled(q, relative, out), label or None, False) for q in _quads(box.group(1)))
        return found
    if conv.name == "florence_2":
        found, label, start = [], None, 0
        for locs in re.finditer(r"<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>", text):
            phrase = re.sub(r"<[^<>]*>", "", text[start:locs.start()]).strip()  # the text since the last box
            label, start = phrase or label, locs.end()  # boxes of one phrase follow it without repeating it
            found.append((_scaled([float(v) + 0.5 for v in locs.groups()], relative, out), label, False))
        return found
    if conv.name == "molmo":
        return _molmo(text, sent, out)
    raise ValueError(f"no parser for the {conv.name} convention")


def _supervision(text: str, name: str, sent: tuple[int, int], out: tuple[int, int]) -> list[tuple]:
    import supervision as sv  # noqa: PLC0415 - the [grounding] extra, ~1 s to import

    kinds = {"qwen2_5_vl": (sv.VLM.QWEN_2_5_VL, {"input_wh": sent}), "qwen3_vl": (sv.VLM.QWEN_3_VL, {}),
             "relative_1000": (sv.VLM.QWEN_3_VL, {}), "paligemma": (sv.VLM.PALIGEMMA, {})}
    vlm, extra = kinds[name]
    detections = sv.Detections.from_vlm(vlm, text, resolution_wh=out, **extra)
    labels = detections.data.get("class_name", [None] * len(detections))
    found = [(tuple(float(v) for v in xyxy), str(label), False) for xyxy, label in zip(detections.xyxy, labels)]
    # supervision puts swapped corners back in order; an inverted box is a bad reply here, as in our own parsers
    space = (1024.0, 1024.0) if name == "paligemma" else sent if name == "qwen2_5_vl" else (1000.0, 1000.0)
    raw = ([[float(v) for v in (m[1], m[0], m[3], m[2])] for m in _PALIGEMMA.findall(text)] if name == "paligemma"
           else [[float(v) for v in m] for m in _BBOX_2D.findall(text)])
    inverted = [_scaled(q, space, out) for q in raw if q[2] < q[0] or q[3] < q[1]]
    if not inverted:
        return found
    sorted_corners = [(min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])) for b in inverted]
    kept = [f for f in found if not any(_close(f[0], b) for b in sorted_corners)]
    return kept + [(b, None, False) for b in inverted]  # reported as inverted by `parse`


def _close(a: tuple, b: tuple) -> bool:
    return all(abs(x - y) <= 1e-6 * max(1.0, abs(y)) for x, y in zip(a, b))


def _molmo(text: str, sent: tuple[int, int], out: tuple[int, int]) -> list[tuple]:
    """Molmo's points: `<point x= y=>` / `<points x1= y1= ...>` in percent (Molmo), `coords="..."` in 0-1000
    (Molmo 2: frame, then index x y triples, as its model card's regexes read them); each a small box."""
    points: list[tuple[float, float, str | None]] = []
    for tag in re.finditer(r"<points?\b([^<>]*)>(?:([^<]*)</points?>)?", text):
        attributes, inner = tag.group(1), (tag.group(2) or "").strip()
        alt = re.search(r'alt="([^"]*)"', attributes)
        label = (alt.group(1) if alt else inner) or None
        coords = re.search(r'coords="([0-9\t:;, .]+)"', attributes)
        if coords:
            for group in re.finditer(r"(?:^|\t|:|,|;)([0-9.]+) ([0-9. ]+)", coords.group(1)):
                for _, x, y in re.findall(r"([0-9]+) ([0-9]{3,4}) ([0-9]{3,4})", group.group(2)):
                    points.append((float(x) / 1000, float(y) / 1000, label))
            continue
        for _, x, y in re.findall(r'x(\d*)="\s*([-0-9.eE]+)"\s+y\1="\s*([-0-9.eE]+)"', attributes):
            points.append((float(x) / 100, float(y) / 100, label))
    width, height = out
    half_w, half_h = POINT_BOX_PX / 2 * width / sent[0], POINT_BOX_PX / 2 * height / sent[1]
    return [((fx * width - half_w, fy * height - half_h, fx * width + half_w, fy * height + half_h), label, True)
            for fx, fy, label in points]


def _quads(text: str) -> list[list[float]]:
    """Every bracketed [a, b, c, d] (or (a,b,c,d), <a,b,c,d>) and (x1,y1),(x2,y2) in the text."""
    found = [[float(v) for v in m.groups()] for m in _QUAD.finditer(text)]
    return found + [[float(v) for v in m.groups()] for m in _PAIRS.finditer(text)]


def _scaled(values: list[float] | tuple, space: tuple[float, float], out: tuple[int, int]) -> tuple:
    values = [float(v) for v in values]
    sx, sy = out[0] / space[0], out[1] / space[1]
    return (values[0] * sx, values[1] * sy, values[2] * sx, values[3] * sy)


def _problem(xyxy: tuple) -> str | None:
    if len(xyxy) != 4:
        return f"{len(xyxy)} numbers, not 4"
    if not all(math.isfinite(v) for v in xyxy):
        return "not a finite number"
    if xyxy[2] < xyxy[0] or xyxy[3] < xyxy[1]:
        return "inverted (x2 < x1 or y2 < y1)"
    if xyxy[2] == xyxy[0] or xyxy[3] == xyxy[1]:
        return "empty (zero width or height)"
    return None


def _show(xyxy: tuple) -> str:
    return "[" + ", ".join(f"{v:.0f}" if math.isfinite(v) else str(v) for v in xyxy) + "]"


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...") if flat else "(an empty reply)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:160] if text else type(exc).__name__)
