"""Draw findings (boxes, labels, masks, read text) over the image: `lookcloser ask --save-vis`.

Masks come from `Finding.mask` (run-length `Mask`, in original-image pixels; a mask of another size
is not drawn). Findings carry no crops: everything is drawn from the image and the boxes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lookcloser.core.types import Finding

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def draw_findings(image: Image.Image, findings: list[Finding], max_side: int = 2048) -> Image.Image:
    """Return a copy of `image` (shrunk to `max_side`) with every found box, mask and label drawn.

    `image` is the original image the findings' boxes and masks refer to.
    """
    scale = min(1.0, max_side / max(image.size))
    canvas = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = _font(max(12, canvas.width // 80))
    line_width = max(2, canvas.width // 400)
    for index, finding in enumerate(f for f in findings if f.box is not None):
        colour = COLOURS[index % len(COLOURS)]
        if finding.mask is not None and (finding.mask.height, finding.mask.width) == (image.height, image.width):
            mask = Image.fromarray(finding.mask.to_array().astype(np.uint8) * 110).resize(canvas.size)
            overlay.paste((*colour, 110), (0, 0), mask)
        box = [v * scale for v in finding.box.to_list(None)]
        draw.rectangle(box, outline=(*colour, 255), width=line_width)
        label = finding.target.name if finding.text is None else f'"{finding.text}"'
        if finding.score is not None:
            label += f" {finding.score:.2f}"
        text_box = draw.textbbox((box[0], box[1]), label, font=font)
        top = box[1] - (text_box[3] - text_box[1]) - 4
        top = top if top >= 0 else box[3] + 2
        draw.rectangle(draw.textbbox((box[0], top), label, font=font), fill=(*colour, 220))
        draw.text((box[0], top), label, fill=(255, 255, 255, 255), font=font)
    return Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()
