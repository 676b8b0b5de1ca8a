"""TransformersVLM on a tiny random-weight Qwen2.5-VL loaded from a local directory.

Weights are random, so the text is gibberish; the tests check the real processor -> model
path: token counts, lazy single load, likelihood math and error messages.
"""

from __future__ import annotations

import math
import threading

import pytest
from PIL import Image

from lookcloser.core.errors import ModelLoadError
from lookcloser.vlm import ChatMessage, TransformersVLM, VLMReply, supports
from lookcloser.vlm.families import shrunk_size


@pytest.fixture(scope="module")
def vlm(tiny_qwen_path):
    return TransformersVLM(str(tiny_qwen_path), device="cpu", dtype="float32").load()


def _image(color=(200, 30, 30), size=(120, 90)):
    return Image.new("RGB", size, color)


def test_generate_returns_text_and_token_counts(vlm):
    reply = vlm.generate([ChatMessage("user", [_image(), "What color is the sign?"])], max_new_tokens=6)
    assert isinstance(reply, VLMReply)
    assert isinstance(reply.text, str) and reply.text
    assert 1 <= reply.output_tokens <= 6
    text_only = vlm.generate([ChatMessage("user", ["What color is the sign?"])], max_new_tokens=2)
    # The image adds vision pad tokens to the prompt.
    assert reply.input_tokens > text_only.input_tokens > 5


def test_generate_is_greedy_and_deterministic(vlm):
    messages = [ChatMessage("system", ["You are a helpful assistant."]), ChatMessage("user", [_image(), "Is there a dog?"])]
    assert vlm.generate(messages, max_new_tokens=5).text == vlm.generate(messages, max_new_tokens=5).text


