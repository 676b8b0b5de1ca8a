"""The served graph's HTTP guard and its image route, without a server (the servers are driven through the SDK in
tests/test_served_graph.py and tests/test_production_server.py): what reaches the LangGraph server when a client
sends a photo inline, what the route answers, and how the graph reads the URL back."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from lookcloser.core.config import AgentConfig  # noqa: E402
from lookcloser.core.errors import ImageError  # noqa: E402
from lookcloser.imaging import uploads  # noqa: E402
from lookcloser.imaging.refs import resolve_image  # noqa: E402


def jpeg(color=(200, 30, 30), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKCLOSER_IMAGE_STORE", str(tmp_path / "images"))
    return uploads.image_store()


class Recorder:
    """The LangGraph server behind the guard: records the body and headers it is handed."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.lengths: list[int] = []

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(json.loads(body))
        self.lengths.append(int(dict(scope["headers"])[b"content-length"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})


def guarded():
    from lookcloser.runtime.context_guard import ContextGuard  # noqa: PLC0415

    server = Recorder()
    return server, TestClient(ContextGuard(server), base_url="http://vision.test:2024")


def test_inline_images_of_a_run_reach_the_server_as_urls_of_the_stored_bytes(store):
    server, client = guarded()
    photo, other = jpeg(), jpeg((0, 0, 255))
    data = base64.b64encode(photo).decode()
    run = {"input": {"image": f"data:image/jpeg;base64,{data}", "question": "What?", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(other).decode(),
                                            "detail": "high"}},
        {"type": "image", "mimeType": "image/jpeg", "data": data, "metadata": {"name": "a.jpg"}},
        {"type": "image", "source_type": "base64", "mime_type": "image/jpeg", "base64": data}]}]},
        "context": {"config": {"max_targets": 2}}}
    assert client.post("/threads/t1/runs/wait", json=run).status_code == 200
    [sent] = server.bodies
    url = sent["input"]["image"]
    key = uploads.key_of(photo)
    assert url == f"http://vision.test:2024/lookcloser/images/{key}" and store.get(key) == photo
    blocks = sent["input"]["messages"][0]["content"]
    assert blocks[0] == {"type": "text", "text": "What?"}
    assert blocks[1] == {"type": "image_url", "image_url": {"url": f"http://vision.test:2024/lookcloser/images/"
                                                                   f"{uploads.key_of(other)}", "detail": "high"}}
    assert blocks[2] == {"type": "image", "mimeType": "image/jpeg", "metadata": {"name": "a.jpg"}, "url": url}
    assert blocks[3] == {"type": "image", "source_type": "url", "mime_type": "image/jpeg", "url": url}
    assert sent["context"] == run["context"] and sent["input"]["question"] == "What?"
    assert server.lengths == [len(json.dumps(sent, separators=(",", ":")).encode())]  # the new body's length
    # the graph reads the URL back from the store, and only from it
    image = resolve_image(url, AgentConfig())
    assert image.size == (64, 48) and image.getpixel((5, 5))[0] > 150


def test_what_is_not_an_inline_image_passes_as_it_came(store):
    server, client = guarded()
    bodies = [{"input": {"image": "/etc/hostname", "question": "?"}},
              {"input": {"image": "data:text/plain;base64,aGVsbG8gd29ybGQgaGVsbG8=", "question": "?"}},
              {"input": {"image": base64.b64encode(b"not an image at all, just text").decode(), "question": "?"}},
              {"input": {"messages": [{"role": "user", "content": "hello"}]}}]
    for body in bodies:
        assert client.post("/runs/wait", json=body).status_code == 200
    assert server.bodies == bodies and not (store.root.exists() and any(store.root.rglob("*")))


def test_a_state_update_is_stored_by_url_too(store):
    server, client = guarded()
    data = base64.b64encode(jpeg()).decode()
    client.post("/threads/t1/state", json={"values": {"image": data}})
    assert server.bodies[0]["values"]["image"].endswith(f"/lookcloser/images/{uploads.key_of(jpeg())}")


def test_the_public_url_names_the_server_when_set(store, monkeypatch):
    from lookcloser.runtime import context_guard  # noqa: PLC0415

    monkeypatch.setattr(context_guard, "_PUBLIC_URL", "https://vision.example.com")
    server, client = guarded()
    client.post("/runs", json={"input": {"image": base64.b64encode(jpeg()).decode(), "question": "?"}})
    assert server.bodies[0]["input"]["image"].startswith("https://vision.example.com/lookcloser/images/")
    monkeypatch.setenv("LOOKCLOSER_PUBLIC_URL", "vision.example.com")
    with pytest.raises(ValueError, match="LOOKCLOSER_PUBLIC_URL must be the server's http\\(s\\) address"):
        context_guard.public_url()


def test_the_image_route_answers_the_bytes_and_404_in_one_line(store):
    from lookcloser.runtime.context_guard import app  # noqa: PLC0415

    photo = jpeg()
    key = store.put(photo)
    client = TestClient(app)
    reply = client.get(f"/lookcloser/images/{key}")
    assert reply.status_code == 200 and reply.content == photo and reply.headers["content-type"] == "image/jpeg"
    assert "immutable" in reply.headers["cache-control"] and reply.headers["etag"] == f'"{key}"'
    assert client.get(f"/lookcloser/images/{key}", headers={"If-None-Match": f'"{key}"'}).status_code == 304
    missing = client.get(f"/lookcloser/images/{'a' * 32}")
    assert missing.status_code == 404 and missing.text == f"no image {'a' * 32} in this server's image store\n"
    bad = client.get("/lookcloser/images/xyz")
    assert bad.status_code == 404 and bad.text == "not an image reference: 'xyz' (expected 32 hex digits)\n"


def test_the_graph_refuses_references_it_cannot_resolve_in_one_line(store):
    with pytest.raises(ImageError, match=r"^image reference http://x/lookcloser/images/b{32} names no image in this "
                                         r"server's image store \(the folder .*\): send the photo as a data URL$"):
        resolve_image(f"http://x/lookcloser/images/{'b' * 32}", AgentConfig())
    with pytest.raises(ImageError, match=r"^image reference https://x/lookcloser/images/\.\./etc is not one this "
                                         r"server made"):
        resolve_image("https://x/lookcloser/images/../etc", AgentConfig())
    with pytest.raises(ImageError, match="image URLs are not fetched"):  # any other URL: as before
        resolve_image("http://x/photo.jpg", AgentConfig())
