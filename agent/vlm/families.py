"""How each VLM family's image processor sizes an image: its pixel budget, and what `max_image_pixels` does to it.

Why: each family decides how many pixels its vision encoder sees — Qwen-style smart resize within min/max pixels,
Pixtral's longest edge, Gemma 3's fixed square, SmolVLM's and InternVL's tiles. Shrinking every photo to one size
before the processor, whatever the family, wastes the budget of tiling families (they scale the image back up)
and is no cap at all for fixed-size ones. So the processor decides, and the user's `max_image_pixels` caps only
the families whose processor sizes the image to the photo (smart resize, longest edge); for the others the
budget is their processor's, whatever the photo. A family this module does not know is shrunk to the cap before
its processor, as before, so an unknown processor never meets a 12-Mpx photo.

The rules read the loaded processor's own settings and call transformers' own resize functions, so
`sent_size` is what that processor produces, not a copy of its arithmetic that could drift.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PixelRule", "pixel_rule", "shrunk_size"]


def shrunk_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """The (width, height) an image shrinks to under `max_pixels`: aspect kept, width*height <= max_pixels, never
    enlarged (None: no limit)."""
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def _get(size: Any, key: str) -> Any:
    """A processor's `size` is a dict or a SizeDict depending on how it was built."""
    if isinstance(size, dict):
        return size.get(key)
    return getattr(size, key, None)


class PixelRule:
    """The family's rule. `kind` names it; `pre_size` is the (width, height) to shrink an image to before the
    processor (None: hand it over as it is); `call_kwargs` go to the processor call; `budget` is the most pixels
    one image reaches the vision encoder with; `sent_size` the (width, height) the encoder gets for an image."""

    kind = "unknown"

    def __init__(self, processor: Any, cap: int | None) -> None:
        self.processor = processor
        self.image_processor = getattr(processor, "image_processor", processor)
        self.cap = cap

    def pre_size(self, width: int, height: int) -> tuple[int, int] | None:
        size = shrunk_size(width, height, self.cap)
        return None if size == (width, height) else size

    def call_kwargs(self) -> dict[str, Any]:
        return {}

    def budget(self) -> int | None:
        return self.cap

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        raise NotImplementedError(
            f"{type(self.image_processor).__name__} is not a processor lookcloser knows the resize rule of "
            "(lookcloser.vlm.families); images are shrunk to max_image_pixels before it and it resizes them its own "
            "way")

    def describe(self) -> str:
        return f"{self.kind} ({type(self.image_processor).__name__})"


class SmartResize(PixelRule):
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 / GLM-4.xV: the image is resized (up or down) to sides that are
    multiples of patch_size*merge_size, within [min_pixels, max_pixels] (GLM counts temporal_patch_size frames
    in both). The cap lowers max_pixels in the processor call, so the family's own rounding stays."""

    kind = "smart_resize"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        self.factor = int(ip.patch_size) * int(ip.merge_size)
        self.frames = int(ip.temporal_patch_size) if self._glm else 1
        self.min_pixels = int(_get(ip.size, "shortest_edge"))
        self.max_pixels = int(_get(ip.size, "longest_edge"))

    @property
    def _glm(self) -> bool:
        return type(self.image_processor).__name__.startswith("Glm")

    def _limits(self) -> tuple[int, int]:
        """(min, max) as the processor counts them (x frames for GLM), the cap applied."""
        high = self.max_pixels
        if self.cap is not None:
            high = min(high, self.cap * self.frames)
        return min(self.min_pixels, high), high

    def pre_size(self, width: int, height: int) -> None:
        return None

    def call_kwargs(self) -> dict[str, Any]:
        low, high = self._limits()
        if high == self.max_pixels and low == self.min_pixels:
            return {}
        return {"images_kwargs": {"size": {"shortest_edge": low, "longest_edge": high}}}

    def budget(self) -> int:
        return self._limits()[1] // self.frames

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        low, high = self._limits()
        if self._glm:
            from transformers.models.glm4v.image_processing_glm4v import smart_resize as glm_resize

            h, w = glm_resize(num_frames=self.frames, height=height, width=width, temporal_factor=self.frames,
                              factor=self.factor, min_pixels=low, max_pixels=high)
        else:
            from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

            h, w = smart_resize(height, width, factor=self.factor, min_pixels=low, max_pixels=high)
        return int(w), int(h)

    def describe(self) -> str:
        low, high = self._limits()
        return (f"smart_resize ({type(self.image_processor).__name__}): {low // self.frames}..{high // self.frames} "
                f"px, sides multiples of {self.factor}")


