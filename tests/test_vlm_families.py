"""Every open VLM family transformers ships, through the real graph, on a tiny random-weight model of each.

Each family's checkpoint (tests/tiny_vlms.py) is the family's config, processor and image processor with random
weights and a locally built tokenizer; its generation is steered to spell SHOW's JSON naming two targets, so one
`Agent.stream` runs SHOW -> SEARCH -> TELL with the image and two crops -> option likelihood, with TELL's answer
streamed token by token. The model is never replaced: what is checked is what the family's processor built and
its model took (image tokens of each image, the grid or tiles a 4000x3000 photo became). docs/vlm.md's family
table is these tests' results. A family TransformersVLM refuses (no chat template) is tested for that one-line
refusal; one whose processor needs a package lookcloser does not install is a skip naming it.
"""

from __future__ import annotations

import math

import pytest
from PIL import Image

import tiny_vlms
from doubles import FixedLocalizer
from lookcloser import Agent, AgentConfig
from lookcloser.core.errors import ModelLoadError
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply
from lookcloser.vlm import TransformersVLM

QUESTION = "What colour is the sign?"
OPTIONS = ["red", "blue"]
BOXES = {"the sign": (20, 10, 60, 40), "the cup": (70, 30, 110, 80)}  # in the 128x96 photo below


def _params() -> list:
    params = []
    for name, family in tiny_vlms.FAMILIES.items():
        why = family.skip or (f"TransformersVLM refuses it: {family.refused} (test_a_refused_family_says_why)"
                              if family.refused else None)
        params.append(pytest.param(name, marks=pytest.mark.skip(reason=why)) if why else name)
    return params


@pytest.fixture(scope="session", params=_params())
def family_vlm(request, tmp_path_factory) -> TransformersVLM:
    """The family's tiny checkpoint, built and loaded once per session."""
    path = tiny_vlms.build(request.param, tmp_path_factory.mktemp(request.param))
    return TransformersVLM(str(path), device="cpu", dtype="float32").load()


def _photo(size=(128, 96)) -> Image.Image:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 220), (70, 30, 110, 80))
    return image


def _gradient(size: tuple[int, int]) -> Image.Image:
    """Red rises with x, green with y, full blue: tiles can be told apart (tiny_vlms.tile_layout reads the grid)."""
    import numpy as np

    width, height = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 255
    return Image.fromarray(pixels)


def _image_token_id(vlm: TransformersVLM) -> int:
    config = vlm.model.config
    value = getattr(config, "image_token_id", None)
    return int(value if value is not None else config.image_token_index)


def _image_tokens(vlm: TransformersVLM, inputs) -> int:
    return int((inputs["input_ids"] == _image_token_id(vlm)).sum())


def _flat(images) -> list[Image.Image]:
    if isinstance(images, Image.Image):
        return [images]
    return [image for part in images for image in _flat(part)]


def _spy(vlm: TransformersVLM, monkeypatch) -> list[tuple[list[Image.Image], object, list[Image.Image]]]:
    """Record each encoded call: the images it carried, the processor's output that went to the model, and the
    images the family's image processor itself received."""
    calls: list[tuple[list[Image.Image], object, list[Image.Image]]] = []
    encode, image_processor = vlm._encode, vlm.processor.image_processor
    preprocess, received = image_processor.preprocess, []

    def seeing(images, *args, **kwargs):
        received.extend(_flat(images))
        return preprocess(images, *args, **kwargs)

    def recording(messages, **kwargs):
        received.clear()
        inputs = encode(messages, **kwargs)
        calls.append(([p for m in messages for p in m.content if isinstance(p, Image.Image)], inputs, list(received)))
        return inputs

    monkeypatch.setattr(vlm, "_encode", recording)
    monkeypatch.setattr(image_processor, "preprocess", seeing)
    return calls


@pytest.mark.parametrize("name", [n for n, f in tiny_vlms.FAMILIES.items() if f.refused])
def test_a_refused_family_says_why(name, tmp_path):
    """A family that cannot work here is refused at load in one line that says why, not deep in a generate call."""
    family = tiny_vlms.FAMILIES[name]
    vlm = TransformersVLM(str(tiny_vlms.build(name, tmp_path)), device="cpu", dtype="float32")
    with pytest.raises(ModelLoadError, match=family.refused) as info:
        vlm.load()
    assert "\n" not in str(info.value) and f"({name})" in str(info.value) and vlm.model is None


