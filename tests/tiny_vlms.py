"""Tiny random-weight checkpoints of each open VLM family transformers ships, built on disk for tests.

There is no hub access on the build machines, so no real VLM can be downloaded. Each builder here writes a
2-layer model of one family (`<Family>Config` with small sizes), the family's real processor class with its
real image processor (small image sizes where a test is not about the pixel budget) and a tokenizer built on
the spot: one byte-level BPE trained once with the `tokenizers` library, wrapped per family with the special
tokens that family's processor expects, and a minimal chat template of the family's shape. Loading the
directory with `AutoProcessor` + `AutoModelForImageTextToText` takes the exact path a real checkpoint takes;
only the weights are random.

Random weights reply gibberish, which SHOW's parser reads as an answer, so the graph would never search. To
run the whole graph (SHOW -> SEARCH -> TELL with crops) each checkpoint's `generation_config` carries a
`sequence_bias` (transformers' own `SequenceBiasLogitsProcessor`) that makes greedy decoding spell `REPLY`,
a SHOW reply naming two targets, and then the end-of-turn token. Only generation is steered: forward passes
(`yes_probability`, `score_options`) see the model's own logits, and the image still passes through the
vision tower and into the language model on every call.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: What every tiny checkpoint replies: SHOW's JSON contract, naming two targets (two crops for TELL).
REPLY = json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "object"},
                                                {"name": "the cup", "kind": "object"}]})

_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
_CORPUS = [
    REPLY, "Yes", "No", "yes", "no", " Yes", " No", "A B C D (A) (B) red blue green",
    "What colour is the sign? The sign is red. Is there a dog in the image? Yes, there is a dog.",
    "system user assistant model You are a helpful assistant.",
]


@functools.lru_cache(maxsize=1)
def _bpe_json() -> str:
    """One byte-level BPE (trained once per process) on the reply, the prompts and a few answers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    prompts = [p.read_text() for p in sorted(_PROMPTS.glob("*.txt"))]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator([REPLY] * 8 + prompts * 2 + _CORPUS * 4, trainer=trainer)
    return tokenizer.to_str()


def tokenizer(special: list[str], *, eos: str, pad: str, bos: str | None = None,
              named: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """The shared BPE with `special` added as special tokens (ids after the trained vocabulary); `named` become
    tokenizer attributes (`tokenizer.image_token`, `tokenizer.boi_token` ...) that some processors read."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokens = list(dict.fromkeys([*special, eos, pad, *([bos] if bos else []), *(named or {}).values()]))
    extra: Any = dict(named) if named else [t for t in tokens if t not in (eos, pad, bos)]
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_bpe_json()), eos_token=eos, pad_token=pad,
                                  bos_token=bos, extra_special_tokens=extra, **kwargs)
    missing = [t for t in tokens if t not in tok.get_vocab()]
    if missing:
        tok.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
    return tok


def steering(tok: Any, eos_id: int, reply: str = REPLY, bias: float = 40.0) -> list[list[Any]]:
    """`sequence_bias` entries that make greedy decoding write `reply` then `eos_id`: each reply token is biased
    after the whole reply prefix before it (a repeated phrase, `{"name": "the `, needs the whole prefix to say
    which target comes next). Checked by running transformers' SequenceBiasLogitsProcessor on flat logits, so an
    ambiguity fails here, not as a confusing test failure."""
    import torch
    from transformers.generation.logits_process import SequenceBiasLogitsProcessor

    ids = [*tok.encode(reply, add_special_tokens=False), eos_id]
    entries: dict[tuple[int, ...], float] = {}
    for k, token in enumerate(ids):
        entries[tuple(ids[:k + 1])] = bias * (k + 1)
    steer = [[list(key), value] for key, value in entries.items()]
    processor = SequenceBiasLogitsProcessor(steer)
    vocab = max(max(key) for key in entries) + 1
    context = torch.tensor([[eos_id]])
    for expected in ids:
        scores = processor(context, torch.zeros(1, vocab))
        top2 = scores[0].topk(2)
        if int(top2.indices[0]) != expected or float(top2.values[0] - top2.values[1]) < bias / 2:
            raise RuntimeError(f"the steering for {reply!r} is ambiguous at token {expected}")
        context = torch.cat([context, torch.tensor([[expected]])], dim=1)
    return steer


def finish(model: Any, processor: Any, out: Path, *, eos: str, pad: str) -> Path:
    """Set the generation config (end-of-turn, pad, the steering) and save model and processor to `out`."""
    tok = processor.tokenizer
    eos_id, pad_id = tok.convert_tokens_to_ids(eos), tok.convert_tokens_to_ids(pad)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    model.generation_config.sequence_bias = steering(tok, eos_id)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _seeded(seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------- families
@dataclass(frozen=True)
class Family:
    """One family: its model_type, its builder (out dir -> checkpoint dir), or why it cannot be built here."""

    model_type: str
    build: Callable[[Path], Path] | None = None
    #: (vlm, encoded inputs of one image) -> the (width, height) the processor sized that image to
    produced_size: Callable[[Any, Any], tuple[int, int]] | None = None
    skip: str | None = None
    #: the family builds and loads, but TransformersVLM refuses it: the start of its one-line error
    refused: str | None = None
    #: (vlm, n) -> image tokens of n images in one prompt, for a family that sizes them apart from one alone
    several_images_tokens: Callable[[Any, int], int] | None = None


QWEN_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]

# ChatML with Qwen's vision markers: an image part is <|vision_start|><|image_pad|><|vision_end|>, which the
# processor expands to one pad per merged patch (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5).
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

def _qwen_ids(tok: Any) -> dict[str, int]:
    return {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }


def _qwen_family(out: Path, names: tuple[str, str, str], text: dict[str, Any], vision: dict[str, Any],
                 patch: int, **extra: Any) -> Path:
    """A Qwen-style family: (config, model, processor) class names of `transformers`, ChatML, Qwen2-VL's image
    processor with the family's patch size and a small pixel range."""
    import transformers
    from transformers import Qwen2VLImageProcessor

    config_cls, model_cls, processor_cls = (getattr(transformers, n) for n in names)
    tok = tokenizer(QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {"eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
           "pad_token_id": tok.convert_tokens_to_ids("<|endoftext|>"), "bos_token_id": None}
    config = config_cls(text_config={"vocab_size": len(tok), "num_hidden_layers": 2, "max_position_embeddings": 4096,
                                     **ids, **text},
                        vision_config={"depth": 2, "patch_size": patch, "spatial_merge_size": 2,
                                       "temporal_patch_size": 2, **vision},
                        **_qwen_ids(tok), **extra)
    _seeded()
    model = model_cls(config).eval()
    factor = patch * 2
    size = {"shortest_edge": factor * factor * 4, "longest_edge": factor * factor * 64}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=patch)
    video_cls = getattr(transformers, processor_cls.__name__.replace("Processor", "VideoProcessor"), None)
    parts: dict[str, Any] = {"image_processor": image_processor, "tokenizer": tok, "chat_template": QWEN_TEMPLATE}
    if "video_processor" in processor_cls.get_attributes():
        video = video_cls or transformers.Qwen2VLVideoProcessor
        parts["video_processor"] = video(size=size, patch_size=patch)
    return finish(model, processor_cls(**parts), out, eos="<|im_end|>", pad="<|endoftext|>")


_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2}


