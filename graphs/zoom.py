"""The zoom strategy: the VLM drives, in a bounded loop of a model node and a tool node (LangGraph's agent shape).

    read_input → zoom_model ─┬─ calls → zoom_tools → zoom_model ...
                             └─ answer (or the budget is spent) → END

`zoom_model` shows the VLM the photo, the question and every earlier turn (its calls, their results, the views
it zoomed into) and reads its calls: native tool calls where the backend has them (`AgentConfig.zoom_calls`),
else or also the text forms trained zoomers write (lookcloser.core.zoom_calls). `zoom_tools` runs them:
`image_zoom_in_tool` cuts the box out of the photo at native resolution (a new view, the VLM sees it next turn);
`find` runs SEARCH with the configured localizer, and the segmenter on what it found when one is set (its
findings join the run's findings, as the vstar strategy's do). State stays plain JSON: a view is its box in the photo, cut again from the photo when the conversation is
rebuilt, so a checkpoint holds no pixels.

Bounds: `max_zoom_turns` VLM calls (the last one is told to answer and gets no tools), `max_zoom_pixels` per
crop, `max_zoom_images` images in the conversation, the question's deadline. A caller that never answers, or
writes calls that cannot be read, ends with the best answer so far and a note; never a hang.
"""

from __future__ import annotations

import json
import math
from typing import Any

from PIL import Image

from lookcloser.core.config import AgentConfig, cap_text
from lookcloser.core.deadline import time_left
from lookcloser.core.errors import TimeLimitError
from lookcloser.core import boxes
from lookcloser.core import zoom_calls as zc
from lookcloser.core.types import Finding, Target
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply, supports
from lookcloser.graphs.counting import counting
from lookcloser.graphs.progress import finding_event, step_events
from lookcloser.imaging.refs import resolve_image
from lookcloser.prompts import options_block, render_prompt
from lookcloser.runtime.context import Services

__all__ = ["MIN_ZOOM_SIDE", "route_after_zoom_model", "zoom_model", "zoom_tools"]

#: A box whose shorter side is below this (photo pixels) is widened around its centre first (DeepEyes' 28 px:
#: below it the vision encoder has less than one patch).
MIN_ZOOM_SIDE = 28
#: A crop smaller than this many pixels is enlarged (at most UPSCALE_LIMIT x) before it is sent: Qwen-Agent's zoom
#: tool brings crops to at least 256 x 32 x 32 pixels; a 40-px word is easier to read at 4x.
MIN_CROP_PIXELS = 256 * 28 * 28
UPSCALE_LIMIT = 4.0
#: Findings of one `find` call shown back to the VLM as crops, at most.
FIND_CROPS = 2

_COORDS_RULES = {
    "relative_1000": "Boxes (bbox_2d) are [x1, y1, x2, y2] with coordinates from 0 to 1000, relative to the width and "
                     "height of the image img_idx names (0, the photo, unless you name a zoomed view).",
    "relative_1": "Boxes (bbox_2d) are [x1, y1, x2, y2] with coordinates from 0 to 1, relative to the width and "
                  "height of the image they refer to.",
    "absolute": "Boxes (bbox_2d) are [x1, y1, x2, y2] in pixels of the original photo ($width x $height).",
    "grid": "Boxes (bbox_2d) are [x1, y1, x2, y2] in pixels of the image img_idx names, as you see it.",
}
#: Trained zoomers whose boxes are not their base family's (the model name, letters and digits only).
_ZOOMERS = (("deepeyes", "absolute"), ("chainoffocus", "absolute"), ("miniO3".lower(), "relative_1"))


# ------------------------------------------------------------------------------------------ setup
def _backend(vlm: Any) -> Any:
    found = vlm
    while getattr(found, "backend", None) is not None and found.backend is not found:
        found = found.backend
    return found


def coords_for(services: Services, config: AgentConfig) -> tuple[str, str]:
    """The zoom box coordinates and why: the setting, a trained zoomer's name, else the VLM's box convention."""
    if config.zoom_coords != "auto":
        return config.zoom_coords, "zoom_coords"
    backend = _backend(services.vlm)
    name = str(getattr(backend, "model_id", None) or getattr(backend, "name", "") or "")
    flat = "".join(ch for ch in name.lower() if ch.isalnum())
    for pattern, coords in _ZOOMERS:
        if pattern in flat:
            return coords, f"model name {name}"
    conv, why = boxes.derive_convention(getattr(backend, "box_format", None),
                                        model_type=getattr(backend, "model_type", None), model_name=name)
    if conv.coords == "grid":
        return "grid", why
    return "relative_1000", why