def test_the_graph_runs_show_search_tell_with_crops_and_option_likelihood(family_vlm, monkeypatch):
    vlm = family_vlm
    calls = _spy(vlm, monkeypatch)
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer(BOXES)},
                  config=AgentConfig(max_new_tokens=48, choice="likelihood"))
    events = list(agent.stream(_photo(), QUESTION, options=OPTIONS))
    answer = events[-1]["answer"]
    # SHOW: the reply is the JSON contract, parsed; its two targets were searched and found
    assert answer.parse_path == "json"
    assert [(f.target.name, f.status) for f in answer.findings] == [("the sign", "found"), ("the cup", "found")]
    # TELL: the photo and both crops went to the image processor in one call, and their image tokens to the model
    tell_images, tell_inputs, processed = next(call for call in calls if len(call[0]) == 3)
    assert [image.size for image in processed] == [image.size for image in tell_images]
    alone = [_image_tokens(vlm, vlm._encode([ChatMessage("user", [image, "x"])])) for image in tell_images]
    several = tiny_vlms.FAMILIES[vlm.model_type].several_images_tokens
    expected = several(vlm, len(alone)) if several else sum(alone)  # each image's own tokens, added up
    assert all(n > 0 for n in alone) and _image_tokens(vlm, tell_inputs) == expected
    # TELL's answer streamed through the graph, token by token, and is the answer
    tokens = [e["token"] for e in events if e.get("token") and e["node"] == "tell"]
    assert len(tokens) > 1 and "".join(tokens).strip() == tiny_vlms.REPLY
    # the options were scored by likelihood with the crops (the reply names none)
    assert answer.choice_path == "likelihood" and answer.choice in (0, 1)


def test_option_likelihood_is_finite_for_each_option(family_vlm):
    photo, crop = _photo(), _photo((48, 40))
    scores = family_vlm.score_options([photo, crop], QUESTION, ["red", "blue", "a green cup"])
    assert len(scores) == 3 and all(math.isfinite(s) and s < 0 for s in scores)
    assert len(set(scores)) == 3  # each option's own tokens were scored
    assert 0.0 < family_vlm.yes_probability(photo, "Is the sign red? Answer Yes or No.") < 1.0


def test_stream_pieces_join_to_generate(family_vlm):
    messages = [ChatMessage("user", [_photo(), QUESTION])]
    whole = family_vlm.generate(messages, max_new_tokens=48)
    *pieces, reply = list(family_vlm.stream(messages, max_new_tokens=48))
    assert whole.text == tiny_vlms.REPLY  # steered generation decodes to the exact JSON
    assert len(pieces) > 1 and "".join(pieces) == reply.text == whole.text and isinstance(reply, VLMReply)
    assert (reply.input_tokens, reply.output_tokens) == (whole.input_tokens, whole.output_tokens)


SMALL_CAP = 112 * 112


def test_a_large_photo_reaches_the_model_at_the_familys_own_budget(family_vlm):
    """A 4000x3000 photo goes to the family's processor, which sizes it by its own rule (smart resize, longest
    edge, a fixed square, tiles) rather than after one fixed 1-MP shrink; what the processor built is what
    `sent_image_size` says. `max_image_pixels` caps the families that size the image to the photo and leaves
    fixed and tiled ones to their processor; None is the processor's own budget."""
    family = tiny_vlms.FAMILIES[family_vlm.model_type]
    photo = _gradient((4000, 3000))
    sent = {}
    for cap in (None, SMALL_CAP, family_vlm.max_image_pixels):
        vlm = TransformersVLM(family_vlm.model_id, device="cpu", dtype="float32", max_image_pixels=cap)
        inputs = vlm._encode([ChatMessage("user", [photo, "x"])])  # the weights are shared (hub.shared)
        sent[cap] = vlm.sent_image_size(photo.size)
        assert family.produced_size(vlm, inputs) == sent[cap], f"max_image_pixels={cap}"
        assert sent[cap][0] * sent[cap][1] <= vlm.pixel_rule.budget()
    kind = family_vlm.pixel_rule.kind
    if kind in ("smart_resize", "longest_edge", "patch_budget"):  # sized to the photo's aspect
        assert all(abs(w / h - 4 / 3) < 0.2 for w, h in sent.values())
    if kind in ("smart_resize", "longest_edge"):  # ... and the cap binds
        assert sent[SMALL_CAP][0] * sent[SMALL_CAP][1] < sent[None][0] * sent[None][1]
    else:  # a fixed size, a patch budget or tiles: the processor's whatever the cap
        assert kind in ("fixed", "patch_budget", "tiles") and len(set(sent.values())) == 1
    assert 0.0 < family_vlm.yes_probability(photo, "Is it green?") < 1.0


