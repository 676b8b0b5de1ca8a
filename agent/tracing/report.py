"""One self-contained HTML page per trace: the answer, the image with the search path, finding
boxes and masks, every crop the VLM saw with its prompt and reply, search steps and timings.

Images are embedded as data URLs here (the report must travel as one file); the trace keeps them
as files. Only files inside the trace directory are ever read, whatever paths a trace names.
Drawing is an SVG overlay in the image's own pixel coordinates, so boxes stay exact at any size.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Iterable

import numpy as np
from PIL import Image

from lookcloser.tracing.store import RunNode, build_tree, load_trace, run_seconds

MAX_EMBED_SIDE = 1600  # the main image is downscaled for the page; overlay coordinates stay in original px
MAX_CROP_SIDE = 512
STEP_COLOR, FOUND_COLOR, MISS_COLOR, MASK_COLOR = "#f0a500", "#19c24a", "#ff4d4d", (47, 140, 255)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


class _Images:
    """Reads images of one trace (refusing paths that leave it) and turns them into data URLs."""

    def __init__(self, trace_dir: Path) -> None:
        self.root = trace_dir.resolve()
        self._cache: dict[tuple[str, int], str] = {}

    def path(self, relative: Any) -> Path | None:
        if not isinstance(relative, str) or relative.startswith("<") or not relative:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def open(self, relative: Any) -> Image.Image | None:
        path = self.path(relative)
        if path is None:
            return None
        try:
            with Image.open(path) as image:
                image.load()
                return image.copy()
        except (OSError, ValueError):
            return None

    def data_url(self, relative: Any, max_side: int) -> str | None:
        key = (str(relative), max_side)
        if key not in self._cache:
            image = self.open(relative)
            self._cache[key] = encode_image(image, max_side) if image is not None else None
        return self._cache[key]


def encode_image(image: Image.Image, max_side: int) -> str:
    """A data URL; photos as JPEG, images with transparency or few colours as PNG."""
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


def _box(value: Any) -> list[float] | None:
    if isinstance(value, dict) and all(k in value for k in ("x1", "y1", "x2", "y2")):
        value = [value["x1"], value["y1"], value["x2"], value["y2"]]
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    return None


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "running?"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _steps(nodes: Iterable[RunNode]) -> list[dict[str, Any]]:
    return [n.run for n in nodes if n.run.get("name") == "vstar.step"]


def _findings(root: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    findings = (root.get("outputs") or {}).get("findings")
    if isinstance(findings, list) and findings:
        return [f for f in findings if isinstance(f, dict)]
    collected: list[dict[str, Any]] = []  # no final answer (crash, find-only): gather what nodes reported
    for run in runs:
        if run is root:
            continue
        for finding in (run.get("outputs") or {}).get("findings") or []:
            if isinstance(finding, dict) and finding not in collected:
                collected.append(finding)
    return collected


def _masks(runs: list[dict[str, Any]], images: _Images, size: tuple[int, int]) -> list[tuple[Image.Image, list[float]]]:
    """Masks saved by tools: outputs 'mask'/'masks' (paths) placed at 'box'/'boxes', else full-frame."""
    found: list[tuple[Image.Image, list[float]]] = []
    for run in runs:
        outputs, inputs = run.get("outputs") or {}, run.get("inputs") or {}
        paths = outputs.get("masks") if isinstance(outputs.get("masks"), list) else [outputs.get("mask")]
        boxes = outputs.get("boxes") or inputs.get("boxes") or [outputs.get("box") or inputs.get("box")]
        for index, path in enumerate(paths):
            mask = images.open(path)
            if mask is None:
                continue
            box = _box(boxes[index]) if isinstance(boxes, list) and index < len(boxes) else None
            if mask.size == size or box is None:
                box = [0.0, 0.0, float(size[0]), float(size[1])]
            found.append((mask, box))
    return found


def _mask_overlay(mask: Image.Image) -> str:
    array = np.asarray(mask.convert("L")) > 127
    rgba = np.zeros((*array.shape, 4), dtype=np.uint8)
    rgba[array] = (*MASK_COLOR, 110)
    return encode_image(Image.fromarray(rgba, "RGBA"), MAX_EMBED_SIDE)


def _figure(root: dict[str, Any], runs: list[dict[str, Any]], steps: list[dict[str, Any]],
            findings: list[dict[str, Any]], images: _Images) -> str:
    source = (root.get("inputs") or {}).get("image")
    picture = images.open(source)
    if picture is None:
        return ('<section id="image"><h2>Image and search path</h2><p class="meta">'
                f"The input image is not in this trace ({_esc(source)}).</p></section>")
    width, height = picture.size
    stroke = max(width, height) / 320
    font = max(width, height) / 45
    parts = [f'<image href="{encode_image(picture, MAX_EMBED_SIDE)}" x="0" y="0" width="{width}" height="{height}" '
             'preserveAspectRatio="none"/>']
    for mask, box in _masks(runs, images, (width, height)):
        x1, y1, x2, y2 = box
        parts.append(f'<image class="mask-overlay" href="{_mask_overlay(mask)}" x="{x1}" y="{y1}" width="{max(x2 - x1, 1)}" '
                     f'height="{max(y2 - y1, 1)}" preserveAspectRatio="none"/>')
    for number, step in enumerate(steps, start=1):
        box = _box((step.get("inputs") or {}).get("box") or (step.get("inputs") or {}).get("patch"))
        if box is None:
            continue
        x1, y1, x2, y2 = box
        peak = (step.get("outputs") or {}).get("peak")
        title = f"step {number}: box {box}, priority {(step.get('inputs') or {}).get('priority')}, peak {peak}"
        parts.append(f'<g class="search-step"><title>{_esc(title)}</title><rect x="{x1}" y="{y1}" width="{x2 - x1}" '
                     f'height="{y2 - y1}" fill="none" stroke="{STEP_COLOR}" stroke-width="{stroke}" '
                     f'stroke-dasharray="{stroke * 4} {stroke * 2}"/><text x="{x1 + stroke * 2}" y="{y1 + font}" '
                     f'font-size="{font}" fill="{STEP_COLOR}" stroke="#000" stroke-width="{font / 12}" '
                     f'paint-order="stroke" font-family="sans-serif" font-weight="700">{number}</text></g>')
    for finding in findings:
        box = _box(finding.get("box"))
        if box is None:
            continue
        x1, y1, x2, y2 = box
        color = FOUND_COLOR if finding.get("status") == "found" else MISS_COLOR
        # below the box (step numbers sit at top-left corners), above it when the box touches the bottom
        label_y = y2 + font * 1.05 if y2 + font * 1.1 <= height else max(y1 - stroke * 2, font)
        # text findings share one target name; the text read is what tells them apart
        label = f'"{finding["text"]}"' if finding.get("text") else (finding.get("name") or "finding")
        parts.append(f'<g class="finding-box"><title>{_esc(json.dumps(finding))}</title><rect x="{x1}" y="{y1}" '
                     f'width="{x2 - x1}" height="{y2 - y1}" fill="none" stroke="{color}" stroke-width="{stroke * 1.5}"/>'
                     f'<text x="{x1}" y="{label_y}" font-size="{font}" fill="{color}" stroke="#000" '
                     f'stroke-width="{font / 12}" paint-order="stroke" font-family="sans-serif" font-weight="700">'
                     f"{_esc(label)}</text></g>")
    svg = (f'<svg id="overlay" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
           f'role="img" aria-label="input image with search path">{"".join(parts)}</svg>')
    legend = (f'<b class="step">&#9633; numbered</b> search steps in visiting order ({len(steps)}), '
              f'<b class="found">&#9633;</b> found, <b class="miss">&#9633;</b> not found / failed, '
              f'<b class="mask">&#9632;</b> masks. Image {width}&times;{height} px ({_esc(source)}).')
    return f'<section id="image"><h2>Image and search path</h2><div class="figure">{svg}</div><p class="legend">{legend}</p></section>'


def _header(root: dict[str, Any], runs: list[dict[str, Any]], trace_id: str) -> str:
    inputs, outputs = root.get("inputs") or {}, root.get("outputs") or {}
    answer = outputs.get("answer")
    failed = bool(root.get("error")) or "end_time" not in root or root.get("end_time") is None
    if answer is None:
        answer_html = '<span class="status-error">no answer</span>' if failed else "no answer"
    else:
        answer_html = _esc(answer)
    options = inputs.get("options")
    options_html = ""
    if isinstance(options, list) and options:
        choice = outputs.get("choice")
        items = "".join(
            f'<li class="chosen"><b>{_esc(o)}</b> &larr; chosen</li>' if i == choice else f"<li>{_esc(o)}</li>"
            for i, o in enumerate(options)
        )
        options_html = f'<ol start="0" class="options">{items}</ol>'
    stats = outputs.get("stats") if isinstance(outputs.get("stats"), dict) else {}
    meta = [f"<span>trace {_esc(trace_id)}</span>", f"<span>{_esc(root.get('name'))}</span>",
            f"<span>total {_fmt_seconds(run_seconds(root))}</span>", f"<span>{len(runs)} runs</span>"]
    meta += [f"<span>{_esc(k.replace('_', ' '))}: {_esc(v)}</span>" for k, v in stats.items() if k != "seconds"]
    if outputs.get("parse_path"):
        meta.append(f"<span>parse path: {_esc(outputs['parse_path'])}</span>")
    error = f'<p class="error-box">Error: {_esc(root.get("error"))}</p>' if root.get("error") else ""
    question = inputs.get("question") or inputs.get("target")
    question_html = f'<p class="question">Q: {_esc(question if isinstance(question, str) else json.dumps(question))}</p>'
    return (f'<header class="answer{" failed" if failed else ""}"><div class="label">Final answer</div>'
            f'<div id="final-answer">{answer_html}</div>{question_html}{options_html}{error}'
            f'<div class="meta">{"".join(meta)}</div></header>')


def _findings_table(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(f.get('name'))}</td><td>{_esc(f.get('kind'))}</td>"
        f"<td class=\"{'status-ok' if f.get('status') == 'found' else 'status-error'}\">{_esc(f.get('status'))}</td>"
        f"<td>{_esc(f.get('box'))}</td><td class=\"num\">{_esc(f.get('score'))}</td><td>{_esc(f.get('text'))}</td>"
        f"<td>{_esc(f.get('tool'))}</td><td class=\"error-box\">{_esc(f.get('error'))}</td></tr>"
        for f in findings
    )
    return ('<section id="findings"><h2>Findings</h2><table><tr><th>target</th><th>kind</th><th>status</th>'
            f'<th>box (x1, y1, x2, y2)</th><th>score</th><th>text</th><th>tool</th><th>error</th></tr>{rows}</table></section>')


def _message_parts(inputs: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """(image paths, [(role, text)]) from a VLM run's inputs, whichever shape it used."""
    image_paths: list[str] = []
    texts: list[tuple[str, str]] = []
    for message in inputs.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role", "user")
        content = message.get("content")
        for part in content if isinstance(content, list) else [content]:
            if isinstance(part, dict) and part.get("type") == "image":
                image_paths.append(part.get("path") or part.get("image"))
            elif isinstance(part, dict) and "text" in part:
                texts.append((role, str(part["text"])))
            elif isinstance(part, str):
                texts.append((role, part))
    for key in ("image",):
        if isinstance(inputs.get(key), str):
            image_paths.append(inputs[key])
    for key in ("images",):
        if isinstance(inputs.get(key), list):
            image_paths.extend(p for p in inputs[key] if isinstance(p, str))
    for key in ("prompt", "question"):
        if isinstance(inputs.get(key), str):
            texts.append(("user", inputs[key]))
    if isinstance(inputs.get("options"), list):
        texts.append(("options", "\n".join(map(str, inputs["options"]))))
    return image_paths, texts


