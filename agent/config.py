"""Agent-level settings. Search-algorithm constants live in lookcloser.tools.vstar.config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lookcloser.images import DEFAULT_MAX_PIXELS


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_targets: int = Field(4, ge=1, description="SHOW may name more; the rest are dropped and recorded.")
    max_search_seconds: float = Field(
        120.0, gt=0, description="Per target. A search past it becomes a 'failed' finding (timed out)."
    )
    max_new_tokens: int = Field(256, ge=1, description="Per VLM call.")
    max_crops: int = Field(8, ge=0, description="Crops shown to the VLM in TELL, most confident first.")
    max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, description="Decompression-bomb guard for input images.")
    segment_found: bool = Field(True, description="Refine found object boxes into masks when a segmenter is set.")
    crop_factor: float = Field(1.2, gt=0, description="TELL's crop around a found box, as SEAL: 1.2x the box.")
    crop_min_size: float = Field(32.0, ge=1, description="Smallest crop side (px) cut around a found box.")
    max_text_chars: int = Field(
        200, ge=1, description="Longest OCR line shown to the VLM in TELL (longer text is cut, marked with '...').")
    max_text_lines: int = Field(40, ge=1, description="Most OCR lines shown to the VLM in TELL.")
    image_dir: str | None = Field(
        None, description="Graph input may name image FILES only inside this directory (a served graph must not "
                          "read arbitrary server files); None: file paths are refused, send a data URL or base64.")