def build_qwen2_vl(out: Path) -> Path:
    return _qwen_family(out, ("Qwen2VLConfig", "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor"),
                        {**_TEXT, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                      "mrope_section": [2, 3, 3]}},
                        {"embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2}, 14)


def build_qwen2_5_vl(out: Path) -> Path:
    return _qwen_family(out, ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor"),
                        {**_TEXT, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                      "mrope_section": [2, 3, 3]}},
                        {"hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                         "window_size": 56, "fullatt_block_indexes": [1]}, 14)


def build_qwen3_vl(out: Path) -> Path:
    return _qwen_family(out, ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor"),
                        {**_TEXT, "head_dim": 16, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                                     "mrope_section": [2, 3, 3],
                                                                     "mrope_interleaved": True}},
                        {"hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                         "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}, 16)


def build_qwen3_5(out: Path) -> Path:
    return _qwen_family(out, ("Qwen3_5Config", "Qwen3_5ForConditionalGeneration", "Qwen3VLProcessor"),
                        {**_TEXT, "head_dim": 16, "layer_types": ["linear_attention", "full_attention"],
                         "linear_key_head_dim": 16, "linear_value_head_dim": 16, "linear_num_key_heads": 2,
                         "linear_num_value_heads": 4,
                         "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                             "mrope_section": [2, 3, 3], "mrope_interleaved": True,
                                             "partial_rotary_factor": 1.0}},
                        {"hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                         "num_position_embeddings": 64}, 16)


GLM_TOKENS = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|begin_of_image|>",
              "<|end_of_image|>", "<|image|>", "<|begin_of_video|>", "<|end_of_video|>", "<|video|>"]

# GLM-4.1V's prompt shape (its integration test's input ids): [gMASK]<sop><|user|>\n<|begin_of_image|><|image|>
# <|end_of_image|>text<|assistant|>\n; the reply ends where the next <|user|> would start.
GLM_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _glm_family(out: Path, prefix: str) -> Path:
    """GLM-4.1V (`Glm4v*`) and GLM-4.6V (`Glm46V*`, GLM-4.1V's vision with a GLM-4 text model)."""
    import transformers

    tok = tokenizer(GLM_TOKENS, eos="<|user|>", pad="<|endoftext|>")
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in [
        ("image_token_id", "<|image|>"), ("video_token_id", "<|video|>"),
        ("image_start_token_id", "<|begin_of_image|>"), ("image_end_token_id", "<|end_of_image|>"),
        ("video_start_token_id", "<|begin_of_video|>"), ("video_end_token_id", "<|end_of_video|>")]}
    text = {"vocab_size": len(tok), "num_hidden_layers": 2, "max_position_embeddings": 4096, **_TEXT,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2]},
            "eos_token_id": tok.convert_tokens_to_ids("<|user|>"),
            "pad_token_id": tok.convert_tokens_to_ids("<|endoftext|>")}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "image_size": 112}
    config = getattr(transformers, f"{prefix}Config")(text_config=text, vision_config=vision, **ids)
    _seeded()
    model = getattr(transformers, f"{prefix}ForConditionalGeneration")(config).eval()
    size = {"shortest_edge": 2 * 28 * 28 * 4, "longest_edge": 2 * 28 * 28 * 64}  # GLM counts 2 frames per image
    image_processor = getattr(transformers, f"{prefix}ImageProcessor")(size=size)
    processor = getattr(transformers, f"{prefix}Processor")(
        image_processor=image_processor, tokenizer=tok, chat_template=GLM_TEMPLATE,
        video_processor=getattr(transformers, f"{prefix}VideoProcessor", transformers.Glm4vVideoProcessor)(size=size))
    return finish(model, processor, out, eos="<|user|>", pad="<|endoftext|>")