def _vlm_calls(nodes: list[RunNode], images: _Images) -> str:
    calls = [n for n in nodes if n.run.get("run_type") == "llm"]
    if not calls:
        return ""
    parent_of = {id(c): n for n in nodes for c in n.children}
    cards = []
    for number, node in enumerate(calls, start=1):
        run = node.run
        inputs, outputs = run.get("inputs") or {}, run.get("outputs") or {}
        paths, texts = _message_parts(inputs)
        crops = []
        for path in paths:
            url = images.data_url(path, MAX_CROP_SIDE)
            if url is None:
                crops.append(f'<figure><figcaption>{_esc(path)} (not in trace)</figcaption></figure>')
                continue
            picture = images.open(path)
            crops.append(f'<figure><img src="{url}" alt="{_esc(path)}"><figcaption>{_esc(path)} '
                         f'{picture.width}&times;{picture.height}</figcaption></figure>')
        prompt = "".join(f'<div class="label">{_esc(role)}</div><pre class="prompt">{_esc(text)}</pre>' for role, text in texts)
        reply_fields = {k: v for k, v in outputs.items() if k not in ("usage_metadata",)}
        reply_text = outputs.get("text") if isinstance(outputs.get("text"), str) else json.dumps(reply_fields, indent=1)
        parent = parent_of.get(id(node))
        parse_path = outputs.get("parse_path") or ((parent.run.get("outputs") or {}).get("parse_path") if parent else None)
        metadata = (run.get("extra") or {}).get("metadata") or {}
        usage = metadata.get("usage_metadata") or outputs.get("usage_metadata") or {}
        facts = [f"<span>{_fmt_seconds(run_seconds(run))}</span>"]
        if metadata.get("ls_model_name"):
            facts.append(f"<span>model {_esc(metadata['ls_model_name'])}</span>")
        if usage:
            facts.append(f"<span>tokens in {_esc(usage.get('input_tokens'))} / out {_esc(usage.get('output_tokens'))}</span>")
        if parse_path:
            facts.append(f"<span>parse path: {_esc(parse_path)}</span>")
        if parent is not None:
            facts.append(f"<span>in {_esc(parent.run.get('name'))}</span>")
        error = f'<pre class="error-box">{_esc(run.get("error"))}</pre>' if run.get("error") else ""
        cards.append(
            f'<div class="call"><h3>VLM call {number}: {_esc(run.get("name"))}</h3><div class="meta">{"".join(facts)}</div>'
            f'<div class="crops">{"".join(crops)}</div>{prompt}<div class="label">reply</div>'
            f'<pre class="reply">{_esc(reply_text)}</pre>{error}</div>'
        )
    return f'<section id="vlm"><h2>VLM calls ({len(calls)}): what it saw, was asked and answered</h2>{"".join(cards)}</section>'


