"""Photos and reads for the tests that drive a served graph as a client would (`langgraph dev` and
`lookcloser serve`): the GATE 42 sign as data URLs, the image route's bytes, the history a client reads."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image, ImageDraw, ImageFont


def sign_data_url() -> str:
    """The 480x160 GATE 42 sign as a PNG data URL."""
    image = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(image).text((20, 40), "GATE 42", fill="black", font=ImageFont.load_default(size=64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def big_sign_data_url(size=(2000, 1500)) -> tuple[str, bytes]:
    """A 3-Mpx noisy photo with the GATE 42 sign in it (~2.3 MB as a data URL: noise does not compress), and its
    JPEG bytes."""
    photo = Image.effect_noise(size, 40).convert("RGB")
    sign = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(sign).text((20, 40), "GATE 42", fill="black", font=ImageFont.load_default(size=64))
    photo.paste(sign.resize((960, 320)), (300, 400))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode(), buffer.getvalue()


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    """GET `url`: (body, headers); urllib's HTTPError (with .code and the body) when it is not 200."""
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read(), dict(reply.headers)


def history_bytes(client, thread_id: str) -> int:
    """What a client reads for the thread's history (Agent Chat UI reads it when it opens a thread), as JSON."""
    return len(json.dumps(client.threads.get_history(thread_id, limit=1000)))
