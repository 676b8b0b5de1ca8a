"""The owlv2 cue on a tiny random-weight OWLv2 loaded from a local directory (no hub).

Random weights make the numbers meaningless, so the tests check what does not depend on them:
the split forward equals transformers' full forward, the heatmap covers exactly the patch (not
OWLv2's square padding), boxes land in patch pixels, and encoders run once per patch / phrase.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lookcloser.core.errors import ModelLoadError  # noqa: E402
from lookcloser.tools.vstar.cue import CueModel  # noqa: E402
from lookcloser.tools.vstar.owlv2_cue import Owlv2Cue  # noqa: E402
from tiny_owlv2 import GRID, build_tiny_owlv2  # noqa: E402


@pytest.fixture(scope="session")
def tiny_owlv2_path(tmp_path_factory):
    return build_tiny_owlv2(tmp_path_factory.mktemp("tiny_owlv2"))


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = (np.random.RandomState(seed).rand(height, width, 3) * 255).astype("uint8")
    return Image.fromarray(pixels)


def _reference(path, image: Image.Image, phrase: str):
    """transformers' own full forward + post-processing, to compare the split forward against."""
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    processor = Owlv2Processor.from_pretrained(path)
    model = Owlv2ForObjectDetection.from_pretrained(path).eval()
    inputs = processor(text=[[f"a photo of a {phrase}"]], images=image, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    boxes = processor.image_processor.post_process_object_detection(
        outputs, threshold=0.0, target_sizes=[(image.height, image.width)]
    )[0]["boxes"]
    return outputs.logits[0, :, 0].reshape(GRID, GRID).numpy(), boxes.numpy()


def test_owlv2_cue_matches_full_forward_and_crops_padding(tiny_owlv2_path):
    image = _noise(96, 48)  # wide: OWLv2 pads the bottom half
    cue = Owlv2Cue(model=tiny_owlv2_path, device="cpu", min_score=0.0, max_detections=1000, nms_iou=1.0)
    assert isinstance(cue, CueModel)
    out = cue(image, "dog")
    logits, ref_boxes = _reference(tiny_owlv2_path, image, "dog")

    assert out.heatmap.dtype == np.float32 and out.heatmap.min() >= 0
    assert out.heatmap.shape == (12, 24)  # 3 of 6 rows valid, 4x upsampled: same 1:2 aspect as the patch
    assert out.extra["valid_grid"] == [3, 6]
    np.testing.assert_allclose(out.heatmap[::4, ::4], 1 / (1 + np.exp(-logits[:3])), atol=1e-5)
    valid = logits[:3]
    assert out.peak == pytest.approx(valid.max() - np.median(valid), abs=1e-4)
    assert out.extra["max_logit"] == pytest.approx(valid.max(), abs=1e-4)

    # Boxes: transformers scales by the padded square's side; ours must be those boxes, clipped to
    # the patch, minus the ones centred in the padding.
    centres_inside = ((ref_boxes[:, 0] + ref_boxes[:, 2]) / 2 < 96) & ((ref_boxes[:, 1] + ref_boxes[:, 3]) / 2 < 48)
    expected = np.clip(ref_boxes[centres_inside], 0, [96, 48, 96, 48])
    got = np.array([d.box.to_list(None) for d in out.detections])
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(np.array(sorted(got.tolist())), np.array(sorted(expected.tolist())), atol=1e-3)
    for det in out.detections:
        assert 0 <= det.box.x1 <= det.box.x2 <= 96 and 0 <= det.box.y1 <= det.box.y2 <= 48
        assert 0.0 <= det.score <= 1.0 and det.label == "dog"


@pytest.mark.parametrize(("width", "height", "shape"), [(40, 100, (24, 10)), (1, 1, (24, 24)), (2000, 20, (1, 24))])
def test_heatmap_follows_patch_shape(tiny_owlv2_path, width, height, shape):
    cue = Owlv2Cue(model=tiny_owlv2_path, device="cpu", min_score=0.0)
    out = cue(_noise(width, height), "red car")
    assert out.heatmap.shape == shape
    assert np.isfinite(out.heatmap).all() and out.heatmap.min() >= 0 and out.peak >= 0
    for det in out.detections:
        assert 0 <= det.box.x1 <= det.box.x2 <= width and 0 <= det.box.y1 <= det.box.y2 <= height


def test_embeddings_are_reused_across_phrases_and_calls(tiny_owlv2_path):
    cue = Owlv2Cue(model=tiny_owlv2_path, device="cpu", cache_size=2)
    a, b, c = _noise(64, 64, 1), _noise(64, 64, 2), _noise(64, 64, 3)
    first = cue(a, "dog")
    cue(a, "red car")
    assert (cue.image_encoder_calls, cue.text_encoder_calls) == (1, 2)
    again = cue(a.copy(), "dog")  # same pixels, different object: still no re-encoding
    assert (cue.image_encoder_calls, cue.text_encoder_calls) == (1, 2)
    np.testing.assert_array_equal(first.heatmap, again.heatmap)
    cue(b, "dog")
    cue(c, "dog")  # cache of 2: `a` is evicted now
    cue(a, "dog")
    assert (cue.image_encoder_calls, cue.text_encoder_calls) == (4, 2)
    assert cue.calls == 6


def test_threads_share_one_model_and_one_encoding(tiny_owlv2_path):
    cue = Owlv2Cue(model=tiny_owlv2_path, device="cpu")
    image = _noise(80, 60)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cue(image, "dog").peak)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert (cue.image_encoder_calls, cue.text_encoder_calls) == (1, 1)