def build_glm4v(out: Path) -> Path:
    return _glm_family(out, "Glm4v")


def build_glm46v(out: Path) -> Path:
    return _glm_family(out, "Glm46V")


MISTRAL_TOKENS = ["<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]",
                  "[IMG_BREAK]", "[IMG_END]"]

# Mistral's instruct shape: <s>[INST]...[/INST]reply</s>; an image part is [IMG], which PixtralProcessor expands to
# rows of [IMG] closed by [IMG_BREAK] and a final [IMG_END].
MISTRAL_TEMPLATE = (
    "<s>{% for message in messages %}"
    "{% if message['role'] == 'system' %}[SYSTEM_PROMPT]{% elif message['role'] == 'user' %}[INST]{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}[IMG]{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'system' %}[/SYSTEM_PROMPT]{% elif message['role'] == 'user' %}[/INST]"
    "{% else %}</s>{% endif %}{% endfor %}"
)


def build_mistral3(out: Path) -> Path:
    """Mistral 3 (Mistral-Small-3.1): Pixtral vision (14-px patches, 2x2 merge), PixtralProcessor's longest edge."""
    from transformers import (Mistral3Config, Mistral3ForConditionalGeneration, PixtralImageProcessor,
                              PixtralProcessor)

    tok = tokenizer(MISTRAL_TOKENS, eos="</s>", pad="<pad>", bos="<s>")
    config = Mistral3Config(
        text_config={"model_type": "mistral", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT,
                     "max_position_embeddings": 4096, "bos_token_id": tok.bos_token_id,
                     "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        vision_config={"model_type": "pixtral", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 224, "patch_size": 14},
        image_token_index=tok.convert_tokens_to_ids("[IMG]"), spatial_merge_size=2)
    _seeded()
    model = Mistral3ForConditionalGeneration(config).eval()
    image_processor = PixtralImageProcessor(size={"longest_edge": 224}, patch_size={"height": 14, "width": 14})
    processor = PixtralProcessor(image_processor=image_processor, tokenizer=tok, patch_size=14,
                                 spatial_merge_size=2, chat_template=MISTRAL_TEMPLATE)
    return finish(model, processor, out, eos="</s>", pad="<pad>")


GEMMA_TOKENS = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>",
                "<image_soft_token>"]

