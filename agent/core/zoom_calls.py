"""The zoom strategy's tool calls: their schemas, the text forms trained zoomers write, and their boxes in pixels.

Why here: turning a reply into calls and a box into original-photo pixels is pure text -> numbers, like the
grounding conventions next door (lookcloser.core.boxes); the zoom nodes (graphs) and their tests use it.

The calls are the ones models were trained on, by name and arguments:
* `image_zoom_in_tool(bbox_2d, label[, img_idx])`: Qwen-Agent's tool for Qwen3-VL "think with images"
  (qwen_agent/tools/image_zoom_in_qwen3vl.py: 0-1000 relative to image `img_idx`, 0 the photo), DeepEyes
  (verl/workers/agent/envs/mm_process_engine/visual_toolbox_v2.py: absolute pixels of the photo, always the
  photo) and Chain-of-Focus, sent as OpenAI `tool_calls` or as Hermes text
  `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; DeepEyes' later prompt form
  `<tool_call>{"function": "zoom_in", "bbox_2d": ..., "label": ...}</tool_call>` is read too.
* Mini-o3's `<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image" | "observation_i"}</grounding>`
  (Mini-o3 verl/trainer/constants.py, verl/workers/rollout/vllm_rollout/function_tools.py: 0-1 relative to the
  named image; observation_0 is the photo, observation_i the i-th zoomed view).
* `find(target, kind)`: lookcloser's own SEARCH as a tool.
The answer is the text inside `<answer>...</answer>` when the reply has one.
Nothing here raises on a model's reply: what could not be read is a note.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FIND", "ZOOM", "ZoomCall", "ZoomReply", "ZoomCoords", "as_call", "original_box", "parse_reply",
           "tool_schemas", "zoom_coords"]

ZOOM = "image_zoom_in_tool"
FIND = "find"
#: How a zoom call's bbox_2d is written: 0-1000 or 0-1 of the named view, absolute pixels of the photo (DeepEyes,
#: Chain-of-Focus), or absolute pixels of the named view as its processor's grid saw it (Qwen2.5-VL).
ZoomCoords = Literal["relative_1000", "relative_1", "absolute", "grid"]
ZOOM_COORDS: tuple[str, ...] = ("relative_1000", "relative_1", "absolute", "grid")
#: Only this much of a reply is read for calls (a runaway reply costs milliseconds).
MAX_CHARS = 20_000
#: Calls read from one reply at most; the rest are dropped with a note.
MAX_CALLS = 4

_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_GROUNDING = re.compile(r"<grounding>(.*?)(?:</grounding>|$)", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_OBSERVATION = re.compile(r"(?:observation|image|view)[_ ]?(\d+)", re.IGNORECASE)


def tool_schemas(*, with_find: bool) -> list[dict[str, Any]]:
    """The tools as OpenAI function schemas (the Hermes prompt lists the same JSON)."""
    zoom = {"type": "function", "function": {
        "name": ZOOM,
        "description": "Zoom in on a region of an image by cropping it at full resolution, given its bounding box "
                       "(bbox_2d) and a label for what is in it. The crop comes back as a new image.",
        "parameters": {"type": "object", "properties": {
            "bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                        "description": "The region to zoom in, as [x1, y1, x2, y2]: (x1, y1) the top-left corner "
                                       "and (x2, y2) the bottom-right corner."},
            "label": {"type": "string", "description": "The name of the object or text in the box."},
            "img_idx": {"type": "number", "description": "The index of the image to zoom in: 0 is the original "
                                                         "photo (the default), 1 the first zoomed view, ..."}},
            "required": ["bbox_2d", "label"]}}}
    if not with_find:
        return [zoom]
    find = {"type": "function", "function": {
        "name": FIND,
        "description": "Search the whole full-resolution photo for a target with detection and OCR experts; returns "
                       "where it was found (boxes), text read there, and crops of what was found.",
        "parameters": {"type": "object", "properties": {
            "target": {"type": "string", "description": "What to find, e.g. 'the red sign' or 'the price tag'."},
            "kind": {"type": "string", "enum": ["object", "text"],
                     "description": "'text' to find and read text, 'object' for a thing (the default)."}},
            "required": ["target"]}}}
    return [zoom, find]


@dataclass
class ZoomCall:
    """One call: `name` (ZOOM or FIND), its arguments, the id the model gave it (native calls) and the form it
    came in ("native", "hermes", "grounding")."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None
    form: str = "native"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "id": self.id, "form": self.form}


@dataclass
class ZoomReply:
    """What a reply says: its calls, its answer (the `<answer>` text, or the reply without thinking and calls when
    it makes no call), and notes on what could not be read."""

    calls: list[ZoomCall] = field(default_factory=list)
    answer: str | None = None
    notes: list[str] = field(default_factory=list)