def test_stream_yields_the_generated_text_in_pieces(vlm, monkeypatch):
    """TextIteratorStreamer on a worker thread: the pieces join to generate's text, the counts are generate's."""
    messages = [ChatMessage("user", [_image(), "Describe the sign."])]
    assert supports(vlm, "stream")
    whole = vlm.generate(messages, max_new_tokens=24)
    *pieces, reply = list(vlm.stream(messages, max_new_tokens=24))
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == reply.text == whole.text
    assert (reply.input_tokens, reply.output_tokens) == (whole.input_tokens, whole.output_tokens)

    def fail(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(vlm.model, "generate", fail)
    with pytest.raises(RuntimeError, match="out of memory"):  # a failing generation ends the stream with its error
        list(vlm.stream(messages, max_new_tokens=4))


def test_multi_image_messages(vlm):
    one = vlm.generate([ChatMessage("user", [_image(), "Compare."])], max_new_tokens=2)
    two = vlm.generate(
        [ChatMessage("user", [_image(), _image((0, 0, 255), (60, 200)), "Compare."])], max_new_tokens=2
    )
    assert two.input_tokens > one.input_tokens
    # Images in several turns are all passed through, in order.
    turns = [
        ChatMessage("user", [_image(), "Look at this."]),
        ChatMessage("assistant", ["I need to look closer."]),
        ChatMessage("user", [_image((0, 255, 0), (64, 64)), "Here is a crop."]),
    ]
    assert vlm.generate(turns, max_new_tokens=2).input_tokens > one.input_tokens


def test_loads_once_even_from_threads(tiny_qwen_path, monkeypatch, tmp_path):
    import shutil

    import transformers

    tiny_qwen_path = shutil.copytree(tiny_qwen_path, tmp_path / "fresh-copy")  # not loaded by this process yet

    calls = []
    original = transformers.AutoModelForImageTextToText.from_pretrained

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", counting)
    fresh = TransformersVLM(str(tiny_qwen_path), device="cpu")
    assert fresh.model is None and calls == []  # lazy: constructing loads nothing
    threads = [threading.Thread(target=fresh.load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh.generate([ChatMessage("user", ["hi"])], max_new_tokens=1)
    assert calls == [str(tiny_qwen_path)]
    assert fresh.describe() == {
        "backend": "transformers",
        "model": str(tiny_qwen_path),
        "device": "cpu",
        "dtype": "float32",
        "quantization": None,
        "max_image_pixels": fresh.max_image_pixels,
        "model_type": "qwen2_5_vl",
        "box_format": None,
        # the tiny processor's own max_pixels (64 merged 28-px patches) is below the default cap
        "pixel_budget": 28 * 28 * 64,
        "pixel_rule": "smart_resize (Qwen2VLImageProcessor): 3136..50176 px, sides multiples of 28",
        "loaded": True,
    }
    assert fresh.name == f"transformers:{tiny_qwen_path}"


def test_yes_probability_matches_logits(vlm):
    import torch

    assert supports(vlm, "yes_probability") and supports(vlm, "score_options")
    image = _image()
    p = vlm.yes_probability(image, "Is the sign red? Answer Yes or No.")
    assert 0.0 <= p <= 1.0
    # Recompute by hand from the full next-token distribution.
    tok = vlm.tokenizer
    yes_ids = {tok.convert_tokens_to_ids(w) for w in ("Yes", "yes")} - {tok.unk_token_id, None}
    no_ids = {tok.convert_tokens_to_ids(w) for w in ("No", "no")} - {tok.unk_token_id, None}
    assert yes_ids and no_ids
    inputs = vlm._encode([ChatMessage("user", [image, "Is the sign red? Answer Yes or No."])])
    with torch.inference_mode():
        probs = vlm.model(**inputs).logits[0, -1].float().softmax(-1)
    p_yes = float(probs[sorted(yes_ids)].sum())
    p_no = float(probs[sorted(no_ids)].sum())
    assert p == pytest.approx(p_yes / (p_yes + p_no), rel=1e-4)
    # A different image changes the answer distribution: the image really reaches the model.
    assert vlm.yes_probability(_image((0, 0, 255)), "Is the sign red? Answer Yes or No.") != p


def test_score_options_single_tokens_follow_next_token_logits(vlm):
    import torch

    image = _image()
    question = "Which option?"
    inputs = vlm._encode([ChatMessage("user", [image, question])])
    with torch.inference_mode():
        logprobs = vlm.model(**inputs).logits[0, -1].float().log_softmax(-1)
    tok = vlm.tokenizer
    special = set(tok.all_special_ids)
    # Tokens whose text re-encodes to exactly that token (byte fragments do not), best first.
    ranked = [
        i
        for i in logprobs.argsort(descending=True).tolist()
        if i not in special and tok.encode(tok.decode([i]), add_special_tokens=False) == [i]
    ]
    assert len(ranked) > 50
    picks = [ranked[0], ranked[1], ranked[len(ranked) // 2], ranked[-1]]
    options = [tok.decode([i]) for i in picks]
    scores = vlm.score_options(image, question, options)
    assert len(scores) == 4
    # For one-token options the score is that token's next-token log-probability.
    assert scores == pytest.approx([float(logprobs[i]) for i in picks], abs=1e-4)
    assert scores == sorted(scores, reverse=True)


def test_score_options_multi_token_mean(vlm):
    image = _image()
    scores = vlm.score_options(image, "Which color?", ["The sign is red.", "B", "The sign is red."])
    assert len(scores) == 3
    assert all(math.isfinite(s) and s <= 0.0 for s in scores)
    assert scores[0] == pytest.approx(scores[2])  # deterministic
    assert scores[0] != scores[1]


def test_score_options_rejects_empty(vlm):
    with pytest.raises(ValueError, match="at least one option"):
        vlm.score_options(_image(), "q", [])
    with pytest.raises(ValueError, match="non-empty strings"):
        vlm.score_options(_image(), "q", ["A", ""])


def test_max_image_pixels_limits_vision_tokens(tiny_qwen_path, vlm):
    small = TransformersVLM(str(tiny_qwen_path), device="cpu", max_image_pixels=28 * 28 * 8)
    big_image = _image(size=(400, 300))
    messages = [ChatMessage("user", [big_image, "What is it?"])]
    limited = small.generate(messages, max_new_tokens=1).input_tokens
    unlimited = vlm.generate(messages, max_new_tokens=1).input_tokens
    assert limited < unlimited


def test_sent_image_size_is_the_grid_the_processor_builds(tiny_qwen_path):
    """Qwen's smart resize: the (width, height) sent_image_size names is image_grid_thw x patch size, for photos
    of many shapes, with the cap lowering the processor's own max_pixels (not a shrink before it)."""
    patch = 14
    for cap in (None, 28 * 28 * 16, 28 * 28 * 8):
        vlm = TransformersVLM(str(tiny_qwen_path), device="cpu", max_image_pixels=cap)
        for size in [(4000, 3000), (3000, 4000), (1200, 90), (97, 61), (30, 30), (640, 480)]:
            inputs = vlm._encode([ChatMessage("user", [_image(size=size), "x"])])
            _, grid_h, grid_w = (int(v) for v in inputs["image_grid_thw"][0])
            assert vlm.sent_image_size(size) == (grid_w * patch, grid_h * patch), (cap, size)
            width, height = vlm.sent_image_size(size)
            assert width % 28 == 0 and height % 28 == 0
            if max(size) / min(size) < 4:  # a thin strip keeps one row of 28 px, past the budget (smart_resize)
                assert width * height <= vlm.describe()["pixel_budget"]
    with pytest.raises(ValueError, match="width, height"):
        vlm.sent_image_size((0, 10))


def test_box_format_and_model_type_are_the_users_and_the_configs(tiny_qwen_path):
    vlm = TransformersVLM(str(tiny_qwen_path), device="cpu", box_format="qwen_2_5_vl")
    assert vlm.box_format == "qwen_2_5_vl" and vlm.model_type is None  # nothing loaded yet
    before = vlm.describe()
    assert before["model_type"] is None and before["pixel_budget"] is None and before["loaded"] is False
    vlm.load()
    assert vlm.model_type == "qwen2_5_vl" and vlm.describe()["box_format"] == "qwen_2_5_vl"
    assert TransformersVLM(str(tiny_qwen_path)).box_format is None
    with pytest.raises(ValueError, match="box_format"):
        TransformersVLM("x/y", box_format="")


def test_shrunk_size_keeps_aspect_and_budget():
    width, height = shrunk_size(4032, 3024, 1_000_000)
    assert width * height <= 1_000_000 and width * height > 990_000
    assert abs(width / height - 4032 / 3024) < 0.01
    assert shrunk_size(4032, 3024, None) == (4032, 3024)
    assert shrunk_size(10, 10, 1_000_000) == (10, 10)  # never upscales


def test_missing_local_path_gives_one_line_model_load_error(tmp_path):
    missing = tmp_path / "no-such-model"
    vlm = TransformersVLM(str(missing), device="cpu")
    with pytest.raises(ModelLoadError) as info:
        vlm.generate([ChatMessage("user", ["hi"])])
    message = str(info.value)
    assert str(missing) in message
    assert "--vlm transformers:" in message and "openai:" in message
    assert "\n" not in message


def test_directory_without_checkpoint_gives_model_load_error(tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelLoadError) as info:
        TransformersVLM(str(empty), device="cpu").load()
    message = str(info.value)
    assert repr(str(empty)) in message and "\n" not in message and len(message) < 600


def test_bad_options_are_rejected_early():
    with pytest.raises(ValueError, match="dtype"):
        TransformersVLM("x/y", dtype="float8")
    with pytest.raises(ValueError, match="not both"):
        TransformersVLM("x/y", load_in_8bit=True, load_in_4bit=True)


def test_quantization_without_bitsandbytes_is_a_clear_error():
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    with pytest.raises(ModelLoadError, match="pip install bitsandbytes"):
        TransformersVLM("Qwen/Qwen2.5-VL-3B-Instruct", load_in_4bit=True)


def test_hub_id_loads_from_local_cache_without_network(tiny_qwen_path, tmp_path):
    """A cached hub id loads with no hub round trip (offline machines would otherwise wait minutes)."""
    import os
    import shutil
    import subprocess
    import sys

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--lookcloser-test--tiny-qwen"
    shutil.copytree(tiny_qwen_path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HUB_CACHE=str(tmp_path / "hub"), HF_ENDPOINT="http://127.0.0.1:9")  # unreachable hub
    code = (
        "from lookcloser.vlm import TransformersVLM, ChatMessage\n"
        "vlm = TransformersVLM('lookcloser-test/tiny-qwen', device='cpu')\n"
        "print(vlm.generate([ChatMessage('user', ['hi'])], max_new_tokens=2).output_tokens)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] in {"1", "2"}


def test_device_and_dtype_resolution(tiny_qwen_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU defaults")
    auto = TransformersVLM(str(tiny_qwen_path)).load()
    assert auto.describe()["device"] == "cpu" and auto.describe()["dtype"] == "float32"
    bf16 = TransformersVLM(str(tiny_qwen_path), device="cpu", dtype="bfloat16")
    reply = bf16.generate([ChatMessage("user", [_image(), "hi"])], max_new_tokens=2)
    assert bf16.describe()["dtype"] == "bfloat16" and reply.output_tokens >= 1
    assert 0.0 <= bf16.yes_probability(_image(), "Red?") <= 1.0


def test_cuda_without_cuda_is_a_clear_load_error(tiny_qwen_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    vlm = TransformersVLM(str(tiny_qwen_path), device="cuda")
    with pytest.raises(ModelLoadError, match="VLM device 'cuda' was asked for but CUDA is not available") as info:
        vlm.load()
    assert "\n" not in str(info.value) and vlm.model is None