def test_missing_model_directory_is_a_clear_load_error(tmp_path):
    cue = Owlv2Cue(model=tmp_path / "no-such-owlv2", device="cpu")  # lazy: nothing loads yet
    with pytest.raises(ModelLoadError, match="no-such-owlv2.*local directory"):
        cue(_noise(32, 32), "dog")


def test_directory_without_a_model_is_a_clear_load_error(tmp_path):
    cue = Owlv2Cue(model=tmp_path, device="cpu")
    with pytest.raises(ModelLoadError, match="could not load OWLv2 model") as info:
        cue(_noise(32, 32), "dog")
    assert "\n" not in str(info.value)


def test_bad_arguments_fail_with_the_value_named(tiny_owlv2_path):
    with pytest.raises(ValueError, match="query_template"):
        Owlv2Cue(model=tiny_owlv2_path, query_template="a photo")
    with pytest.raises(ValueError, match="cache_size"):
        Owlv2Cue(model=tiny_owlv2_path, cache_size=0)
    with pytest.raises(ValueError, match="non-empty phrase"):
        Owlv2Cue(model=tiny_owlv2_path, device="cpu")(_noise(32, 32), "   ")


def test_device_and_dtype_are_resolved_like_every_local_model(tiny_owlv2_path):
    if torch.cuda.is_available():
        pytest.skip("checks a machine without CUDA")
    auto = Owlv2Cue(model=tiny_owlv2_path)  # auto: CPU here, float32
    auto(_noise(32, 32), "dog")
    assert auto._device == "cpu" and auto._model.dtype == torch.float32
    half = Owlv2Cue(model=tiny_owlv2_path, device="cpu", dtype="bf16")
    assert np.isfinite(half(_noise(32, 32), "dog").heatmap).all() and half._model.dtype == torch.bfloat16
    with pytest.raises(ModelLoadError, match="OWLv2 device 'cuda' was asked for but CUDA is not available"):
        Owlv2Cue(model=tiny_owlv2_path, device="cuda")(_noise(32, 32), "dog")
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        Owlv2Cue(model=tiny_owlv2_path, dtype="float8")


def test_an_unloadable_owlv2_tells_a_cli_user_which_flag_to_set(tmp_path):
    from lookcloser import Agent

    from doubles import ScriptedVLM

    missing_dir = tmp_path / "no-such-owlv2"
    agent = Agent(vlm=ScriptedVLM(['{"answer": null, "missing": [{"name": "cat", "kind": "object"}]}', "no"]),
                  tools={"localizer": {"name": "vstar", "model": str(missing_dir)}}, spelling="cli")
    [finding] = agent.run(_noise(64, 64), "Where is the cat?").findings
    assert finding.status == "failed" and "Owlv2Cue(" not in finding.error
    assert "--tool localizer.model=/models/owlv2-base-patch16-ensemble" in finding.error