# Gemma's turns: <bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n; an image part is
# <start_of_image>, which Gemma3Processor expands to \n\n<start_of_image> + image_seq_length soft tokens +
# <end_of_image>\n\n. Gemma has no system role: a system message is a user turn's preamble.
GEMMA_TEMPLATE = (
    "<bos>{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<start_of_image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_GEMMA_NAMED = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}


def build_gemma3(out: Path) -> Path:
    """Gemma 3: SigLIP at a fixed square (56 px here, 896 in the checkpoints), pooled to mm_tokens_per_image."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor

    tok = tokenizer(GEMMA_TOKENS, eos="<end_of_turn>", pad="<pad>", bos="<bos>", named=_GEMMA_NAMED)
    config = Gemma3Config(
        text_config={"vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT, "head_dim": 16,
                     "query_pre_attn_scalar": 16, "sliding_window": 64, "max_position_embeddings": 4096,
                     "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 56, "patch_size": 14},
        mm_tokens_per_image=4, boi_token_index=tok.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tok.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tok.convert_tokens_to_ids("<image_soft_token>"))
    _seeded()
    model = Gemma3ForConditionalGeneration(config).eval()
    processor = Gemma3Processor(image_processor=Gemma3ImageProcessor(size={"height": 56, "width": 56}),
                                tokenizer=tok, chat_template=GEMMA_TEMPLATE, image_seq_length=4)
    return finish(model, processor, out, eos="<end_of_turn>", pad="<pad>")


IDEFICS_TOKENS = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                  "<global-img>", *[f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]]

# Idefics3 / SmolVLM turns: "User:<image>text<end_of_utterance>\nAssistant:" (SmolVLM opens with <|im_start|>).
# The processor expands <image> to <fake_token_around_image><row_i_col_j> + image_seq_len <image> per tile, then
# <global-img> and the global view's tokens.
IDEFICS_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _idefics_family(out: Path, prefix: str) -> Path:
    """Idefics3 and SmolVLM: tiles of 56 px (364/384/512 in the checkpoints) from a 112-px longest edge, each tile
    14-px patches pixel-shuffled by 2 into 4 tokens."""
    import transformers

    tok = tokenizer(IDEFICS_TOKENS, eos="<end_of_utterance>", pad="<|endoftext|>")
    config = getattr(transformers, f"{prefix}Config")(
        text_config={"model_type": "llama", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT,
                     "max_position_embeddings": 4096, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "bos_token_id": None},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 56, "patch_size": 14},
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=2, pad_token_id=tok.pad_token_id)
    _seeded()
    model = getattr(transformers, f"{prefix}ForConditionalGeneration")(config).eval()
    image_processor = getattr(transformers, f"{prefix}ImageProcessor")(
        size={"longest_edge": 112}, max_image_size={"longest_edge": 56})
    parts: dict[str, Any] = {"image_processor": image_processor, "tokenizer": tok, "chat_template": IDEFICS_TEMPLATE,
                             "image_seq_len": 4}
    if prefix == "SmolVLM":
        parts["video_processor"] = transformers.SmolVLMVideoProcessor()
    processor = getattr(transformers, f"{prefix}Processor")(**parts)
    return finish(model, processor, out, eos="<end_of_utterance>", pad="<|endoftext|>")


def build_idefics3(out: Path) -> Path:
    return _idefics_family(out, "Idefics3")


def build_smolvlm(out: Path) -> Path:
    return _idefics_family(out, "SmolVLM")


def tiles_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """Idefics3 / SmolVLM: the tiles (all but the last, global view) laid back out as rows x cols of tiles."""
    image_processor = vlm.processor.image_processor
    tile = int(image_processor.max_image_size["longest_edge"])
    count = int(inputs["pixel_values"].shape[1]) - 1
    if count <= 0:
        return tile, tile
    # the processor puts <row_i_col_j> before each tile: the last one names the grid
    names = vlm.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    rows, cols = max((int(n[5:-1].split("_col_")[0]), int(n[:-1].split("_col_")[1]))
                     for n in names if n.startswith("<row_"))
    assert rows * cols == count, (rows, cols, count)
    return cols * tile, rows * tile


INTERNVL_TOKENS = [*QWEN_TOKENS, "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
_INTERNVL_NAMED = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                   "video_token": "<video>"}
# InternVL 3 (a Qwen2.5 language model): ChatML, an image part is <IMG_CONTEXT>, expanded by the processor to
# <img> + image_seq_length <IMG_CONTEXT> per tile + </img>.
INTERNVL_TEMPLATE = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<IMG_CONTEXT>\n")


def build_internvl(out: Path) -> Path:
    """InternVL 3: InternViT tiles of 56 px (448 in the checkpoints), at most 4 (12), pixel-shuffled to 4 tokens."""
    from transformers import (GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration,
                              InternVLProcessor, InternVLVideoProcessor)

    tok = tokenizer(INTERNVL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", named=_INTERNVL_NAMED)
    config = InternVLConfig(
        text_config={"model_type": "qwen2", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT,
                     "max_position_embeddings": 4096, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "bos_token_id": None},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": [56, 56], "patch_size": [14, 14]},
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=4, downsample_ratio=0.5)
    _seeded()
    model = InternVLForConditionalGeneration(config).eval()
    image_processor = GotOcr2ImageProcessor(size={"height": 56, "width": 56}, crop_to_patches=True, min_patches=1,
                                            max_patches=4)
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tok, image_seq_length=4,
                                  video_processor=InternVLVideoProcessor(size={"height": 56, "width": 56}),
                                  chat_template=INTERNVL_TEMPLATE)
    return finish(model, processor, out, eos="<|im_end|>", pad="<|endoftext|>")


def tile_layout(vlm: Any, inputs: Any, tile: tuple[int, int], thumbnail: bool) -> tuple[int, int]:
    """(width, height) of a tiled image, read from the tiles themselves: the test photo's red rises with x, its
    green with y and its blue is full, so the tiles' distinct mean reds count the columns and their mean greens the
    rows (over the photo's pixels: padding is not full blue)."""
    tiles = inputs["pixel_values"].reshape(-1, *inputs["pixel_values"].shape[-3:]).float()
    if thumbnail and tiles.shape[0] > 1:
        tiles = tiles[:-1]
    photo = tiles[:, 2] >= tiles[:, 2].max() - 0.05
    cols, rows = (_clusters([float(t[channel][m].mean()) for t, m in zip(tiles, photo)]) for channel in (0, 1))
    assert cols * rows == tiles.shape[0], (cols, rows, tiles.shape[0])
    return cols * tile[0], rows * tile[1]


def _clusters(values: list[float], gap: float = 0.1) -> int:
    """How many groups `values` fall in, a group ending where the next value is more than `gap` away."""
    ordered = sorted(values)
    return 1 + sum(b - a > gap for a, b in zip(ordered, ordered[1:]))


def internvl_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    size = vlm.processor.image_processor.size
    return tile_layout(vlm, inputs, (int(size["width"]), int(size["height"])), thumbnail=True)


LLAVA_PINPOINTS = [[56, 56], [56, 112], [112, 56], [112, 112], [112, 168], [168, 112]]


def build_llava_onevision(out: Path) -> Path:
    """LLaVA-OneVision: SigLIP tiles of 56 px (384 in the checkpoints) on anyres pinpoints, a Qwen2 language model."""
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor)

    tok = tokenizer([*QWEN_TOKENS, "<image>", "<video>"], eos="<|im_end|>", pad="<|endoftext|>")
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT,
                     "max_position_embeddings": 4096, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "bos_token_id": None},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 56, "patch_size": 14},
        image_token_index=tok.convert_tokens_to_ids("<image>"), video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=LLAVA_PINPOINTS, vision_feature_select_strategy="full")
    _seeded()
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    size = {"height": 56, "width": 56}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=LLAVA_PINPOINTS),
        tokenizer=tok, video_processor=LlavaOnevisionVideoProcessor(size=size), num_image_tokens=16,
        vision_feature_select_strategy="full",
        chat_template=QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n"))
    return finish(model, processor, out, eos="<|im_end|>", pad="<|endoftext|>")