def _steps_table(steps: list[dict[str, Any]]) -> str:
    if not steps:
        return ""
    rows = []
    for number, step in enumerate(steps, start=1):
        inputs, outputs = step.get("inputs") or {}, step.get("outputs") or {}
        detections = outputs.get("detections")
        rows.append(
            f"<tr><td class=\"num\">{number}</td><td>{_esc(inputs.get('phrase'))}</td><td class=\"num\">{_esc(inputs.get('level'))}</td>"
            f"<td>{_esc(inputs.get('box') or inputs.get('patch'))}</td><td class=\"num\">{_esc(inputs.get('priority'))}</td>"
            f"<td class=\"num\">{_esc(outputs.get('peak'))}</td><td>{_esc(outputs.get('context'))}</td>"
            f"<td class=\"num\">{len(detections) if isinstance(detections, list) else _esc(detections)}</td>"
            f"<td class=\"num\">{_fmt_seconds(run_seconds(step))}</td></tr>"
        )
    return ('<section id="steps"><h2>Search steps</h2><table><tr><th>#</th><th>target</th><th>level</th><th>patch box</th>'
            '<th>priority</th><th>heatmap peak</th><th>context cue</th><th>detections</th><th>time</th></tr>'
            f'{"".join(rows)}</table></section>')


