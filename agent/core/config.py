"""Agent-level settings. Search-algorithm constants live in lookcloser.tools.vstar.config; the
question's deadline in lookcloser.core.deadline."""

from __future__ import annotations

from typing import Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Default guard: 100 megapixels (a 12000 x 8000 aerial photo still loads).
DEFAULT_MAX_PIXELS = 100_000_000

#: Longest time limit accepted (a day): larger values are mistakes, and past ~1e9 s the standard
#: library's timeouts overflow.
MAX_SECONDS = 86_400.0

#: The evidence ablations (`AgentConfig.ablate`, `lookcloser eval --ablate`); "none" is the normal run.
ABLATIONS = ("none", "crop-black", "no-search")

#: How a question is answered (`AgentConfig.strategy`, `ask --strategy`, `eval --strategy`): "vstar" is SHOW ->
#: SEARCH -> TELL; "zoom" lets the VLM drive: it zooms and calls the experts itself over several turns.
STRATEGIES = ("vstar", "zoom")


class AgentConfig(BaseModel):
    """Per-run settings. Every field is checked here (type, range, NaN), so a bad value fails when the
    agent or the run starts, naming the field, never deep inside a node."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_targets: int = Field(4, ge=1, le=64, description="SHOW may name more; the rest are dropped and recorded.")
    max_search_seconds: float = Field(
        120.0, gt=0, le=MAX_SECONDS, description="Per target. A search past it becomes a 'failed' finding (timed out)."
    )
    max_new_tokens: int = Field(256, ge=1, le=32768, description="Per VLM call.")
    timeout: float | None = Field(
        None, gt=0, le=MAX_SECONDS, description="Seconds for the whole question (VLM calls and search); None: no limit. When it "
                                "runs out the run raises TimeLimitError naming what was waiting. A served graph "
                                "(no Agent around it) applies it to each node: each VLM call and each search.")
    max_reply_chars: int = Field(
        4000, ge=1, le=1_000_000, description="Longest VLM reply used; a longer one is cut, marked with '…[cut]'.")
    choice: Literal["text", "likelihood"] = Field(
        "text", description="Multiple choice: 'text' takes the option the reply names (option likelihood only when it "
                            "names none); 'likelihood' takes the most likely option whenever the VLM can score options "
                            "(V*'s own protocol; `lookcloser eval` uses it), else the named one.")
    max_crops: int = Field(8, ge=0, le=64, description="Crops shown to the VLM in TELL, most confident first.")
    max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Decompression-bomb guard for input images.")
    segment_found: bool = Field(True, description="Refine found object boxes into masks when a segmenter is set.")
    crop_factor: float = Field(1.2, gt=0, le=100, description="TELL's crop around a found box, as SEAL: 1.2x the box.")
    crop_min_size: float = Field(32.0, ge=1, le=100_000, description="Smallest crop side (px) cut around a found box.")
    mask_background: float = Field(
        0.35, ge=0, le=1, description="TELL's crop of a finding with a mask keeps this much of the brightness outside "
                                      "the mask (Grounded-SAM's masked crop: the object stands out, its context "
                                      "stays visible); 1 shows the plain crop.")
    max_text_chars: int = Field(
        200, ge=1, le=100_000, description="Longest OCR line shown to the VLM in TELL (longer text is cut, marked with '...').")
    max_text_lines: int = Field(40, ge=1, le=10_000, description="Most OCR lines shown to the VLM in TELL.")
    ablate: Literal["none", "crop-black", "no-search"] = Field(
        "none", description="Evidence ablation (does the answer rest on what the search found?): 'crop-black' hands "
                            "TELL a black image of the same size for every image the search produced (crops and "
                            "masked crops; the full image, the findings' text and read OCR text stay as they are); "
                            "'no-search' makes SHOW's reply final: no search, no TELL (an item SHOW did not answer "
                            "stays unanswered, choice_path 'unanswered'). 'none': the normal run.")
    strategy: Literal["vstar", "zoom"] = Field(
        "vstar", description="'vstar': SHOW -> SEARCH -> TELL (the VLM names what it misses, the experts find it). "
                             "'zoom': the VLM drives, over several turns: it calls image_zoom_in_tool(bbox_2d, label) "
                             "to see a region at full resolution and find(target, kind) to run the experts, then "
                             "answers (docs/zoom.md).")
    max_zoom_turns: int = Field(
        6, ge=1, le=64, description="zoom: VLM calls per question at most; the last one may not call tools, so the "
                                    "run ends with the best answer it has.")
    max_zoom_pixels: int = Field(
        1_048_576, ge=784, le=100_000_000, description="zoom: a crop larger than this is shrunk to it (aspect kept); "
                                                       "a smaller one is sent at native resolution.")
    max_zoom_images: int = Field(
        6, ge=1, le=64, description="zoom: images kept in the conversation, the photo included; older views are "
                                    "dropped (named in the text) past it.")
    zoom_calls: Literal["auto", "native", "text"] = Field(
        "auto", description="zoom: how the VLM calls tools: 'native' (the backend's tool calling: OpenAI tools, "
                            "LangChain bind_tools), 'text' (Hermes <tool_call> / Mini-o3 <grounding> in the reply, "
                            "the tools described in the prompt), 'auto' (native where the backend has it). Text "
                            "calls in a native reply are read as well.")
    zoom_coords: Literal["auto", "relative_1000", "relative_1", "absolute", "grid"] = Field(
        "auto", description="zoom: how bbox_2d is written: 0-1000 of the named view (Qwen3-VL, GLM-V, InternVL), "
                            "0-1 (Mini-o3), absolute pixels of the photo (DeepEyes, Chain-of-Focus), the named "
                            "view's processor grid (Qwen2.5-VL); 'auto' from the VLM's box convention and name.")
    zoom_find: bool = Field(True, description="zoom: offer the find(target, kind) tool (the configured experts).")
    image_dir: str | None = Field(
        None, description="Graph input may name image FILES only inside this directory (a served graph must not "
                          "read arbitrary server files); None: file paths are refused, send a data URL or base64.")


    @model_validator(mode="after")
    def _ablation_needs_the_search(self) -> "AgentConfig":
        """The evidence ablations take the vstar strategy's search away; the zoom strategy has no such step."""
        if self.strategy == "zoom" and self.ablate != "none":
            raise ValueError(f"ablate={self.ablate!r} applies to the vstar strategy (SHOW -> SEARCH -> TELL), not to "
                             "strategy='zoom'")
        return self


CUT_MARK = "…[cut]"


def cap_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked with CUT_MARK."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(CUT_MARK))] + CUT_MARK


def cap_pieces(pieces: Iterable[str], limit: int | None = None) -> Iterator[str]:
    """A reply arriving in pieces, passed on as they come so that the pieces join to what
    `cap_text(reply.strip(), limit)` gives the whole reply: leading whitespace dropped, trailing
    whitespace held back until more text follows, and past `limit` the cut mark, after which nothing
    more is read."""
    sent, held, started = 0, "", False
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        held += piece
        kept = held.rstrip()
        if limit is not None and sent + len(kept) > limit:
            yield kept[: max(0, limit - len(CUT_MARK) - sent)] + CUT_MARK
            return
        safe = len(kept) if limit is None else min(len(kept), max(0, limit - len(CUT_MARK) - sent))
        if safe:
            yield held[:safe]
            sent, held = sent + safe, held[safe:]
    if held.rstrip():
        yield held.rstrip()
