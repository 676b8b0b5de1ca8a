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