def _timings(roots: list[RunNode]) -> str:
    total = max((run_seconds(r.run) or 0.0 for r in roots), default=0.0) or 1e-9
    rows = []

    def add(node: RunNode, depth: int) -> None:
        run = node.run
        seconds = run_seconds(run)
        status = (f'<span class="status-error">{_esc(run["error"])}</span>' if run.get("error")
                  else '<span class="status-ok">ok</span>' if run.get("end_time") else "unfinished")
        width = 100.0 * (seconds or 0.0) / total
        rows.append(f'<tr><td style="padding-left:{8 + depth * 16}px">{_esc(run.get("name"))}</td>'
                    f'<td>{_esc(run.get("run_type"))}</td><td class="num">{_fmt_seconds(seconds)}</td>'
                    f'<td style="width:22%"><div class="bar" style="width:{min(width, 100):.1f}%"></div></td><td>{status}</td></tr>')
        for child in node.children:
            add(child, depth + 1)

    for root in roots:
        add(root, 0)
    return ('<section id="timings"><h2>Timings</h2><table><tr><th>run</th><th>type</th><th>time</th><th>share</th>'
            f'<th>status</th></tr>{"".join(rows)}</table></section>')


def _errors(runs: list[dict[str, Any]]) -> str:
    failed = [r for r in runs if r.get("error")]
    if not failed:
        return ""
    items = "".join(f"<li><b>{_esc(r.get('name'))}</b> ({_esc(r.get('id'))}): <code>{_esc(r.get('error'))}</code></li>" for r in failed)
    return f'<section id="errors"><h2>Errors</h2><ul class="error-box">{items}</ul></section>'


def render_report(trace_dir: str | os.PathLike) -> str:
    """The report for the trace in `trace_dir` as one HTML string."""
    trace_dir = Path(trace_dir)
    runs = load_trace(trace_dir)
    roots = build_tree(runs)
    nodes = [n for r in roots for n in r.walk()]
    ordered = [n.run for n in nodes]
    root = next((r.run for r in roots if not r.run.get("parent_run_id")), roots[0].run)
    images = _Images(trace_dir)
    steps = _steps(nodes)
    findings = _findings(root, ordered)
    template = Template(resources.files("lookcloser.tracing").joinpath("report.html").read_text(encoding="utf-8"))
    return template.substitute(
        trace_id=_esc(root.get("trace_id")),
        header=_header(root, ordered, str(root.get("trace_id"))),
        figure=_figure(root, ordered, steps, findings, images),
        findings=_findings_table(findings),
        vlm_calls=_vlm_calls(nodes, images),
        steps=_steps_table(steps),
        timings=_timings(roots),
        errors=_errors(ordered),
        trace_dir_name=_esc(trace_dir.name),
        run_count=len(runs),
    )


def write_report(trace_dir: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Render and write the report; returns the output path."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_report(trace_dir), encoding="utf-8")
    return output
