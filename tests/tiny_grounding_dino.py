"""Build a tiny random-weight GroundingDINO checkpoint on disk, for tests.

No hub access on build machines, so tests cannot download GroundingDINO. This writes a
GroundingDINO with a 2-stage Swin backbone (embed 8), a 1-layer BERT text encoder (hidden 32),
1 encoder / 2 decoder layers (transformers ties the per-layer box heads, which needs 2+) and 30 queries, a BERT WordPiece tokenizer with a hand-made vocabulary
(the BERT special tokens, ".", and a few words) and the real GroundingDinoImageProcessor (resizing
to 64 px) into a directory with `save_pretrained`, so loading it exercises the same
`AutoProcessor` / `AutoModelForZeroShotObjectDetection.from_pretrained` path as a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIDE = 64
NUM_QUERIES = 30
WORDS = ["a", "red", "car", "dog", "cat", "blue", "cup", "table", "sign", "the", "on", "tree", "person"]


def _tokenizer():
    from transformers import BertTokenizer

    vocab: dict[str, int] = {}
    for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", *WORDS]:
        vocab[token] = len(vocab)
    for char in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault("##" + char, len(vocab))
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)


def build_tiny_grounding_dino(tmp_dir: str | Path, seed: int = 0, logit_scale: float = 0.05) -> Path:
    """Write a tiny GroundingDINO model + processor into `tmp_dir/tiny-grounding-dino`; return the path.

    `logit_scale` shrinks the decoder's output norm so box scores spread over (0, 1) instead of all
    saturating at 1.0 (the V* test needs patches that score differently).
    """
    import torch
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    out = Path(tmp_dir) / "tiny-grounding-dino"
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    backbone = SwinConfig(
        embed_dim=8, depths=[1, 1, 1], num_heads=[1, 1, 1], window_size=4, image_size=IMAGE_SIDE,
        out_features=["stage2", "stage3"], out_indices=[2, 3],
    )
    text = {
        "model_type": "bert", "vocab_size": len(tokenizer), "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, num_queries=NUM_QUERIES,
        encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2, decoder_n_points=2,
        num_feature_levels=2, max_text_len=32, disable_custom_kernels=True,
    )
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config).eval()
    with torch.no_grad():  # the class logit is a dot product of two layer-normed vectors: huge with random
        model.model.decoder.layer_norm.weight.mul_(logit_scale)  # weights (every score ~1.0); spread them out
        model.model.decoder.layer_norm.bias.mul_(logit_scale)
    model.save_pretrained(out)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": IMAGE_SIDE, "longest_edge": IMAGE_SIDE * 2}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(out)
    return out