def as_call(name: Any, arguments: Any, *, id: str | None = None, form: str = "native") -> tuple[ZoomCall | None, str | None]:
    """A call from a name and its arguments (a dict or its JSON text), or (None, why not)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None, f"the arguments of {name!r} are not JSON: {_quote(arguments)}"
    if not isinstance(arguments, dict):
        return None, f"the arguments of {name!r} are not an object: {_quote(str(arguments))}"
    name = {"zoom_in": ZOOM, "zoom": ZOOM, "crop": ZOOM}.get(str(name), str(name))
    if name not in (ZOOM, FIND):
        return None, f"unknown tool {name!r}: the tools are {ZOOM} and {FIND}"
    return ZoomCall(name, arguments, id, form), None


def parse_reply(text: str) -> ZoomReply:
    """The calls and answer of a reply's text (Hermes `<tool_call>` and Mini-o3 `<grounding>` forms)."""
    out = ZoomReply()
    text = str(text or "")
    if len(text) > MAX_CHARS:
        out.notes.append(f"reply of {len(text)} characters: only the first {MAX_CHARS} were read")
        text = text[:MAX_CHARS]
    answer = _ANSWER.findall(text)
    for body in _TOOL_CALL.findall(text):
        data, why = _json_object(body)
        if data is None:
            out.notes.append(f"a <tool_call> could not be read ({why}): {_quote(body)}")
            continue
        if "name" in data:
            call, why = as_call(data["name"], data.get("arguments", data.get("parameters", {})), form="hermes")
        else:  # DeepEyes' flat form: {"function": "zoom_in", "bbox_2d": ..., "label": ...}
            call, why = as_call(data.get("function"), {k: v for k, v in data.items() if k != "function"},
                                form="hermes")
        out.calls.append(call) if call is not None else out.notes.append(why)
    for body in _GROUNDING.findall(text):
        data, why = _json_object(body)
        if data is None:
            out.notes.append(f"a <grounding> could not be read ({why}): {_quote(body)}")
            continue
        out.calls.append(ZoomCall(ZOOM, data, None, "grounding"))
    if len(out.calls) > MAX_CALLS:
        out.notes.append(f"the reply makes {len(out.calls)} calls: only the first {MAX_CALLS} were run")
        out.calls = out.calls[:MAX_CALLS]
    if answer:
        out.answer = answer[-1].strip() or None
    elif not out.calls:
        bare = _THINK.sub("", text)
        bare = re.sub(r"</?(think|answer)>", "", _GROUNDING.sub("", _TOOL_CALL.sub("", bare))).strip()
        out.answer = bare or None
    return out


def _json_object(body: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON object in a tag's body (a ```json fence and stray text around it tolerated)."""
    body = body.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None, "no JSON object"
    try:
        data = json.loads(body[start:end + 1])
    except ValueError as exc:
        return None, f"invalid JSON: {str(exc).splitlines()[0][:80]}"
    return (data, "") if isinstance(data, dict) else (None, "not a JSON object")


def zoom_coords(call: ZoomCall, coords: str) -> str:
    """The coordinates a call is written in: Mini-o3's grounding form is always 0-1; else `coords`."""
    return "relative_1" if call.form == "grounding" else coords


def view_index(call: ZoomCall, n_views: int) -> tuple[int | None, str | None]:
    """Which view a zoom call names (0, the photo, unless `img_idx` / `source` names a later one), or (None, why)."""
    arguments = call.arguments
    raw = arguments.get("img_idx", arguments.get("source", 0))
    if isinstance(raw, str):
        if raw.strip().lower() in ("", "original_image", "original", "image"):
            return 0, None
        match = _OBSERVATION.fullmatch(raw.strip())
        if match is None:
            return None, f"source {raw!r} names no image: use 'original_image' or 'observation_N'"
        raw = int(match.group(1))
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw != int(raw):
        return None, f"img_idx {raw!r} is not an image index"
    index = int(raw)
    if not 0 <= index < n_views:
        return None, (f"img_idx {index} names no image: the images are 0 (the photo) to {n_views - 1}" if n_views > 1
                      else f"img_idx {index} names no image: there is only image 0, the photo")
    return index, None


def original_box(call: ZoomCall, coords: str, view_box: tuple[float, float, float, float],
                 view_sent: tuple[int, int], photo: tuple[int, int]) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """A zoom call's bbox_2d in pixels of the photo, clipped to it, or (None, why not).

    view_box: where the named view lies in the photo (pixels); view_sent: its (width, height) as the VLM received
    it (grid coordinates are pixels of that); photo: the photo's (width, height)."""
    raw = call.arguments.get("bbox_2d", call.arguments.get("bbox"))
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        return None, f"bbox_2d must be 4 numbers [x1, y1, x2, y2], got {_quote(json.dumps(raw, default=str))}"
    try:
        x1, y1, x2, y2 = (float(v) for v in raw)
    except (TypeError, ValueError):
        return None, f"bbox_2d must be 4 numbers, got {_quote(json.dumps(raw, default=str))}"
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None, f"bbox_2d {list(raw)} is not finite"
    if x2 <= x1 or y2 <= y1:
        return None, f"bbox_2d {_show(raw)} is inverted or empty (x2 <= x1 or y2 <= y1)"
    coords = zoom_coords(call, coords)
    vx1, vy1, vx2, vy2 = view_box
    if coords == "absolute":  # DeepEyes crops the photo itself, whatever was shown last
        box = (x1, y1, x2, y2)
    else:
        sx, sy = {"relative_1000": (1000.0, 1000.0), "relative_1": (1.0, 1.0),
                  "grid": (float(view_sent[0]), float(view_sent[1]))}[coords]
        fx, fy = (vx2 - vx1) / sx, (vy2 - vy1) / sy
        box = (vx1 + x1 * fx, vy1 + y1 * fy, vx1 + x2 * fx, vy1 + y2 * fy)
    width, height = photo
    clipped = (max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3]))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, f"bbox_2d {_show(raw)} ({coords}) lies outside the image"
    return clipped, None


def _show(values: Any) -> str:
    try:
        return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"
    except (TypeError, ValueError):
        return str(values)


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(str(text).split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")