def native_calls(services: Services, config: AgentConfig) -> bool:
    """Whether the VLM's own tool calling carries the calls (`zoom_calls`); 'native' on a backend without it fails
    at the first turn, naming the backend."""
    if config.zoom_calls == "text":
        return False
    has = supports(services.vlm, "tools")
    if config.zoom_calls == "native" and not has:
        raise ValueError(f"zoom_calls='native', but {services.vlm.name} has no native tool calling; use "
                         "zoom_calls='text' or 'auto'")
    return has


def _sent_size(services: Services, size: tuple[int, int], coords: str) -> tuple[int, int]:
    """What the VLM receives of an image of `size` (the backend says when it can); grid coordinates need it."""
    method = getattr(_backend(services.vlm), "sent_image_size", None)
    if callable(method):
        try:
            return tuple(int(v) for v in method(size))  # type: ignore[return-value]
        except (NotImplementedError, ValueError):
            pass
    return boxes.smart_resize(*size) if coords == "grid" else size


# ------------------------------------------------------------------------------------------ views
def cut_view(photo: Image.Image, box: list[float], config: AgentConfig) -> Image.Image:
    """The view of `box` (photo pixels): cut at native resolution, shrunk to max_zoom_pixels, a small one enlarged."""
    x1, y1, x2, y2 = (int(math.floor(box[0])), int(math.floor(box[1])), int(math.ceil(box[2])), int(math.ceil(box[3])))
    crop = photo.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))).convert("RGB")
    pixels = crop.width * crop.height
    scale = 1.0
    if pixels > config.max_zoom_pixels:
        scale = math.sqrt(config.max_zoom_pixels / pixels)
    elif pixels < MIN_CROP_PIXELS:
        scale = min(UPSCALE_LIMIT, math.sqrt(min(MIN_CROP_PIXELS, config.max_zoom_pixels) / pixels))
    if abs(scale - 1.0) > 1e-3:
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    return crop