class LongestEdge(PixelRule):
    """Pixtral / Mistral 3: shrunk (never enlarged) to fit a longest_edge square, sides rounded up to patches of
    patch_size*spatial_merge_size. It never upscales, so shrinking first caps it: to the cap, then each side down to
    whole patches, so the processor's rounding up cannot take it past the cap."""

    kind = "longest_edge"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        self.longest = int(_get(self.image_processor.size, "longest_edge"))
        # PixtralProcessor's patch_size x spatial_merge_size (Mistral 3: 14 x 2) overrides the image processor's
        patch = getattr(processor, "patch_size", None) if processor is not self.image_processor else None
        if patch is None or isinstance(patch, dict):
            patch = _get(self.image_processor.patch_size, "height")
        merge = getattr(processor, "spatial_merge_size", 1) if processor is not self.image_processor else 1
        self.patch = int(patch) * int(merge or 1)

    def budget(self) -> int:
        own = self.longest * self.longest
        return own if self.cap is None else min(own, self.cap)

    def pre_size(self, width: int, height: int) -> tuple[int, int] | None:
        size = shrunk_size(width, height, self.cap)
        if size == (width, height):
            return None
        return tuple(max(self.patch, side // self.patch * self.patch) for side in size)  # type: ignore[return-value]

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        import numpy as np
        from transformers.models.pixtral.image_processing_pixtral import get_resize_output_image_size

        width, height = self.pre_size(width, height) or (width, height)
        h, w = get_resize_output_image_size(np.zeros((height, width, 3)), size=(self.longest, self.longest),
                                            patch_size=(self.patch, self.patch))
        return int(w), int(h)

    def describe(self) -> str:
        return f"longest_edge ({type(self.image_processor).__name__}): {self.longest} px, patches of {self.patch}"


class Fixed(PixelRule):
    """Gemma 3 (without pan-and-scan), PaliGemma (SigLIP), Florence-2 (CLIP): every image becomes one fixed
    height x width, whatever the photo; the cap does not apply (shrinking first would only lose detail)."""

    kind = "fixed"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        size = self.image_processor.size
        crop = getattr(self.image_processor, "crop_size", None) if getattr(
            self.image_processor, "do_center_crop", False) else None
        source = crop or size
        self.width, self.height = int(_get(source, "width")), int(_get(source, "height"))

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        return self.width * self.height

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        return self.width, self.height

    def describe(self) -> str:
        return f"fixed ({type(self.image_processor).__name__}): {self.width}x{self.height} px"


class Idefics3Tiles(PixelRule):
    """Idefics3 / SmolVLM: the image is resized so its longest edge is size.longest_edge (up or down), then to
    multiples of max_image_size, cut into tiles of that size plus one global image of it. The budget is the
    processor's tiles; the cap does not apply (the processor would scale a shrunk photo back up)."""

    kind = "tiles"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        self.longest = int(_get(ip.size, "longest_edge"))
        self.tile = int(_get(ip.max_image_size, "longest_edge"))
        self.splitting = bool(ip.do_image_splitting)

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        if not self.splitting:
            return self.tile * self.tile
        side = math.ceil(self.longest / self.tile) * self.tile
        return side * side + self.tile * self.tile  # the tiles and the global view

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        """The whole image as resized before it is cut into tiles (the global tile aside)."""
        if not self.splitting:
            return self.tile, self.tile
        _, rows, cols = self.image_processor.get_number_of_image_patches(height, width)
        rows, cols = max(rows, 1), max(cols, 1)
        return cols * self.tile, rows * self.tile

    def describe(self) -> str:
        return (f"tiles ({type(self.image_processor).__name__}): longest edge {self.longest} px, "
                f"tiles of {self.tile} px + a global one")


class CanvasTiles(PixelRule):
    """InternVL (GotOcr2's image processor with crop_to_patches): the grid of at most max_patches tiles whose aspect
    is nearest the photo's (ties to more tiles while they cover less than twice the photo), resized to it and
    cut, plus a thumbnail tile when there are several. The cap does not apply: the grid depends on the photo."""

    kind = "tiles"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip, merged = self.image_processor, image_kwargs(processor)
        self.tile_w, self.tile_h = int(_get(ip.size, "width")), int(_get(ip.size, "height"))
        self.crop = bool(merged.get("crop_to_patches", ip.crop_to_patches))
        self.min_patches = int(merged.get("min_patches", ip.min_patches))
        self.max_patches = int(merged.get("max_patches", ip.max_patches))

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        return self.tile_w * self.tile_h * (self.max_patches + 1 if self.crop else 1)  # the tiles and a thumbnail

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        if not self.crop:
            return self.tile_w, self.tile_h
        from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

        cols, rows = get_optimal_tiled_canvas((height, width), (self.tile_h, self.tile_w), self.min_patches,
                                              self.max_patches)
        return cols * self.tile_w, rows * self.tile_h

    def describe(self) -> str:
        return (f"tiles ({type(self.image_processor).__name__}): {self.min_patches}..{self.max_patches} tiles of "
                f"{self.tile_w}x{self.tile_h} px + a thumbnail")


class AnyRes(PixelRule):
    """LLaVA-OneVision and LLaVA-NeXT: an image is fitted into the grid pinpoint whose resolution suits it best,
    padded to it and cut into tiles, after one base view of the whole image; OneVision gives each image of a
    prompt with several (TELL with crops) one base tile instead. The cap does not apply: the pinpoint follows the
    photo."""

    kind = "tiles"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        self.pinpoints = [list(p) for p in ip.image_grid_pinpoints]
        crop = getattr(ip, "crop_size", None)  # LLaVA-NeXT cuts crop_size tiles; OneVision size ones
        self.tile = int(_get(crop, "height") if crop and _get(crop, "height") else
                        _get(ip.size, "height") or _get(ip.size, "shortest_edge"))
        self.one_tile_each = type(ip).__name__.startswith("LlavaOnevision")

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        return max(h * w for h, w in self.pinpoints) + self.tile * self.tile  # the tiles and the base view

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        """The pinpoint canvas the photo is fitted (aspect kept) and padded into, as one image's tiles cover it."""
        from transformers.image_processing_utils import select_best_resolution

        h, w = select_best_resolution((height, width), self.pinpoints)
        return int(w), int(h)

    def describe(self) -> str:
        h, w = max(self.pinpoints, key=lambda p: p[0] * p[1])
        several = "; one base tile per image when a prompt has several" if self.one_tile_each else ""
        return (f"tiles ({type(self.image_processor).__name__}): anyres up to {w}x{h} px in tiles of {self.tile} px "
                f"+ a base view{several}")


class Slices(PixelRule):
    """MiniCPM-V 4.x: a photo over scale_resolution^2 px is cut into the grid of at most max_slice_nums slices
    whose aspect is nearest its own (each slice about scale_resolution^2 px), after a thumbnail of it; a smaller
    photo is resized (up) to one view. The cap does not apply: the processor sizes the slices itself."""

    kind = "tiles"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        self.resolution, self.slices = int(ip.scale_resolution), int(ip.max_slice_nums)
        self.slice_mode = bool(ip.slice_mode)

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        return self.resolution * self.resolution * ((self.slices if self.slice_mode else 0) + 1)

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        """The whole image as the slices cover it (the thumbnail aside); one view when it is not sliced."""
        ip = self.image_processor
        common = {"scale_resolution": self.resolution, "patch_size": int(ip.patch_size),
                  "downsample_mode": ip.downsample_mode, "allow_upscale": True}
        grid = ip.get_sliced_grid((height, width), self.slices, self.resolution) if self.slice_mode else None
        if grid is None:
            h, w = ip.find_best_resize((height, width), **common)
        else:
            h, w = ip.get_refine_size((height, width), grid, **common)
        return int(w), int(h)

    def describe(self) -> str:
        return (f"tiles ({type(self.image_processor).__name__}): up to {self.slices} slices of about "
                f"{self.resolution}x{self.resolution} px + a thumbnail")


class OverlapCrops(PixelRule):
    """Molmo 2: a low-resolution view of the whole image plus overlapping square crops (overlap_margins patches
    shared) tiling a canvas of at most max_crops windows chosen from the photo's size. The cap does not apply:
    the tiling follows the photo."""

    kind = "tiles"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        self.crop, self.max_crops = int(_get(ip.size, "height")), int(ip.max_crops)

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        return self.crop * self.crop * (self.max_crops + 1)  # the crops and the low-resolution view

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        """The canvas the crops tile (the low-resolution view aside)."""
        from transformers.models.molmo2.image_processing_molmo2 import compute_crop_geometry

        ip = self.image_processor
        _, _, h, w = compute_crop_geometry(height, width, max_crops=self.max_crops,
                                           overlap_margins=list(ip.overlap_margins), crop_size=self.crop,
                                           patch_size=int(ip.patch_size))
        return int(w), int(h)

    def describe(self) -> str:
        return (f"tiles ({type(self.image_processor).__name__}): up to {self.max_crops} overlapping crops of "
                f"{self.crop} px + a low-resolution view")


class Lfm2Tiles(PixelRule):
    """LFM2-VL: a photo up to max_image_tokens (x tolerance) is smart-resized to one view of min..max_image_tokens;
    a larger one is cut into the grid of min..max_tiles tiles nearest its aspect, plus a smart-resized thumbnail.
    The cap does not apply: the processor sizes both from the photo."""

    kind = "tiles"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        self.tile, self.patch, self.factor = int(ip.tile_size), int(ip.encoder_patch_size), int(ip.downsample_factor)
        self.min_tiles, self.max_tiles = int(ip.min_tiles), int(ip.max_tiles)
        self.max_tokens = int(ip.max_image_tokens)

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        view = self.max_tokens * (self.patch * self.factor) ** 2
        splitting = not self.min_tiles == self.max_tiles == 1
        return view + (self.max_tiles * self.tile * self.tile if splitting else 0)

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        """The tiles' canvas for a photo that is cut, else the one smart-resized view."""
        ip = self.image_processor
        common = {"max_image_tokens": self.max_tokens, "encoder_patch_size": self.patch,
                  "downsample_factor": self.factor}
        splitting = not self.min_tiles == self.max_tiles == 1
        if splitting and ip._is_image_too_large(height=height, width=width,
                                                max_pixels_tolerance=ip.max_pixels_tolerance, **common):
            cols, rows, w, h, _ = ip._get_grid_layout(height, width, min_tiles=self.min_tiles,
                                                      max_tiles=self.max_tiles, tile_size=self.tile)
            return int(w), int(h)
        w, h = ip.smart_resize(height=height, width=width, min_image_tokens=int(ip.min_image_tokens), **common)
        return int(w), int(h)

    def describe(self) -> str:
        return (f"tiles ({type(self.image_processor).__name__}): one view up to {self.max_tokens} tokens, or "
                f"{self.min_tiles}..{self.max_tiles} tiles of {self.tile} px + a thumbnail")


class PatchBudget(PixelRule):
    """Gemma 4: the photo is resized, aspect kept, up or down to the most patches max_soft_tokens allows (sides
    multiples of pooling x patch). The cap does not apply: the processor would scale a shrunk photo back up;
    its budget is `max_soft_tokens` (70, 140, 280, 560 or 1120)."""

    kind = "patch_budget"

    def __init__(self, processor: Any, cap: int | None) -> None:
        super().__init__(processor, cap)
        ip = self.image_processor
        merged = image_kwargs(processor)
        self.patch, self.pooling = int(ip.patch_size), int(ip.pooling_kernel_size)
        self.max_patches = int(merged.get("max_soft_tokens", ip.max_soft_tokens)) * self.pooling ** 2

    def pre_size(self, width: int, height: int) -> None:
        return None

    def budget(self) -> int:
        return self.max_patches * self.patch * self.patch

    def sent_size(self, width: int, height: int) -> tuple[int, int]:
        from transformers.models.gemma4.image_processing_gemma4 import get_aspect_ratio_preserving_size

        h, w = get_aspect_ratio_preserving_size(height=height, width=width, patch_size=self.patch,
                                                max_patches=self.max_patches, pooling_kernel_size=self.pooling)
        return int(w), int(h)

    def describe(self) -> str:
        return (f"patch_budget ({type(self.image_processor).__name__}): {self.max_patches} patches of "
                f"{self.patch} px, aspect kept")


_RULES: dict[str, type[PixelRule]] = {
    "Qwen2VLImageProcessor": SmartResize,
    "Glm4vImageProcessor": SmartResize,
    "Glm46VImageProcessor": SmartResize,
    "PixtralImageProcessor": LongestEdge,
    "SiglipImageProcessor": Fixed,
    "CLIPImageProcessor": Fixed,
    "Idefics3ImageProcessor": Idefics3Tiles,
    "SmolVLMImageProcessor": Idefics3Tiles,
    "GotOcr2ImageProcessor": CanvasTiles,
    "LlavaOnevisionImageProcessor": AnyRes,
    "LlavaNextImageProcessor": AnyRes,
    "MiniCPMV4_6ImageProcessor": Slices,
    "Molmo2ImageProcessor": OverlapCrops,
    "Lfm2VlImageProcessor": Lfm2Tiles,
    "Gemma4ImageProcessor": PatchBudget,
}


def pixel_rule(processor: Any, cap: int | None) -> PixelRule:
    """The rule of `processor` (an AutoProcessor or a bare image processor) under the user's cap."""
    image_processor = getattr(processor, "image_processor", processor)
    name = type(image_processor).__name__
    name = name[:-3] if name.endswith("Pil") else name
    if name == "Gemma3ImageProcessor" and not _pan_and_scan(processor):
        return Fixed(processor, cap)
    return _RULES.get(name, PixelRule)(processor, cap)


def image_kwargs(processor: Any) -> dict[str, Any]:
    """The image settings a processor call uses when given none: the processor's defaults for its image processor
    (InternVL's crop_to_patches, Gemma 3's pan-and-scan) merged over that image processor's own, as transformers
    merges them."""
    merge = getattr(processor, "_merge_kwargs", None)
    if merge is None or not hasattr(processor, "tokenizer"):
        return {}
    return dict(merge(tokenizer_init_kwargs=processor.tokenizer.init_kwargs)["images_kwargs"])


def _pan_and_scan(processor: Any) -> bool:
    """Gemma 3 crops wide photos into extra views only when pan-and-scan is on (off by default)."""
    own = getattr(getattr(processor, "image_processor", processor), "do_pan_and_scan", None)
    return bool(image_kwargs(processor).get("do_pan_and_scan", own))