def anyres_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """LLaVA-OneVision: the tiles after the base view, laid out by tile_layout."""
    tile = int(vlm.processor.image_processor.size["height"])
    tiles = {"pixel_values": inputs["pixel_values"][0, 1:]}
    return tile_layout(vlm, tiles, (tile, tile), thumbnail=False)


MINICPM_NAMED = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<image>",
                 "image_end_token": "</image>", "slice_start_token": "<slice>", "slice_end_token": "</slice>",
                 "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>"}
# MiniCPM-V 4.6 (a Qwen3.5 language model): ChatML, an image part is the image token, which the processor
# expands to <image_id>N</image_id><image> + the thumbnail's tokens + </image> and rows of <slice>...</slice>.
MINICPM_TEMPLATE = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>\n")


def _minicpm_family(out: Path, prefix: str) -> Path:
    """MiniCPM-V 4.6 / 4.7: a thumbnail of at most scale_resolution^2 px and up to max_slice_nums slices of it,
    14-px patches merged 4x4 (16x): 112 px and 4 slices here, 448 px and 9 in the checkpoints."""
    import transformers

    tok = tokenizer(QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", named=MINICPM_NAMED)
    config = getattr(transformers, f"{prefix}Config")(
        text_config={"model_type": "qwen3_5_text", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT,
                     "head_dim": 16, "layer_types": ["linear_attention", "full_attention"],
                     "linear_key_head_dim": 16, "linear_value_head_dim": 16, "linear_num_key_heads": 2,
                     "linear_num_value_heads": 4, "max_position_embeddings": 4096,
                     "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": None},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 112, "patch_size": 14, "insert_layer_id": 0},
        insert_layer_id=0, image_size=112, image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"))
    _seeded()
    model = getattr(transformers, f"{prefix}ForConditionalGeneration")(config).eval()
    settings = {"scale_resolution": 112, "max_slice_nums": 4, "patch_size": 14}
    processor = getattr(transformers, f"{prefix}Processor")(
        image_processor=transformers.MiniCPMV4_6ImageProcessor(**settings),
        video_processor=transformers.MiniCPMV4_6VideoProcessor(**settings), tokenizer=tok,
        chat_template=MINICPM_TEMPLATE)
    return finish(model, processor, out, eos="<|im_end|>", pad="<|endoftext|>")


def build_minicpmv4_6(out: Path) -> Path:
    return _minicpm_family(out, "MiniCPMV4_6")


def build_minicpmv4_7(out: Path) -> Path:
    return _minicpm_family(out, "MiniCPMV4_7")


def slices_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """MiniCPM-V: one slice's patch grid (target_sizes after the thumbnail's) times the grid of slices, in px; the
    thumbnail's when the photo was not sliced."""
    patch = int(vlm.processor.image_processor.patch_size)
    sizes = inputs["target_sizes"].tolist()
    if len(sizes) == 1:
        h, w = sizes[0]
        return w * patch, h * patch
    # the processor writes each row of slices as <slice>..</slice><slice>..</slice>, rows apart on new lines
    ids = inputs["input_ids"][0].tolist()
    start, end = (vlm.tokenizer.convert_tokens_to_ids(t) for t in ("<slice>", "</slice>"))
    rows = sum(1 for i, t in enumerate(ids) if t == start and ids[i - 1] != end)
    cols = (len(sizes) - 1) // rows
    assert rows * cols == len(sizes) - 1
    h, w = sizes[1]
    return cols * w * patch, rows * h * patch


MOLMO_TOKENS = [*QWEN_TOKENS, "<|image|>", "<|video|>", "<im_patch>", "<im_col>", "<im_start>", "<low_res_im_start>",
                "<frame_start>", "<im_end>", "<frame_end>", "<im_low>"]
# Molmo 2 (a Qwen3 language model): ChatML, an image part is <|image|>, expanded by the processor to a
# <low_res_im_start> view and an <im_start> view of <im_patch> rows closed by <im_col>.
MOLMO_TEMPLATE = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<|image|>")


def build_molmo2(out: Path) -> Path:
    """Molmo 2: crops of 168 px (378 in the checkpoints) overlapping by 4 patches, at most 4 (8), 2x2 pooling."""
    from transformers import (Molmo2Config, Molmo2ForConditionalGeneration, Molmo2ImageProcessor, Molmo2Processor,
                              Molmo2VideoProcessor)

    tok = tokenizer(MOLMO_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in [
        ("image_start_token_id", "<im_start>"), ("low_res_image_start_token_id", "<low_res_im_start>"),
        ("image_end_token_id", "<im_end>"), ("image_patch_id", "<im_patch>"),
        ("frame_start_token_id", "<frame_start>"), ("frame_end_token_id", "<frame_end>")]}
    config = Molmo2Config(
        text_config={"vocab_size": len(tok), "additional_vocab_size": 8, "num_hidden_layers": 2, **_TEXT,
                     "head_dim": 16, "max_position_embeddings": 4096, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "bos_token_id": None},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "num_key_value_heads": 2, "head_dim": 16, "image_size": [168, 168], "patch_size": 14,
                       "num_position_embeddings": 144},
        adapter_config={"vision_feature_layer": [-1], "hidden_size": 32, "num_attention_heads": 2,
                        "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 64, "text_hidden_size": 64},
        **ids)
    _seeded()
    model = Molmo2ForConditionalGeneration(config).eval()
    settings = {"size": {"height": 168, "width": 168}, "patch_size": 14, "pooling_size": [2, 2]}
    processor = Molmo2Processor(image_processor=Molmo2ImageProcessor(max_crops=4, **settings),
                                video_processor=Molmo2VideoProcessor(**settings), tokenizer=tok,
                                chat_template=MOLMO_TEMPLATE)
    return finish(model, processor, out, eos="<|im_end|>", pad="<|endoftext|>")


def molmo_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """Molmo 2: the high-resolution view's pooled patch grid (image_grids) times patch x pooling, in px."""
    ip = vlm.processor.image_processor
    _, _, rows, cols = (int(v) for v in inputs["image_grids"][0])
    return cols * int(ip.patch_size) * int(ip.pooling_size[1]), rows * int(ip.patch_size) * int(ip.pooling_size[0])


def build_paligemma(out: Path) -> Path:
    """PaliGemma 2, as its checkpoints ship: SigLIP at a fixed 56 px (224/448/896), a Gemma 2 language model, a
    task-prompt processor (`answer en ...`, `detect ...`) and no chat template."""
    from transformers import (PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessor)

    tok = tokenizer(["<pad>", "<eos>", "<bos>", "<image>"], eos="<eos>", pad="<pad>", bos="<bos>",
                    named={"image_token": "<image>"})
    image_processor = SiglipImageProcessor(size={"height": 56, "width": 56})
    image_processor.image_seq_length = 16
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)  # adds <locNNNN>, <segNNN>
    config = PaliGemmaConfig(
        text_config={"model_type": "gemma2", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT, "head_dim": 16,
                     "query_pre_attn_scalar": 16, "sliding_window": 64, "max_position_embeddings": 4096,
                     "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 56, "patch_size": 14,
                       "projection_dim": 64},
        image_token_index=tok.convert_tokens_to_ids("<image>"), projection_dim=64, hidden_size=64,
        vocab_size=len(tok))
    _seeded()
    model = PaliGemmaForConditionalGeneration(config).eval()
    return finish(model, processor, out, eos="<eos>", pad="<pad>")


