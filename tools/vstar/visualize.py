"""Draw a V* search over the image: why the search went where it went, at a glance.

Layers: the root patch's cue heatmap as a red overlay, every visited patch as a numbered
outline (colour from early/blue to late/yellow, leaves dashed-thin), and the final box(es) in
green with their text or score. Works from a SearchResult or from a Finding's `search` record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lookcloser.tools.vstar.search import SearchResult
from lookcloser.core.types import Finding

__all__ = ["draw_search"]

MAX_SIDE = 1600


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _record(source: Any) -> tuple[dict[str, Any], np.ndarray | None, list[dict[str, Any]]]:
    """(search summary, root heatmap thumbnail or None, final boxes) from any accepted source."""
    if isinstance(source, SearchResult):
        summary = source.summary()
        heat = source.steps[0].heatmap if source.steps else None
        finals = [{"box": d.box.to_list(), "label": d.text or d.label, "score": d.score}
                  for d in (source.lines if source.mode == "read_all" else ([source.best] if source.found else []))]
        return summary, heat, finals
    findings = [source] if isinstance(source, Finding) else list(source)
    if not findings or findings[0].search is None:
        raise ValueError("draw_search needs a SearchResult or findings that carry a V* search record")
    finals = [{"box": f.box.to_list(), "label": f.text, "score": f.score} for f in findings
              if f.status == "found" and f.box is not None]
    return findings[0].search, None, finals


def draw_search(image: Image.Image, source: SearchResult | Finding | Sequence[Finding], out_path: str | Path | None = None) -> Image.Image:
    """Render the search; save to `out_path` when given. Returns the picture."""
    summary, heat, finals = _record(source)
    width, height = image.size
    ratio = min(1.0, MAX_SIDE / max(width, height))
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    canvas = image.convert("RGB").resize(size, Image.BILINEAR)
    if heat is not None and heat.size and heat.max() > 0:
        alpha = Image.fromarray(heat).resize(size, Image.BILINEAR)
        alpha = alpha.point(lambda v: int(v * 0.55))
        red = Image.new("RGB", size, (255, 30, 30))
        canvas = Image.composite(red, canvas, alpha)
    draw = ImageDraw.Draw(canvas)
    steps = summary.get("steps", [])
    font = _font(max(12, size[0] // 70))
    count = max(len(steps), 1)
    for step in steps:
        t = (step["order"] - 1) / max(count - 1, 1)
        colour = (int(40 + 215 * t), int(120 + 100 * t), int(255 * (1 - t)))
        x1, y1, x2, y2 = (v * ratio for v in step["box"])
        line = 1 if step.get("leaf") else 3
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=line)
        label = str(step["order"])
        box = draw.textbbox((x1 + 3, y1 + 2), label, font=font)
        draw.rectangle(box, fill=(0, 0, 0))
        draw.text((x1 + 3, y1 + 2), label, fill=colour, font=font)
    for final in finals:
        x1, y1, x2, y2 = (v * ratio for v in final["box"])
        pad = 4
        draw.rectangle([x1 - pad, y1 - pad, x2 + pad, y2 + pad], outline=(0, 255, 0), width=3)
        text = final["label"] or (f"{final['score']:.2f}" if final["score"] is not None else "")
        if text:
            tb = draw.textbbox((x1, y2 + pad + 2), text, font=font)
            draw.rectangle(tb, fill=(0, 90, 0))
            draw.text((x1, y2 + pad + 2), text, fill=(255, 255, 255), font=font)
    caption = (f"V* {summary.get('mode')} '{summary.get('phrase')}' cue={summary.get('cue')}: "
               f"{len(steps)} steps, stop={summary.get('stop_reason')}, found={summary.get('found')}")
    cb = draw.textbbox((6, 6), caption, font=font)
    draw.rectangle([cb[0] - 3, cb[1] - 3, cb[2] + 3, cb[3] + 3], fill=(0, 0, 0))
    draw.text((6, 6), caption, fill=(255, 255, 255), font=font)
    if out_path is not None:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(out)
    return canvas