def test_describe_names_the_family_and_its_budget(family_vlm, request):
    described = family_vlm.describe()
    assert described["model_type"] == request.node.callspec.params["family_vlm"] and described["box_format"] is None
    assert described["pixel_budget"] == family_vlm.pixel_rule.budget() > 0
    assert described["pixel_rule"].startswith(family_vlm.pixel_rule.kind)


def _grid(ip, out):
    _, h, w = (int(v) for v in out["image_grid_thw"][0])
    return w * ip.patch_size, h * ip.patch_size


def _tiles_of(tiles, tile: tuple[int, int]):
    return tiny_vlms.tile_layout(None, {"pixel_values": tiles}, tile, thumbnail=False)


#: image processor -> (what its output says the image became, (width, height)); each at its class defaults
PRODUCED = {
    "Qwen2VLImageProcessor": _grid,
    "Glm4vImageProcessor": _grid,
    "Glm46VImageProcessor": _grid,
    "PixtralImageProcessor": lambda ip, out: tuple(int(v) for v in out["image_sizes"][0].flip(0)),
    "SiglipImageProcessor": lambda ip, out: tuple(out["pixel_values"].shape[:-3:-1]),
    "CLIPImageProcessor": lambda ip, out: tuple(out["pixel_values"].shape[:-3:-1]),
    "Gemma3ImageProcessor": lambda ip, out: tuple(out["pixel_values"].shape[:-3:-1]),
    "GotOcr2ImageProcessor": lambda ip, out: tuple(out["pixel_values"].shape[:-3:-1]),  # no crop_to_patches alone
    "GotOcr2ImageProcessor:InternVL": lambda ip, out: _tiles_of(out["pixel_values"][:-1], (448, 448)),
    "Idefics3ImageProcessor": lambda ip, out: (out["cols"][0][0] * 364, out["rows"][0][0] * 364),
    "SmolVLMImageProcessor": lambda ip, out: (out["cols"][0][0] * 364, out["rows"][0][0] * 364),
    "LlavaOnevisionImageProcessor": lambda ip, out: _tiles_of(out["pixel_values"][0, 1:], (384, 384)),
    "LlavaNextImageProcessor": lambda ip, out: _tiles_of(out["pixel_values"][0, 1:], (224, 224)),  # crop_size
    "MiniCPMV4_6ImageProcessor": lambda ip, out: (
        out["grids"][0][1] * int(out["target_sizes"][1][1]) * ip.patch_size,
        out["grids"][0][0] * int(out["target_sizes"][1][0]) * ip.patch_size),
    "Molmo2ImageProcessor": lambda ip, out: tuple(int(v) for v in out["image_grids"][0][[3, 2]]),  # pooled
    "Lfm2VlImageProcessor": lambda ip, out: (int(out["image_cols"][0]) * ip.tile_size,
                                             int(out["image_rows"][0]) * ip.tile_size),
    "Gemma4ImageProcessor": lambda ip, out: tuple(
        (int(v) + 1) * ip.patch_size for v in out["image_position_ids"][0].amax(0)),
}


#: InternVL 3's image settings: 448-px tiles, at most 12 (its processor turns crop_to_patches on)
INTERNVL_3 = {"size": {"height": 448, "width": 448}, "crop_to_patches": True, "min_patches": 1, "max_patches": 12}


@pytest.mark.parametrize("name", sorted(PRODUCED))
def test_each_rule_holds_at_the_image_processors_own_defaults(name):
    """The rules at the budgets the families ship (Qwen's 1-MP class default, InternVL's 384-px tiles, LLaVA's
    pinpoints up to 2304 px, SmolVLM's 1456-px longest edge ...), not only at the tiny checkpoints' sizes: a
    4000x3000 photo through the bare image processor is what the rule says, and within its budget."""
    import transformers

    from lookcloser.vlm.families import pixel_rule

    cls, _, checkpoint = name.partition(":")
    settings = INTERNVL_3 if checkpoint == "InternVL" else {}
    image_processor = getattr(transformers, cls)(**settings)
    rule = pixel_rule(image_processor, None)
    assert rule.kind != "unknown", name
    kwargs = {"return_row_col_info": True} if cls.startswith(("Idefics3", "SmolVLM", "Lfm2")) else {}
    out = image_processor([_gradient((4000, 3000))], return_tensors="pt", **kwargs)
    sent = rule.sent_size(4000, 3000)
    if cls == "Molmo2ImageProcessor":  # its output counts the canvas in pooled patches, rounded up
        pool = image_processor.patch_size * image_processor.pooling_size[0]
        assert PRODUCED[name](image_processor, out) == tuple(math.ceil(side / pool) for side in sent)
    else:
        assert tuple(int(v) for v in PRODUCED[name](image_processor, out)) == sent
    assert sent[0] * sent[1] <= rule.budget()