def widen(box: tuple[float, float, float, float], photo: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box whose shorter side is under MIN_ZOOM_SIDE widened around its centre to it (within the photo)."""
    x1, y1, x2, y2 = box
    width, height = photo
    if x2 - x1 < MIN_ZOOM_SIDE:
        cx = (x1 + x2) / 2
        x1, x2 = max(0.0, cx - MIN_ZOOM_SIDE / 2), min(float(width), cx + MIN_ZOOM_SIDE / 2)
    if y2 - y1 < MIN_ZOOM_SIDE:
        cy = (y1 + y2) / 2
        y1, y2 = max(0.0, cy - MIN_ZOOM_SIDE / 2), min(float(height), cy + MIN_ZOOM_SIDE / 2)
    return x1, y1, x2, y2


def _box_text(box: Any) -> str:
    return "[" + ", ".join(str(int(round(v))) for v in box) + "]"


def _in_coords(box: list[float], coords: str, photo: tuple[int, int], sent: tuple[int, int]) -> str:
    """A photo-pixel box written as the VLM writes boxes for the photo (image 0)."""
    width, height = photo
    scale = {"relative_1000": (1000 / width, 1000 / height), "relative_1": (1 / width, 1 / height),
             "absolute": (1.0, 1.0), "grid": (sent[0] / width, sent[1] / height)}[coords]
    values = [box[0] * scale[0], box[1] * scale[1], box[2] * scale[0], box[3] * scale[1]]
    if coords == "relative_1":
        return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"
    return _box_text(values)


# ------------------------------------------------------------------------------------------ conversation
def _answer_hint(options: list[str] | None) -> str:
    return " as the letter of one option, e.g. (A)" if options else " as a short phrase"


def _system(native: bool, coords: str, photo: Image.Image, config: AgentConfig) -> str:
    rule = _COORDS_RULES[coords].replace("$width", str(photo.width)).replace("$height", str(photo.height))
    if native:
        return render_prompt("zoom_native", coords_rule=rule)
    tools = "\n".join(json.dumps(t, ensure_ascii=False) for t in zc.tool_schemas(with_find=config.zoom_find))
    return render_prompt("zoom_system", coords_rule=rule, tools=tools)


def conversation(state: dict[str, Any], photo: Image.Image, config: AgentConfig, *, native: bool, coords: str,
                 last: bool) -> list[ChatMessage]:
    """The whole conversation so far, rebuilt from state: the photo and question, each turn's reply and its calls'
    results, the views as images (the newest max_zoom_images - 1 of them; older ones named in text only)."""
    options = state.get("options")
    question = render_prompt("zoom_question", width=photo.width, height=photo.height, question=state["question"],
                             options_block=options_block(options), answer_hint=_answer_hint(options))
    messages = [ChatMessage("system", [_system(native, coords, photo, config)]), ChatMessage("user", [photo, question])]
    views = state.get("views") or []
    shown = set(range(1, len(views) + 1)[-(config.max_zoom_images - 1):]) if config.max_zoom_images > 1 else set()
    for turn in state.get("zoom_turns") or []:
        calls = [c for c in turn["calls"] if c["form"] == "native"] if native else []
        messages.append(ChatMessage("assistant", [turn["text"]], tool_calls=[
            {"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in calls] or None))
        results = turn.get("results") or []
        images: list[Any] = []
        for result in results:
            view = result.get("view")
            parts: list[Any] = []
            for number in ([view] if view is not None else []) + list(result.get("crops") or []):
                if number in shown:
                    parts += [f"Image {number}:", cut_view(photo, views[number - 1]["box"], config)]
                else:
                    parts.append(f"[image {number} is no longer shown: at most {config.max_zoom_images} images are "
                                 "kept]")
            if native and result.get("form") == "native":
                messages.append(ChatMessage("tool", [result["text"]], tool_call_id=result.get("call_id")))
                images += parts
            else:
                messages.append(ChatMessage("user", ["<tool_response>", *parts, result["text"], "</tool_response>"]))
        if images:  # after all tool messages of the turn: OpenAI's API wants them right after the call
            messages.append(ChatMessage("user", images))
    if last:
        messages.append(ChatMessage("user", [render_prompt("zoom_last", answer_hint=_answer_hint(options))]))
    return messages


# ------------------------------------------------------------------------------------------ nodes
def zoom_model(state: dict[str, Any], services: Services, config: AgentConfig) -> dict[str, Any]:
    """One VLM turn: the conversation so far in, its calls (or its answer) out."""
    photo = resolve_image(state["image"], config)
    turns = list(state.get("zoom_turns") or [])
    notes = list(state.get("notes") or [])
    coords, _ = coords_for(services, config)
    native = native_calls(services, config)
    last = len(turns) + 1 >= config.max_zoom_turns
    left = time_left()
    with counting() as stats:
        if left is not None and left <= 0 and turns:  # out of time: the best answer so far
            return _finish(state, photo, _best_answer(turns), notes + [
                f"zoom: the question's time limit ran out after {len(turns)} turn(s); the last reply's text is the "
                "answer"], services, config, stats)
        messages = conversation(state, photo, config, native=native, coords=coords, last=last)
        tools = zc.tool_schemas(with_find=config.zoom_find) if native and not last else None
        try:
            reply = services.vlm.generate(messages, max_new_tokens=config.max_new_tokens, answer=True,
                                          **({"tools": tools} if tools else {}))
        except TimeLimitError as exc:  # VLMTimeoutError too: after some turns, what was seen so far answers
            if not turns:
                raise
            return _finish(state, photo, _best_answer(turns), notes + [
                f"zoom: stopped after {len(turns)} turn(s): {exc}"], services, config, stats)
        text = cap_text(reply.text or "", config.max_reply_chars)
        parsed = zc.parse_reply(text)
        calls = [*_native_calls(reply, parsed.notes), *parsed.calls][: zc.MAX_CALLS]
        notes += [f"zoom turn {len(turns) + 1}: {n}" for n in parsed.notes]
        turn = {"text": text, "calls": [c.to_json() for c in calls], "results": []}
        turns.append(turn)
        if not calls or last:
            answer = parsed.answer
            if calls and answer is None:
                answer = _best_answer(turns[:-1])
                notes.append(f"zoom: the VLM still called tools at its last turn (max_zoom_turns="
                             f"{config.max_zoom_turns}) and gave no answer; "
                             + ("an earlier turn's answer is kept" if answer else "the question is unanswered"))
            update = _finish(state, photo, answer, notes, services, config, stats, reply)
            update["zoom_turns"] = turns
            return update
    return {"zoom_turns": turns, "notes": notes, "stats": {**_stats(stats), "zoom_turns": 1}}


def _native_calls(reply: VLMReply, notes: list[str]) -> list[zc.ZoomCall]:
    calls = []
    for raw in reply.tool_calls or []:
        call, why = zc.as_call(raw.get("name"), raw.get("arguments"), id=raw.get("id"), form="native")
        if call is None:
            notes.append(why)
        else:
            calls.append(call)
    return calls


def _best_answer(turns: list[dict[str, Any]]) -> str | None:
    for turn in reversed(turns):
        answer = zc.parse_reply(turn["text"]).answer
        if answer:
            return answer
    return None


def _stats(stats: Any) -> dict[str, int]:
    from lookcloser.graphs.counting import COUNTERS  # noqa: PLC0415

    return {name: getattr(stats, name) for name in COUNTERS}


def _finish(state: dict[str, Any], photo: Image.Image, answer: str | None, notes: list[str], services: Services,
            config: AgentConfig, stats: Any, reply: VLMReply | None = None) -> dict[str, Any]:
    from lookcloser.graphs.nodes import _chat_reply, _choice  # noqa: PLC0415

    answer = cap_text(answer, config.max_reply_chars) if answer else None
    update: dict[str, Any] = {"answer": answer, "notes": notes, "parse_path": "zoom", "zoom_done": True}
    update.update(_choice(photo, state["question"], state.get("options"), answer, services, config)
                  if answer is not None or not state.get("options") else
                  {"choice": None, "choice_path": "unanswered"})
    update.update(_chat_reply(state, answer, reply.message_id if reply is not None else None))
    update["stats"] = {**_stats(stats), "zoom_turns": 1 if reply is not None else 0}
    return update


def zoom_tools(state: dict[str, Any], services: Services, config: AgentConfig) -> dict[str, Any]:
    """Run the last turn's calls: each zoom a new view, each find a SEARCH; results go back into that turn."""
    photo = resolve_image(state["image"], config)
    turns = [dict(t) for t in state.get("zoom_turns") or []]
    views = list(state.get("views") or [])
    turn = turns[-1]
    coords, _ = coords_for(services, config)
    findings: list[dict[str, Any]] = []
    results = []
    with counting() as stats, step_events() as write:
        for raw in turn["calls"]:
            call = zc.ZoomCall(raw["name"], raw["arguments"], raw.get("id"), raw["form"])
            if call.name == zc.ZOOM:
                result = _zoom(call, photo, views, coords, services, config, write)
            elif not config.zoom_find:
                result = {"text": "Error: the find tool is not available in this run."}
            else:
                result, found = _find(call, photo, views, coords, services, config, write)
                findings += found
            results.append({"call_id": call.id, "name": call.name, "form": call.form, **result})
    turn["results"] = results
    update: dict[str, Any] = {"zoom_turns": turns, "views": views, "stats": _stats(stats)}
    if findings:
        update["findings"] = findings
    return update


def _zoom(call: zc.ZoomCall, photo: Image.Image, views: list[dict[str, Any]], coords: str, services: Services,
          config: AgentConfig, write: Any) -> dict[str, Any]:
    index, why = zc.view_index(call, len(views) + 1)
    if index is None:
        return {"text": f"Error: {why}."}
    view_box = [0.0, 0.0, float(photo.width), float(photo.height)] if index == 0 else views[index - 1]["box"]
    view_sent = (_sent_size(services, photo.size, coords) if index == 0
                 else _sent_size(services, tuple(views[index - 1]["size"]), coords))
    box, why = zc.original_box(call, coords, tuple(view_box), view_sent, photo.size)
    if box is None:
        return {"text": f"Error: {why}."}
    box = widen(box, photo.size)
    label = str(call.arguments.get("label") or "").strip()[:200]
    crop = cut_view(photo, list(box), config)
    views.append({"box": [round(v, 2) for v in box], "label": label, "size": list(crop.size)})
    number = len(views)
    write({"event": "zoom", "view": number, "box": [round(v) for v in box], "label": label, "of_image": index,
           "size": list(crop.size)})
    return {"view": number, "text": f"Image {number} is the zoomed-in view of image {index}"
                                    f"{' (' + label + ')' if label else ''}: photo pixels {_box_text(box)}, "
                                    f"{int(box[2] - box[0])}x{int(box[3] - box[1])} px, shown at "
                                    f"{crop.width}x{crop.height}."}


def _find(call: zc.ZoomCall, photo: Image.Image, views: list[dict[str, Any]], coords: str, services: Services,
          config: AgentConfig, write: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """SEARCH for the call's target with the configured localizer, isolated as the search node isolates it."""
    from lookcloser.graphs.nodes import _call_with_timeout, _locate  # noqa: PLC0415 - the search node's own calling

    name = str(call.arguments.get("target") or call.arguments.get("name") or "").strip()
    kind = str(call.arguments.get("kind") or "object").strip().lower()
    if not name:
        return {"text": "Error: find needs a 'target' (what to look for)."}, []
    if kind not in ("object", "text"):
        return {"text": f"Error: kind must be 'object' or 'text', got {kind!r}."}, []
    target = Target(name=name[:200], kind=kind)
    tool_name = "localizer"
    limit = config.max_search_seconds
    left = time_left()
    limit = max(0.0, min(limit, left)) if left is not None else limit
    try:
        localizer = services.tool("localizer", with_vlm=True)
        tool_name = localizer.name
        found = _call_with_timeout(_locate, localizer, photo, [target], limit=limit)[0]
    except Exception as exc:  # noqa: BLE001 - one failing expert is a failed finding, the run goes on
        found = [Finding(target=target, status="failed", tool=tool_name,
                         error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)]
    found = _segmented(found or [Finding(target=target, status="not_found", tool=tool_name)], photo, services, config)
    for finding in found:
        write(finding_event(finding))
    sent = _sent_size(services, photo.size, coords)
    lines, crops = [], []
    boxed = sorted((f for f in found if f.status == "found" and f.box is not None), key=lambda f: -(f.score or 0))
    for finding in found:
        if finding.status == "failed":
            lines.append(f"- search failed ({finding.tool}: {finding.error})")
        elif finding.status != "found" or finding.box is None:
            lines.append(f"- {name}: not found")
        else:
            where = _in_coords(finding.box.to_list(), coords, photo.size, sent)
            text = f' reads "{" ".join((finding.text or "").split())[:200]}"' if finding.text else ""
            score = f", confidence {finding.score:.2f}" if finding.score is not None else ""
            lines.append(f"- {name} at {where}{text}{score}")
    for finding in boxed[:FIND_CROPS]:
        box = widen(tuple(finding.box.expand(config.crop_factor, photo.width, photo.height,
                                             min_size=config.crop_min_size).to_list()), photo.size)
        crop = cut_view(photo, list(box), config)
        views.append({"box": [round(v, 2) for v in box], "label": name, "size": list(crop.size)})
        crops.append(len(views))
        write({"event": "zoom", "view": len(views), "box": [round(v) for v in box], "label": name, "of_image": 0,
               "size": list(crop.size)})
    header = f"find({name!r}, {kind!r}) with {tool_name} (boxes as you write them for image 0):"
    shown = f" Crops of the best: images {', '.join(map(str, crops))}." if crops else ""
    return ({"text": "\n".join([header, *lines[:40]]) + shown, "crops": crops},
            [f.model_dump(mode="json") for f in found])


def _segmented(found: list[Finding], photo: Image.Image, services: Services, config: AgentConfig) -> list[Finding]:
    """Grounded-SAM inside the loop, as the vstar strategy's `segment` node does it: found object boxes get their
    masks from the configured segmenter in one call; a failing segmenter leaves the boxes and says why."""
    from lookcloser.graphs.nodes import _as_mask, wants_masks  # noqa: PLC0415 - the segment node's own rules

    todo = [i for i, f in enumerate(found) if f.status == "found" and f.box is not None and f.target.kind == "object"]
    if not todo or not wants_masks(services, config):
        return found
    segmenter = services.tool("segmenter", with_vlm=True)
    try:
        results = list(segmenter.segment(photo, [found[i].box for i in todo]))
        if len(results) != len(todo):
            raise RuntimeError(f"{len(results)} masks for {len(todo)} boxes")
        updates = {i: {"mask": _as_mask(r)} for i, r in zip(todo, results) if _as_mask(r) is not None}
    except Exception as exc:  # noqa: BLE001 - the boxes still answer; the finding says why it has no mask
        updates = {i: {"error": f"segmenter {segmenter.name} failed: {type(exc).__name__}: {exc}"} for i in todo}
    return [f.model_copy(update=updates[i]) if i in updates else f for i, f in enumerate(found)]


def route_after_zoom_model(state: dict[str, Any]) -> str:
    """To the tools while the last turn made calls and the loop is not done (answered, or out of budget)."""
    turns = state.get("zoom_turns") or []
    return "zoom_tools" if turns and turns[-1]["calls"] and not state.get("zoom_done") else "end"
