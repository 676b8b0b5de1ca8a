"""One self-contained HTML page per trace: the answer, the input image with the V* search patches,
found boxes and masks, every VLM call with the images it saw, its prompt and reply, the tool calls,
search steps, a timings tree and the errors.

It reads the run tree `tracing.jsonl.JsonlTracer` writes and finds runs by run type and metadata, not by
name: VLM calls are the `llm` runs, tool calls the `tool` runs, search steps the chain runs marked
`search_step`, and a run's graph node is the topmost run above it that LangGraph marked `langgraph_node`
(a search node's inputs name its targets, which label its steps). Images are embedded as data URLs (the page travels as one file); the trace
keeps them as files. Only files inside the trace directory are opened, whatever paths a trace names,
and each through `lookcloser.imaging.load.load_image` (format allowlist and pixel limit). Drawing is an SVG
overlay in the image's own pixel coordinates, so boxes stay exact at any size.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Iterable

import numpy as np
from PIL import Image

from lookcloser.core.errors import ImageError
from lookcloser.imaging.load import DEFAULT_MAX_PIXELS, load_image
from lookcloser.tracing.store import RunNode, build_tree, load_trace, root_run, run_seconds
from lookcloser.core.types import SEARCH_STEP

__all__ = ["render_report", "write_report"]

MAX_EMBED_SIDE = 1600  # the main image is downscaled for the page; overlay coordinates stay in original px
MAX_CROP_SIDE = 512
FOUND_COLOR, MISS_COLOR, MASK_COLOR = "#19c24a", "#ff4d4d", (47, 140, 255)
SEARCH_COLORS = ("#f0a500", "#e040fb", "#00bcd4", "#ff7043", "#c0ca33", "#8d6e63")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Images:
    """Opens the images of one trace: relative paths inside it only, each through load_image."""

    def __init__(self, trace_dir: Path, max_pixels: int | None) -> None:
        self.root = trace_dir.resolve()
        self.max_pixels = max_pixels
        self._opened: dict[str, Image.Image | None] = {}
        self._urls: dict[tuple[str, int], str | None] = {}
        self.problems: dict[str, str] = {}  # path as named in the trace -> why it is not shown

    def _path(self, relative: str) -> Path | None:
        if not relative or "://" in relative or relative.startswith(("data:", "lookcloser-image:")):
            self.problems[relative] = "not a file of this trace"
            return None
        if Path(relative).is_absolute():
            self.problems[relative] = "absolute path: only files inside the trace are opened"
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            self.problems[relative] = "outside the trace directory: not opened"
            return None
        if not candidate.is_file():
            self.problems[relative] = "missing from the trace"
            return None
        return candidate

    def open(self, relative: Any) -> Image.Image | None:
        if not isinstance(relative, str):
            return None
        if relative not in self._opened:
            path = self._path(relative)
            image = None
            if path is not None:
                try:
                    image = load_image(path, self.max_pixels)
                except ImageError as exc:
                    self.problems[relative] = str(exc)
            self._opened[relative] = image
        return self._opened[relative]

    def data_url(self, relative: Any, max_side: int) -> str | None:
        key = (str(relative), max_side)
        if key not in self._urls:
            image = self.open(relative)
            self._urls[key] = encode_image(image, max_side) if image is not None else None
        return self._urls[key]

    def why_missing(self, relative: Any) -> str:
        return self.problems.get(str(relative), "not an image path")


def encode_image(image: Image.Image, max_side: int) -> str:
    """A data URL; photos as JPEG, images with transparency or small ones as PNG."""
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P", "1", "L") or (image.width * image.height) < 64 * 64:
        image.save(buffer, format="PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=88)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


# ---------------------------------------------------------------------------------- reading runs
def _box(value: Any) -> list[float] | None:
    if isinstance(value, dict) and all(k in value for k in ("x1", "y1", "x2", "y2")):
        value = [value["x1"], value["y1"], value["x2"], value["y2"]]
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    return None


def _fmt_box(box: list[float] | None) -> str:
    return "" if box is None else "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unfinished"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _outputs(run: dict[str, Any]) -> dict[str, Any]:
    """A run's outputs as a dict; langchain-core wraps a tool's return value as {"output": ...}."""
    outputs = run.get("outputs")
    if not isinstance(outputs, dict):
        return {}
    inner = outputs.get("output")
    if set(outputs) == {"output"} and isinstance(inner, dict):
        return inner
    return outputs


def _inputs(run: dict[str, Any]) -> dict[str, Any]:
    inputs = run.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def _metadata(run: dict[str, Any]) -> dict[str, Any]:
    metadata = (run.get("extra") or {}).get("metadata") if isinstance(run.get("extra"), dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _graph_node(run: dict[str, Any]) -> str | None:
    """The LangGraph node a run belongs to (LangGraph marks the node run; runs below inherit the mark)."""
    return _metadata(run).get("langgraph_node")


def _is_step(run: dict[str, Any]) -> bool:
    """A search step: a chain run whose `search_step` mark is its own id (runs below it carry their step's)."""
    return run.get("run_type") == "chain" and _metadata(run).get(SEARCH_STEP) == run.get("id")


def _node_run(node: RunNode, parents: dict[int, RunNode]) -> RunNode | None:
    """The graph node run `node` is in: the topmost run at or above it that LangGraph marked."""
    found = None
    current: RunNode | None = node
    while current is not None:
        if _graph_node(current.run):
            found = current
        current = parents.get(id(current))
    return found


def _targets_label(run: dict[str, Any] | None) -> str:
    """A search node's target names ("sign", or "sign, cup" for a batch), from its inputs."""
    targets = _inputs(run or {}).get("targets")
    names = [str(t.get("name")) for t in targets if isinstance(t, dict) and t.get("name")] if isinstance(targets, list) else []
    return ", ".join(names) or "search"


@dataclass
class _Finding:
    name: str
    kind: str | None
    status: str | None
    box: list[float] | None
    score: Any
    text: str | None
    tool: str | None
    error: str | None
    mask: dict[str, Any] | None
    search: dict[str, Any] | None


def _finding(raw: dict[str, Any]) -> _Finding:
    target = raw.get("target") if isinstance(raw.get("target"), dict) else {}
    return _Finding(
        name=str(target.get("name") or raw.get("name") or "finding"), kind=target.get("kind") or raw.get("kind"),
        status=raw.get("status"), box=_box(raw.get("box")), score=raw.get("score"), text=raw.get("text"),
        tool=raw.get("tool"), error=raw.get("error"),
        mask=raw.get("mask") if isinstance(raw.get("mask"), dict) else None,
        search=raw.get("search") if isinstance(raw.get("search"), dict) else None)


def _findings(root: dict[str, Any] | None, runs: list[dict[str, Any]]) -> list[_Finding]:
    """The final findings (root outputs); for a trace without them (crashed), what the search nodes returned."""
    found = (root or {}).get("outputs") or {}
    raw = found.get("findings") if isinstance(found, dict) else None
    if not isinstance(raw, list) or not raw:
        raw = [f for r in runs if r.get("run_type") == "chain" and _graph_node(r) == "search"
               for f in (_outputs(r).get("findings") or [])]
    return [_finding(f) for f in raw if isinstance(f, dict)]


@dataclass
class _Search:
    """One target's V* search: the patches it looked at, in order."""

    target: str
    steps: list[dict[str, Any]] = field(default_factory=list)


def _step_from_run(run: dict[str, Any]) -> dict[str, Any]:
    inputs, outputs = _inputs(run), _outputs(run)
    step = {**outputs, **{k: v for k, v in inputs.items() if k not in outputs or k == "box"}}
    step["seconds"] = run_seconds(run)
    step["error"] = run.get("error")
    return step


def _searches(nodes: list[RunNode], parents: dict[int, RunNode], findings: list[_Finding]) -> list[_Search]:
    """From the search-step runs (grouped by the graph node above them, labelled with its targets); else
    from the findings' search records."""
    grouped: dict[int | None, _Search] = {}
    for node in nodes:
        if _is_step(node.run):
            owner = _node_run(node, parents)
            key = id(owner) if owner is not None else None
            if key not in grouped:
                grouped[key] = _Search(_targets_label(owner.run if owner is not None else None))
            grouped[key].steps.append(_step_from_run(node.run))
    searches = list(grouped.values())
    if searches:
        return searches
    seen: set[str] = set()
    for finding in findings:  # no step runs (a trace cut short, or steps not traced): the findings' records
        steps = (finding.search or {}).get("steps")
        if not isinstance(steps, list) or not steps:
            continue
        key = json.dumps([finding.name, steps], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            searches.append(_Search(finding.name, [s for s in steps if isinstance(s, dict)]))
    return searches


def _message_parts(run: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """(image paths, [(role, text)]) of an llm run's input messages (langchain-core serialised messages)."""
    images: list[str] = []
    texts: list[tuple[str, str]] = []
    messages = _inputs(run).get("messages") or []
    flat = [m for batch in messages for m in (batch if isinstance(batch, list) else [batch])]
    for message in flat:
        if not isinstance(message, dict):
            continue
        kwargs = message.get("kwargs") if isinstance(message.get("kwargs"), dict) else message
        role = kwargs.get("type") or message.get("role") or (message.get("id") or ["?"])[-1]
        content = kwargs.get("content")
        for part in content if isinstance(content, list) else [content]:
            if isinstance(part, str):
                texts.append((str(role), part))
            elif isinstance(part, dict) and part.get("type") == "text":
                texts.append((str(role), str(part.get("text", ""))))
            elif isinstance(part, dict) and part.get("type") in ("image", "image_url"):
                url = part.get("url") or part.get("path") or part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                images.append(str(url) if url is not None else "(image without a url)")
    prompt = _inputs(run).get("prompts")  # a completion-style llm run
    if isinstance(prompt, list):
        texts.extend(("prompt", str(p)) for p in prompt)
    return images, texts


def _reply(run: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(reply text, extra generation info such as p_yes or scores) of an llm run."""
    outputs = run.get("outputs") if isinstance(run.get("outputs"), dict) else {}
    for batch in outputs.get("generations") or []:
        for generation in batch if isinstance(batch, list) else [batch]:
            if not isinstance(generation, dict):
                continue
            text = generation.get("text")
            if not text and isinstance(generation.get("message"), dict):
                text = (generation["message"].get("kwargs") or {}).get("content")
            info = generation.get("generation_info") if isinstance(generation.get("generation_info"), dict) else {}
            return (text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)), info
    if isinstance(outputs.get("text"), str):
        return outputs["text"], {}
    return "", {}


# ---------------------------------------------------------------------------------- page parts
def _header(root: dict[str, Any] | None, runs: list[dict[str, Any]], trace_id: str,
            findings: list[_Finding]) -> str:
    inputs, outputs = _inputs(root or {}), _outputs(root or {})
    answer = outputs.get("answer")
    unfinished = root is None
    failed = unfinished or bool((root or {}).get("error"))
    target = inputs.get("target")
    if answer is not None:
        answer_html = _esc(answer)
    elif isinstance(target, dict) and not unfinished:  # a SEARCH-only run: what was found is the answer
        found = sum(f.status == "found" for f in findings)
        answer_html = f"{found} of {len(findings)} finding(s) found"
    else:
        answer_html = ('<span class="status-error">no answer: the trace is incomplete (the run did not finish)</span>'
                       if unfinished else '<span class="status-error">no answer</span>')
    if isinstance(target, dict):
        question_html = f'<p class="question">Find: {_esc(target.get("name"))} ({_esc(target.get("kind"))})</p>'
    elif inputs.get("question"):
        question_html = f'<p class="question">Q: {_esc(inputs["question"])}</p>'
    else:
        question_html = ""
    options = inputs.get("options")
    options_html = ""
    if isinstance(options, list) and options:
        choice = outputs.get("choice")
        items = "".join(
            f'<li class="chosen"><b>{_esc(o)}</b> &larr; chosen</li>' if i == choice else f"<li>{_esc(o)}</li>"
            for i, o in enumerate(options))
        options_html = f'<ol type="A" class="options">{items}</ol>'
    stats = outputs.get("stats") if isinstance(outputs.get("stats"), dict) else {}
    meta = [f"<span>trace {_esc(trace_id)}</span>", f"<span>total {_fmt_seconds(run_seconds(root)) if root else 'unfinished'}</span>",
            f"<span>{len(runs)} runs</span>"]
    meta += [f"<span>{_esc(k.replace('_', ' '))}: {_esc(v)}</span>" for k, v in stats.items() if k != "seconds"]
    for key in ("parse_path", "choice_path"):
        if outputs.get(key):
            meta.append(f"<span>{key.replace('_', ' ')}: {_esc(outputs[key])}</span>")
    notes = outputs.get("notes")
    notes_html = ("<ul class=\"notes\">" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>"
                  if isinstance(notes, list) and notes else "")
    error = f'<p class="error-box">Error: {_esc(root.get("error"))}</p>' if root and root.get("error") else ""
    return (f'<header class="answer{" failed" if failed else ""}"><div class="label">Final answer</div>'
            f'<div id="final-answer">{answer_html}</div>{question_html}{options_html}{notes_html}{error}'
            f'<div class="meta">{"".join(meta)}</div></header>')


def _input_image_path(root: dict[str, Any] | None, runs: list[dict[str, Any]]) -> Any:
    candidates = [root] if root else []
    candidates += [r for r in runs if r.get("run_type") == "chain" and _graph_node(r)]  # a crashed trace: its nodes'
    for run in candidates:
        image = _inputs(run).get("image")
        if isinstance(image, str):
            return image
    return None


def _mask_overlay(mask: dict[str, Any], size: tuple[int, int], box: list[float] | None) -> tuple[str, list[float]] | None:
    """(data URL, placement box) of a finding's RLE mask: full-image masks over the whole image,
    box-sized ones over their box; anything else is not drawn."""
    from lookcloser.core.types import Mask  # noqa: PLC0415

    try:
        array = Mask.model_validate(mask).to_array()
    except ValueError:
        return None
    width, height = size
    if array.shape == (height, width):
        place = [0.0, 0.0, float(width), float(height)]
    elif box is not None and array.shape == (round(box[3] - box[1]), round(box[2] - box[0])):
        place = box
    else:
        return None
    picture = Image.fromarray(array.astype(np.uint8) * 255, "L")
    if max(picture.size) > MAX_EMBED_SIDE:
        picture.thumbnail((MAX_EMBED_SIDE, MAX_EMBED_SIDE))
    overlay = Image.new("RGBA", picture.size, (*MASK_COLOR, 0))
    overlay.putalpha(picture.point(lambda v: 110 if v > 127 else 0))
    return encode_image(overlay, MAX_EMBED_SIDE), place


def _figure(source: Any, searches: list[_Search], findings: list[_Finding], images: _Images) -> str:
    picture = images.open(source)
    if picture is None:
        return ('<section id="image"><h2>Image and search path</h2><p class="meta">'
                f"The input image is not shown ({_esc(source)}: {_esc(images.why_missing(source))}).</p></section>")
    width, height = picture.size
    stroke = max(width, height) / 320
    font = max(width, height) / 45
    parts = [f'<image href="{images.data_url(source, MAX_EMBED_SIDE)}" x="0" y="0" width="{width}" height="{height}" '
             'preserveAspectRatio="none"/>']
    masks = 0
    for finding in findings:
        if finding.mask is None:
            continue
        drawn = _mask_overlay(finding.mask, (width, height), finding.box)
        if drawn is None:
            continue
        masks += 1
        url, (x1, y1, x2, y2) = drawn
        parts.append(f'<image class="mask-overlay" href="{url}" x="{x1}" y="{y1}" width="{max(x2 - x1, 1)}" '
                     f'height="{max(y2 - y1, 1)}" preserveAspectRatio="none"><title>mask of {_esc(finding.name)}</title></image>')
    legend_searches = []
    for index, search in enumerate(searches):
        color = SEARCH_COLORS[index % len(SEARCH_COLORS)]
        legend_searches.append(f'<b style="color:{color}">&#9633; {_esc(search.target)}</b> ({len(search.steps)} steps)')
        for number, step in enumerate(search.steps, start=1):
            box = _box(step.get("box"))
            if box is None:
                continue
            x1, y1, x2, y2 = box
            title = (f"{search.target} step {number}: box {_fmt_box(box)}, level {step.get('level')}, "
                     f"priority {step.get('priority')}, peak {step.get('peak')}")
            parts.append(f'<g class="search-step"><title>{_esc(title)}</title><rect x="{x1}" y="{y1}" width="{x2 - x1}" '
                         f'height="{y2 - y1}" fill="none" stroke="{color}" stroke-width="{stroke}" '
                         f'stroke-dasharray="{stroke * 4} {stroke * 2}"/><text x="{x1 + stroke * 2}" y="{y1 + font}" '
                         f'font-size="{font}" fill="{color}" stroke="#000" stroke-width="{font / 12}" '
                         f'paint-order="stroke" font-family="sans-serif" font-weight="700">{number}</text></g>')
    boxes = 0
    for finding in findings:
        if finding.box is None:
            continue
        boxes += 1
        x1, y1, x2, y2 = finding.box
        color = FOUND_COLOR if finding.status == "found" else MISS_COLOR
        # below the box (step numbers sit at top-left corners), above it when the box touches the bottom
        label_y = y2 + font * 1.05 if y2 + font * 1.1 <= height else max(y1 - stroke * 2, font)
        label = f'"{finding.text}"' if finding.text else finding.name  # text findings: the text read tells them apart
        title = f"{finding.name}: {finding.status}, box {_fmt_box(finding.box)}, score {finding.score}, tool {finding.tool}"
        parts.append(f'<g class="finding-box"><title>{_esc(title)}</title><rect x="{x1}" y="{y1}" '
                     f'width="{x2 - x1}" height="{y2 - y1}" fill="none" stroke="{color}" stroke-width="{stroke * 1.5}"/>'
                     f'<text x="{x1}" y="{label_y}" font-size="{font}" fill="{color}" stroke="#000" '
                     f'stroke-width="{font / 12}" paint-order="stroke" font-family="sans-serif" font-weight="700">'
                     f"{_esc(label)}</text></g>")
    svg = (f'<svg id="overlay" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
           f'role="img" aria-label="input image with search path">{"".join(parts)}</svg>')
    legend = ((", ".join(legend_searches) + ": numbered search patches in visiting order; ") if legend_searches else "")
    legend += (f'<b class="found">&#9633;</b> found ({sum(f.status == "found" and f.box is not None for f in findings)}), '
               f'<b class="miss">&#9633;</b> boxes not found / failed ({boxes - sum(f.status == "found" and f.box is not None for f in findings)}), '
               f'<b class="mask">&#9632;</b> masks ({masks}). Image {width}&times;{height} px ({_esc(source)}).')
    return (f'<section id="image"><h2>Image and search path</h2><div class="figure">{svg}</div>'
            f'<p class="legend">{legend}</p></section>')


def _findings_table(findings: list[_Finding]) -> str:
    if not findings:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(f.name)}</td><td>{_esc(f.kind)}</td>"
        f"<td class=\"{'status-ok' if f.status == 'found' else 'status-error'}\">{_esc(f.status)}</td>"
        f"<td>{_esc(_fmt_box(f.box))}</td><td class=\"num\">{_esc(f.score)}</td><td>{_esc(f.text)}</td>"
        f"<td>{'yes' if f.mask else ''}</td><td>{_esc(f.tool)}</td><td class=\"error-box\">{_esc(f.error)}</td></tr>"
        for f in findings)
    return ('<section id="findings"><h2>Findings</h2><table><tr><th>target</th><th>kind</th><th>status</th>'
            '<th>box (x1, y1, x2, y2)</th><th>score</th><th>text</th><th>mask</th><th>tool</th><th>error</th></tr>'
            f'{rows}</table></section>')


def _vlm_calls(nodes: list[RunNode], parents: dict[int, RunNode], images: _Images) -> str:
    calls = [n for n in nodes if n.run.get("run_type") == "llm"]
    if not calls:
        return ""
    cards = []
    for number, node in enumerate(calls, start=1):
        run = node.run
        paths, texts = _message_parts(run)
        crops = []
        for path in paths:
            url = images.data_url(path, MAX_CROP_SIDE)
            if url is None:
                crops.append(f'<figure class="missing"><figcaption>{_esc(path)}: {_esc(images.why_missing(path))}'
                             '</figcaption></figure>')
                continue
            picture = images.open(path)
            crops.append(f'<figure><img src="{url}" alt="{_esc(path)}"><figcaption>{_esc(path)} '
                         f'{picture.width}&times;{picture.height}</figcaption></figure>')
        prompt = "".join(f'<div class="label">{_esc(role)}</div><pre class="prompt">{_esc(text)}</pre>' for role, text in texts)
        reply, info = _reply(run)
        metadata = (run.get("extra") or {}).get("metadata") or {}
        usage = metadata.get("usage_metadata") or {}
        facts = [f"<span>{_fmt_seconds(run_seconds(run))}</span>"]
        if metadata.get("ls_model_name"):
            facts.append(f"<span>model {_esc(metadata['ls_model_name'])}</span>")
        if usage:
            facts.append(f"<span>tokens in {_esc(usage.get('input_tokens'))} / out {_esc(usage.get('output_tokens'))}</span>")
        parent = _node_run(node, parents)
        if parent is not None:
            facts.append(f"<span>in {_esc(parent.run.get('name'))}</span>")
            parse_path = _outputs(parent.run).get("parse_path")
            if parse_path:
                facts.append(f"<span>parse path: {_esc(parse_path)}</span>")
        extra = "".join(f"<span>{_esc(k)}: {_esc(_short(v, 80))}</span>" for k, v in (info or {}).items())
        error = f'<pre class="error-box">{_esc(run.get("error"))}</pre>' if run.get("error") else ""
        cards.append(
            f'<div class="call"><h3>VLM call {number}: {_esc(run.get("name"))}</h3><div class="meta">{"".join(facts)}{extra}</div>'
            f'<div class="crops">{"".join(crops)}</div>{prompt}<div class="label">reply</div>'
            f'<pre class="reply">{_esc(reply)}</pre>{error}</div>')
    return f'<section id="vlm"><h2>VLM calls ({len(calls)}): what it saw, was asked and answered</h2>{"".join(cards)}</section>'


def _result_summary(result: Any) -> str:
    if isinstance(result, list):
        statuses = [r.get("status") for r in result if isinstance(r, dict) and r.get("status")]
        if statuses:
            return ", ".join(f"{s} {statuses.count(s)}" for s in dict.fromkeys(statuses))
        return f"{len(result)} item(s)"
    return _short(result, 100)


def _tool_calls(nodes: list[RunNode], parents: dict[int, RunNode]) -> str:
    calls = [n for n in nodes if n.run.get("run_type") == "tool"]
    if not calls:
        return ""
    rows = []
    for node in calls:
        run = node.run
        inputs, outputs = _inputs(run), _outputs(run)
        args = {k: v for k, v in inputs.items() if k != "image"}
        parent = _node_run(node, parents)
        status = (f'<span class="status-error">{_esc(_short(run["error"], 200))}</span>' if run.get("error")
                  else _esc(_result_summary(outputs.get("output", outputs))))
        rows.append(f"<tr><td>{_esc(run.get('name'))}</td><td>{_esc(parent.run.get('name') if parent else '')}</td>"
                    f"<td>{_esc(_short(args.get('args', args), 120))}</td><td>{status}</td>"
                    f"<td class=\"num\">{_fmt_seconds(run_seconds(run))}</td></tr>")
    return ('<section id="tools"><h2>Tool calls</h2><table><tr><th>tool</th><th>in</th><th>arguments</th>'
            f'<th>result</th><th>time</th></tr>{"".join(rows)}</table></section>')


def _steps_table(searches: list[_Search]) -> str:
    if not searches:
        return ""
    rows = []
    for index, search in enumerate(searches):
        color = SEARCH_COLORS[index % len(SEARCH_COLORS)]
        for number, step in enumerate(search.steps, start=1):
            detections = step.get("detections")
            rows.append(
                f'<tr><td style="color:{color}">{_esc(search.target)}</td><td class="num">{number}</td>'
                f"<td class=\"num\">{_esc(step.get('level'))}</td><td>{_esc(_fmt_box(_box(step.get('box'))))}</td>"
                f"<td class=\"num\">{_esc(step.get('priority'))}</td><td class=\"num\">{_esc(step.get('peak'))}</td>"
                f"<td>{_esc(step.get('context'))}</td>"
                f"<td class=\"num\">{len(detections) if isinstance(detections, list) else _esc(detections)}</td>"
                f"<td class=\"num\">{_fmt_seconds(step['seconds']) if step.get('seconds') is not None else ''}</td>"
                f"<td class=\"error-box\">{_esc(step.get('error'))}</td></tr>")
    return ('<section id="steps"><h2>Search steps</h2><table><tr><th>target</th><th>#</th><th>level</th>'
            '<th>patch box</th><th>priority</th><th>heatmap peak</th><th>context cue</th><th>detections</th>'
            f'<th>time</th><th>error</th></tr>{"".join(rows)}</table></section>')


def _timings(roots: list[RunNode]) -> str:
    total = max((run_seconds(r.run) or 0.0 for r in roots), default=0.0) or 1e-9
    rows = []

    def add(node: RunNode, depth: int) -> None:
        run = node.run
        seconds = run_seconds(run)
        status = (f'<span class="status-error">{_esc(_short(run["error"], 200))}</span>' if run.get("error")
                  else '<span class="status-ok">ok</span>' if run.get("end_time") else "unfinished")
        width = 100.0 * (seconds or 0.0) / total
        routing = " routing" if str(run.get("name", "")).startswith("route_") else ""
        rows.append(f'<tr class="run{routing}"><td style="padding-left:{8 + depth * 16}px">{_esc(run.get("name"))}</td>'
                    f'<td>{_esc(run.get("run_type"))}</td><td class="num">{_fmt_seconds(seconds)}</td>'
                    f'<td style="width:22%"><div class="bar" style="width:{min(width, 100):.1f}%"></div></td><td>{status}</td></tr>')
        for child in node.children:
            add(child, depth + 1)

    for root in roots:
        add(root, 0)
    return ('<section id="timings"><h2>Timings</h2><table><tr><th>run</th><th>type</th><th>time</th><th>share</th>'
            f'<th>status</th></tr>{"".join(rows)}</table></section>')


def _errors(runs: list[dict[str, Any]], findings: list[_Finding]) -> str:
    items = [f"<li><b>{_esc(r.get('name'))}</b> ({_esc(r.get('id'))}): <code>{_esc(r.get('error'))}</code></li>"
             for r in runs if r.get("error")]
    items += [f"<li>finding <b>{_esc(f.name)}</b> ({_esc(f.tool)}): <code>{_esc(f.error)}</code></li>"
              for f in findings if f.error]
    if not items:
        return ""
    return f'<section id="errors"><h2>Errors</h2><ul class="error-box">{"".join(items)}</ul></section>'


def _walk(roots: Iterable[RunNode]) -> tuple[list[RunNode], dict[int, RunNode]]:
    nodes: list[RunNode] = []
    parents: dict[int, RunNode] = {}
    for root in roots:
        for node in root.walk():
            nodes.append(node)
            for child in node.children:
                parents[id(child)] = node
    return nodes, parents


def render_report(trace_dir: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str:
    """The report for the trace in `trace_dir` as one HTML string (raises TraceError for an unreadable trace).

    `max_pixels` bounds every image opened (as in `lookcloser.imaging.load.load_image`).
    """
    trace_dir = Path(trace_dir)
    runs = load_trace(trace_dir)
    if trace_dir.is_file():  # given runs.jsonl itself
        trace_dir = trace_dir.parent
    roots = build_tree(runs)
    nodes, parents = _walk(roots)
    ordered = [n.run for n in nodes]
    root = root_run(ordered)
    trace_id = str((root or (ordered[0] if ordered else {})).get("trace_id", trace_dir.name))
    images = _Images(trace_dir, max_pixels)
    findings = _findings(root, ordered)
    searches = _searches(nodes, parents, findings)
    template = Template(resources.files("lookcloser.tracing").joinpath("report.html").read_text(encoding="utf-8"))
    return template.substitute(
        trace_id=_esc(trace_id),
        header=_header(root, ordered, trace_id, findings),
        figure=_figure(_input_image_path(root, ordered), searches, findings, images),
        findings=_findings_table(findings),
        vlm_calls=_vlm_calls(nodes, parents, images),
        tools=_tool_calls(nodes, parents),
        steps=_steps_table(searches),
        timings=_timings(roots),
        errors=_errors(ordered, findings),
        trace_dir_name=_esc(trace_dir.name),
        run_count=len(runs),
    )


def write_report(trace_dir: str | os.PathLike, output: str | os.PathLike, *,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Path:
    """Render and write the report; returns the output path."""
    page = render_report(trace_dir, max_pixels=max_pixels)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    return output