def build_florence2(out: Path) -> Path:
    """Florence-2, as its checkpoints ship: a DaViT vision tower at a fixed 64 px (768), a BART encoder-decoder,
    task prompts (<OD>, <CAPTION> ...) and no chat template."""
    from transformers import CLIPImageProcessor, Florence2Config, Florence2ForConditionalGeneration, Florence2Processor

    tok = tokenizer(["<pad>", "</s>", "<s>", "<image>"], eos="</s>", pad="<pad>", bos="<s>",
                    named={"image_token": "<image>"})
    image_processor = CLIPImageProcessor(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64},
                                         do_center_crop=False)
    image_processor.image_seq_length = 4
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tok)
    config = Florence2Config(
        text_config={"model_type": "bart", "vocab_size": len(tok), "d_model": 64, "encoder_layers": 1,
                     "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
                     "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 512,
                     "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "decoder_start_token_id": tok.eos_token_id},
        vision_config={"depths": [1, 1, 1, 1], "embed_dim": [16, 16, 32, 32], "num_heads": [2, 2, 2, 2],
                       "num_groups": [2, 2, 2, 2], "window_size": 2, "projection_dim": 64,
                       "max_position_embeddings": 8},
        image_token_id=tok.convert_tokens_to_ids("<image>"))
    _seeded()
    model = Florence2ForConditionalGeneration(config).eval()
    return finish(model, processor, out, eos="</s>", pad="<pad>")


LFM_TOKENS = [*QWEN_TOKENS, "<|startoftext|>", "<image>", "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>",
              *[f"<|img_row_{i}_col_{j}|>" for i in range(1, 5) for j in range(1, 5)]]


def build_lfm2_vl(out: Path) -> Path:
    """LFM2-VL: SigLIP2 (NaFlex) on a smart-resized view up to 16 tokens, or, for a larger photo, 2..4 tiles of
    64 px (512 in the checkpoints, up to 10) and a thumbnail; an LFM2 (conv + attention) language model."""
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration, Lfm2VlImageProcessor, Lfm2VlProcessor

    tok = tokenizer(LFM_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", bos="<|startoftext|>")
    config = Lfm2VlConfig(
        text_config={"model_type": "lfm2", "vocab_size": len(tok), "num_hidden_layers": 2, **_TEXT,
                     "layer_types": ["conv", "full_attention"], "block_multiple_of": 16,
                     "max_position_embeddings": 4096, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id},
        vision_config={"model_type": "siglip2_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 16, "num_patches": 64},
        image_token_id=tok.convert_tokens_to_ids("<image>"), projector_hidden_size=64, downsample_factor=2)
    _seeded()
    model = Lfm2VlForConditionalGeneration(config).eval()
    image_processor = Lfm2VlImageProcessor(tile_size=64, size={"height": 64, "width": 64}, encoder_patch_size=16,
                                           min_image_tokens=4, max_image_tokens=16, min_tiles=2, max_tiles=4)
    template = "<|startoftext|>" + QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>")
    processor = Lfm2VlProcessor(image_processor=image_processor, tokenizer=tok, chat_template=template)
    return finish(model, processor, out, eos="<|im_end|>", pad="<|endoftext|>")


def lfm2_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """LFM2-VL: the last <|img_row_R_col_C|> names the tile grid; one view: its spatial shape in patches."""
    ip = vlm.processor.image_processor
    names = vlm.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    grid = [tuple(int(v) for v in n[10:-2].split("_col_")) for n in names if n.startswith("<|img_row_")]
    if grid:
        rows, cols = max(grid)
        return cols * int(ip.tile_size), rows * int(ip.tile_size)
    h, w = (int(v) for v in inputs["spatial_shapes"][0])
    return w * int(ip.encoder_patch_size), h * int(ip.encoder_patch_size)


# Gemma 4's processor finds images by the soft token itself and wraps each in <start_of_image>..<end_of_image>.
GEMMA4_TEMPLATE = GEMMA_TEMPLATE.replace("{% if part['type'] == 'image' %}<start_of_image>",
                                         "{% if part['type'] == 'image' %}<image_soft_token>")


def build_gemma4(out: Path) -> Path:
    """Gemma 4: its vision tower takes the photo resized, aspect kept, to a patch budget (max_soft_tokens x 3x3
    pooled 16-px patches: 70 soft tokens here, 280 by default), padded patches masked; Gemma-3-shaped turns."""
    from transformers import (Gemma4AudioFeatureExtractor, Gemma4Config, Gemma4ForConditionalGeneration,
                              Gemma4ImageProcessor, Gemma4Processor, Gemma4VideoProcessor)

    # the processor asks for the audio tokens even when no audio comes (as its checkpoints' tokenizers have them)
    named = {**_GEMMA_NAMED, "audio_token": "<audio_soft_token>", "boa_token": "<start_of_audio>",
             "eoa_token": "<end_of_audio>"}
    tok = tokenizer(GEMMA_TOKENS, eos="<end_of_turn>", pad="<pad>", bos="<bos>", named=named)
    processor = Gemma4Processor(feature_extractor=Gemma4AudioFeatureExtractor(),
                                image_processor=Gemma4ImageProcessor(max_soft_tokens=70), tokenizer=tok,
                                video_processor=Gemma4VideoProcessor(max_soft_tokens=70),
                                chat_template=GEMMA4_TEMPLATE, image_seq_length=70)  # adds <|video|>
    config = Gemma4Config(
        text_config={"vocab_size": len(tok), "vocab_size_per_layer_input": len(tok), "hidden_size_per_layer_input": 8,
                     "num_hidden_layers": 2, **_TEXT, "head_dim": 16, "global_head_dim": 16,
                     "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 64,
                     "max_position_embeddings": 4096, "bos_token_id": tok.bos_token_id,
                     "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "num_key_value_heads": 2, "head_dim": 16, "patch_size": 16, "pooling_kernel_size": 3,
                       "position_embedding_size": 256},
        audio_config=None,
        boi_token_id=tok.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_id=tok.convert_tokens_to_ids("<end_of_image>"),
        image_token_id=tok.convert_tokens_to_ids("<image_soft_token>"),
        video_token_id=tok.convert_tokens_to_ids("<|video|>"))
    _seeded()
    model = Gemma4ForConditionalGeneration(config).eval()
    return finish(model, processor, out, eos="<end_of_turn>", pad="<pad>")


def soft_token_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """Gemma 4: the real (unpadded) patches' positions give the resized image's patch grid."""
    positions = inputs["image_position_ids"][0]
    real = positions[(positions >= 0).all(-1)]
    patch = int(vlm.processor.image_processor.patch_size)
    return (int(real[:, 0].max()) + 1) * patch, (int(real[:, 1].max()) + 1) * patch


def pixel_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """Fixed-size families: the pixel tensor's own height and width."""
    h, w = inputs["pixel_values"].shape[-2:]
    return int(w), int(h)


def image_sizes(vlm: Any, inputs: Any) -> tuple[int, int]:
    """Pixtral / LLaVA-style: the processor's `image_sizes` (height, width) of the resized image."""
    h, w = (int(v) for v in inputs["image_sizes"][0])
    return w, h


def grid_size(vlm: Any, inputs: Any) -> tuple[int, int]:
    """Qwen-style: the image grid (patches) times the patch size."""
    _, h, w = (int(v) for v in inputs["image_grid_thw"][0])
    patch = int(vlm.processor.image_processor.patch_size)
    return w * patch, h * patch


FAMILIES: dict[str, Family] = {f.model_type: f for f in [
    Family("qwen2_vl", build_qwen2_vl, grid_size),
    Family("qwen2_5_vl", build_qwen2_5_vl, grid_size),
    Family("qwen3_vl", build_qwen3_vl, grid_size),
    Family("qwen3_5", build_qwen3_5, grid_size),
    Family("glm4v", build_glm4v, grid_size),
    Family("glm46v", build_glm46v, grid_size),
    Family("mistral3", build_mistral3, image_sizes),
    Family("gemma3", build_gemma3, pixel_size),
    Family("gemma4", build_gemma4, soft_token_size),
    Family("internvl", build_internvl, internvl_size),
    Family("llava_onevision", build_llava_onevision, anyres_size,  # several images: one base tile + newline each
           several_images_tokens=lambda vlm, n: n * (vlm.processor.num_image_tokens + 1)),
    Family("minicpmv4_6", build_minicpmv4_6, slices_size),
    Family("minicpmv4_7", build_minicpmv4_7, slices_size),
    Family("molmo2", build_molmo2, molmo_size),
    Family("lfm2_vl", build_lfm2_vl, lfm2_size),
    Family("paligemma", build_paligemma, pixel_size, refused="has no chat template"),
    Family("florence2", build_florence2, pixel_size, refused="has no chat template"),
    Family("idefics3", build_idefics3, tiles_size),
    Family("smolvlm", build_smolvlm, tiles_size, skip=None if importlib.util.find_spec("num2words") else (
        "SmolVLMProcessor needs the num2words package (pip install num2words), which lookcloser does not install")),
]}


def build(model_type: str, tmp_dir: str | Path) -> Path:
    """Write the tiny checkpoint of `model_type` into `tmp_dir/tiny-<model_type>`; return its path."""
    family = FAMILIES[model_type]
    if family.build is None:
        raise ValueError(f"{model_type} cannot be built here: {family.skip}")
    out = Path(tmp_dir) / f"tiny-{model_type}"
    out.mkdir(parents=True, exist_ok=True)
    return family.build(out)
