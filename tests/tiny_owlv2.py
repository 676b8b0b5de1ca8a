"""Build a tiny random-weight OWLv2 checkpoint on disk, for tests.

No hub access on build machines, so tests cannot download OWLv2. This writes a 2-layer OWLv2
(hidden size 32, 96 px input, 16 px patches = a 6x6 grid), a CLIP BPE tokenizer with a
hand-made vocabulary (every byte, a few merges, the CLIP special tokens) and the real
Owlv2ImageProcessor into a directory with `save_pretrained`, so loading it exercises the same
`Owlv2Processor` / `Owlv2ForObjectDetection.from_pretrained` path as a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 96
PATCH_SIZE = 16
GRID = IMAGE_SIZE // PATCH_SIZE

_MERGES = [("r", "e"), ("re", "d</w>"), ("c", "a"), ("ca", "r</w>"), ("d", "o"), ("do", "g</w>")]


def _tokenizer():
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    for char in alphabet:
        vocab[char] = len(vocab)
    for char in alphabet:
        vocab[char + "</w>"] = len(vocab)
    for left, right in _MERGES:
        vocab[left + right] = len(vocab)
    # CLIP pools the text at the highest token id, so end-of-text must be the last id.
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=_MERGES, model_max_length=16)


def build_tiny_owlv2(tmp_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny OWLv2 model + processor into `tmp_dir/tiny-owlv2`; return the path."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    out = Path(tmp_dir) / "tiny-owlv2"
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    config = Owlv2Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|startoftext|>"),
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        projection_dim=32,  # the class head compares image features (text width) with projected text
    )
    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(config).eval()
    model.save_pretrained(out)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(out)
    return out
