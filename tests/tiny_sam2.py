"""Build a tiny random-weight SAM 2 checkpoint on disk, for tests.

No hub access on build machines, so tests cannot download SAM 2. This writes a SAM 2 with a
4-stage Hiera backbone of 1-1-2-1 blocks (widths 8-64; the one global-attention block is not a stage's first, which pools), a 32-wide FPN / prompt encoder /
mask decoder and 128 px input (an 8x8 image embedding), plus the real Sam2ImageProcessor sized
to match, into a directory with `save_pretrained`, so loading it exercises the same
`Sam2Processor` / `Sam2Model.from_pretrained` path as a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIDE = 128


def build_tiny_sam2(tmp_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny SAM 2 model + processor into `tmp_dir/tiny-sam2`; return the path."""
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    out = Path(tmp_dir) / "tiny-sam2"
    out.mkdir(parents=True, exist_ok=True)
    side = IMAGE_SIDE
    hidden = 32
    config = Sam2Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "hidden_size": 8, "num_attention_heads": 1, "image_size": [side, side],
                "blocks_per_stage": [1, 1, 2, 1], "embed_dim_per_stage": [8, 16, 32, 64],
                "num_attention_heads_per_stage": [1, 1, 1, 1], "window_size_per_stage": [4, 4, 4, 4],
                "global_attention_blocks": [3], "window_positional_embedding_background_size": [4, 4],
            },
            "backbone_channel_list": [64, 32, 16, 8],
            "backbone_feature_sizes": [[side // 4, side // 4], [side // 8, side // 8], [side // 16, side // 16]],
            "fpn_hidden_size": hidden,
        },
        prompt_encoder_config={"hidden_size": hidden, "image_size": side, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )
    torch.manual_seed(seed)
    model = Sam2Model(config).eval()
    model.save_pretrained(out)
    processor = Sam2Processor(image_processor=Sam2ImageProcessor(size={"height": side, "width": side}, mask_size={"height": side // 4, "width": side // 4}))
    processor.save_pretrained(out)
    return out
