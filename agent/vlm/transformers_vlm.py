"""Local VLM through Hugging Face `transformers` (AutoProcessor + AutoModelForImageTextToText).

Why this backend: it runs any image-text-to-text chat checkpoint (Qwen2.5-VL by default) on the
user's machine and, unlike an HTTP endpoint, exposes next-token logits. That lets the agent ask
for calibrated yes/no probabilities and option likelihoods instead of parsing free text.

The model loads lazily on first use, exactly once, under a lock (agents may call from threads).
torch/transformers are imported inside methods so `import lookcloser` stays fast. How many pixels of an image
reach the vision encoder is the family's processor's decision (lookcloser.vlm.families); `max_image_pixels` caps
the families whose processor sizes the image to the photo.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from lookcloser.core.config import cap_pieces
from lookcloser.core.errors import ModelLoadError, VLMError
from lookcloser.core.hub import check_dtype, from_pretrained, model_source, resolve_device, resolve_dtype, shared
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply
from lookcloser.vlm import families

#: Qwen3-VL-8B-Instruct: the strongest open VLM of its size on V* / HR-Bench in a same-harness run, 0-1000
#: boxes of its own, ~17.5 GB in bf16 (a 24 GB GPU); docs/vlm.md "The default VLM" has the numbers and sources.
#: The previous default is one flag away: --vlm transformers:Qwen/Qwen2.5-VL-3B-Instruct.
DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
#: Default cap per image (1280 Qwen2.5-VL merged patches of 28x28 px): ~1 MP, ~1.3k vision tokens. It bounds the
#: families whose processor would take a 12-Mpx photo nearly whole (Qwen's max_pixels is 12.8 MP in its
#: checkpoints, GLM-4.1V's image processor 5.9 MP), which on CPU means tens of thousands of vision tokens.
DEFAULT_MAX_IMAGE_PIXELS = 1280 * 28 * 28

_YES_WORDS = ("Yes", "yes", "YES")
_NO_WORDS = ("No", "no", "NO")
_FIX_HINT = (
    "download the model ahead of time and pass its local directory via --vlm transformers:/path/to/model, "
    "or serve it and use --vlm openai:MODEL@http://host:port/v1"
)


def _short(exc: BaseException, limit: int = 160) -> str:
    """First line of an exception, shortened: enough to diagnose, no traceback walls."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class TransformersVLM:
    """A local `transformers` VLM. `model` is a hub id or a local checkpoint directory."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: Any = "auto",
        load_in_8bit: bool = False,
        load_in_4bit: bool = False,
        max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
        trust_remote_code: bool = False,
        box_format: str | None = None,
    ) -> None:
        if not isinstance(model, (str, Path)) or not str(model).strip():
            raise ValueError(f"TransformersVLM model must be a hub id or a local directory, got {model!r}")
        if load_in_8bit and load_in_4bit:
            raise ValueError("choose one of load_in_8bit and load_in_4bit, not both")
        if (load_in_8bit or load_in_4bit) and importlib.util.find_spec("bitsandbytes") is None:
            flag = "load_in_8bit" if load_in_8bit else "load_in_4bit"
            raise ModelLoadError(
                f"{flag}=True needs the bitsandbytes package (CUDA only): pip install bitsandbytes"
            )
        if max_image_pixels is not None and max_image_pixels < 28 * 28:
            raise ValueError(f"max_image_pixels must be at least {28 * 28} or None, got {max_image_pixels}")
        if box_format is not None and (not isinstance(box_format, str) or not box_format.strip()):
            raise ValueError(f"box_format must be a non-empty string or None, got {box_format!r}")
        check_dtype(dtype, "VLM")
        self.model_id = str(model)
        self.requested_device = device
        self.requested_dtype = dtype
        self.load_in_8bit = load_in_8bit
        self.load_in_4bit = load_in_4bit
        self.max_image_pixels = max_image_pixels
        self.trust_remote_code = trust_remote_code
        #: the user's box convention for this model (None: whoever reads boxes derives it from `model_type`)
        self.box_format = box_format
        #: the loaded config's model_type ("qwen2_5_vl", "gemma3" ...); None before load
        self.model_type: str | None = None
        self.name = f"transformers:{self.model_id}"
        self.model: Any = None
        self.processor: Any = None
        self.device: str | None = None
        self.dtype: Any = None
        self._lock = threading.Lock()
        self._yes_no_ids: tuple[list[int], list[int]] | None = None

    # ------------------------------------------------------------------ loading
    def load(self) -> "TransformersVLM":
        """Load processor and weights now (otherwise the first call does it). Safe to call twice."""
        if self.model is not None:
            return self
        with self._lock:
            if self.model is None:
                self._load_locked()
        return self

    def _load_locked(self) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source, local = model_source(self.model_id, "VLM", _FIX_HINT)
        # auto: CUDA, else MPS, else CPU; dtype auto: bf16 (fp16 without bf16) on CUDA, fp16 on MPS, fp32 on CPU
        device = resolve_device(self.requested_device, torch, "VLM")
        dtype = resolve_dtype(self.requested_dtype, device, torch, "VLM")
        kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": self.trust_remote_code}
        quantized = self.load_in_8bit or self.load_in_4bit
        if quantized:
            from transformers import BitsAndBytesConfig

            if self.load_in_4bit:
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_type="nf4"
                )
            else:
                kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
            kwargs["device_map"] = "auto" if self.requested_device == "auto" else {"": device}
        hub = not local

        def build() -> tuple[Any, Any]:
            try:
                processor = from_pretrained(AutoProcessor, source, trust_remote_code=self.trust_remote_code)
                model = from_pretrained(AutoModelForImageTextToText, source, **kwargs)
                if not quantized:
                    model = model.to(device)
            except Exception as exc:  # hub/network/format errors come in many types
                if hub:
                    raise ModelLoadError(
                        f"could not load VLM {self.model_id!r} from the Hugging Face hub ({_short(exc)}); "
                        f"{_FIX_HINT}"
                    ) from exc
                raise ModelLoadError(
                    f"could not load VLM {self.model_id!r} from local directory {source} ({_short(exc)}); "
                    "pass a directory saved with save_pretrained (config.json, weights, processor files) "
                    "or use --vlm openai:MODEL@http://host:port/v1"
                ) from exc
            return processor, model.eval()

        # one copy per process for what determines the weights and where they live (hub.shared)
        processor, model = shared(("vlm", source, str(device), str(dtype), f"8bit={self.load_in_8bit}",
                                   f"4bit={self.load_in_4bit}", f"remote={self.trust_remote_code}"), build)
        model_type = getattr(model.config, "model_type", None)
        if not (getattr(processor, "chat_template", None) or getattr(getattr(processor, "tokenizer", None),
                                                                    "chat_template", None)):
            raise ModelLoadError(
                f"VLM {self.model_id!r} ({model_type}) has no chat template: lookcloser sends chat turns of images and "
                "text through the processor's chat template, and task-prompt checkpoints (PaliGemma, Florence-2) "
                "ship none; use a chat checkpoint of the family, or save one with a chat_template")
        self.processor = processor
        self.model_type = model_type
        self.device = str(getattr(model, "device", device))
        self.dtype = getattr(model, "dtype", dtype)
        self.model = model  # set last: other threads treat a non-None model as "loaded"

    # ------------------------------------------------------------------ helpers
    @property
    def tokenizer(self) -> Any:
        self.load()
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def pixel_rule(self) -> families.PixelRule:
        """How this model's processor sizes images, under the current `max_image_pixels` (loads the model)."""
        self.load()
        return families.pixel_rule(self.processor, self.max_image_pixels)

    def sent_image_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) in pixels of an image of `image_size` as the vision encoder receives it: after the
        cap and the processor's resize (Qwen-style: the smart-resized grid; tiling processors: the resized whole
        image before it is cut). NotImplementedError, with the reason, for a processor whose rule is unknown."""
        width, height = (int(v) for v in image_size)
        if width < 1 or height < 1:
            raise ValueError(f"image_size must be (width, height) in pixels, got {image_size!r}")
        return self.pixel_rule.sent_size(width, height)

    def _encode(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> Any:
        """Chat template + processor -> model inputs on the model's device."""
        rule = self.pixel_rule
        chat: list[dict[str, Any]] = []
        images: list[Image.Image] = []
        for message in messages:
            parts: list[dict[str, Any]] = []
            for part in message.content:
                if isinstance(part, Image.Image):
                    image = part.convert("RGB")
                    size = rule.pre_size(image.width, image.height)
                    images.append(image if size is None else image.resize(size, Image.Resampling.BICUBIC))
                    parts.append({"type": "image"})
                elif isinstance(part, str):
                    parts.append({"type": "text", "text": part})
                else:
                    raise TypeError(
                        f"message content parts must be str or PIL.Image.Image, got {type(part).__name__}"
                    )
            chat.append({"role": message.role, "content": parts})
        text = self.processor.apply_chat_template(chat, add_generation_prompt=add_generation_prompt, tokenize=False)
        extra = rule.call_kwargs() if images else {}
        # one prompt: its images as one nested list, so processors that treat several images of a prompt apart
        # (LLaVA-OneVision: one base tile each) know they share it
        inputs = self.processor(text=[text], images=[images] if images else None, return_tensors="pt", **extra)
        # Floating tensors (pixel values) follow the model dtype; ids/masks keep theirs.
        return inputs.to(self.model.device, dtype=self.model.dtype)

    @staticmethod
    def _question(image: Image.Image | Sequence[Image.Image] | None, prompt: str) -> list[ChatMessage]:
        if image is None:
            images: list[Image.Image] = []
        elif isinstance(image, Image.Image):
            images = [image]
        else:
            images = list(image)
        return [ChatMessage("user", [*images, prompt])]

    # ------------------------------------------------------------------ protocol
    def _generate_ids(self, inputs: Any, max_new_tokens: int, streamer: Any = None) -> Any:
        """Greedy generation: the new token ids (pad tokens dropped)."""
        import torch

        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)
        new_tokens = output[0, int(inputs["input_ids"].shape[1]):]
        pad_id = getattr(self.tokenizer, "pad_token_id", None)
        eos_id = getattr(self.tokenizer, "eos_token_id", None)
        if pad_id is not None and pad_id != eos_id:
            new_tokens = new_tokens[new_tokens != pad_id]
        return new_tokens

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        """Greedy chat generation. Token counts include the image tokens of the prompt."""
        inputs = self._encode(messages)
        new_tokens = self._generate_ids(inputs, max_new_tokens)
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        return VLMReply(text=text.strip(), input_tokens=int(inputs["input_ids"].shape[1]),
                        output_tokens=int(new_tokens.numel()))

    def stream(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> Iterator[str | VLMReply]:
        """`generate` as the tokens come: the reply's text in pieces (transformers' TextIteratorStreamer, with
        the generation on a worker thread), then a VLMReply with the whole text and the token counts. Leaving
        early does not stop the generation: it runs to its end on its thread."""
        from transformers import TextIteratorStreamer

        inputs = self._encode(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["tokens"] = self._generate_ids(inputs, max_new_tokens, streamer)
            except BaseException as exc:  # handed to the reader below
                box["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, name="lookcloser-vlm-generate", daemon=True)
        worker.start()
        text: list[str] = []
        for piece in cap_pieces(streamer):
            text.append(piece)
            yield piece
        worker.join()
        if "error" in box:
            raise box["error"]
        yield VLMReply(text="".join(text), input_tokens=int(inputs["input_ids"].shape[1]),
                       output_tokens=int(box["tokens"].numel()))

    def _yes_no_token_ids(self) -> tuple[list[int], list[int]]:
        """Single-token spellings of yes/no in this tokenizer (multi-token spellings are skipped)."""
        if self._yes_no_ids is None:
            tok = self.tokenizer

            def single(words: Sequence[str]) -> list[int]:
                ids = set()
                for word in words:
                    encoded = tok.encode(word, add_special_tokens=False)
                    if len(encoded) == 1:
                        ids.add(int(encoded[0]))
                return sorted(ids)

            yes, no = single(_YES_WORDS), single(_NO_WORDS)
            if not yes or not no or set(yes) & set(no):
                raise VLMError(
                    f"{self.name}: the tokenizer has no distinct single-token 'Yes'/'No' "
                    f"(yes ids {yes}, no ids {no}); yes_probability is not available for this model"
                )
            self._yes_no_ids = (yes, no)
        return self._yes_no_ids

    def yes_probability(self, image: Image.Image | Sequence[Image.Image] | None, prompt: str) -> float:
        """P(yes) from one forward pass: softmax of next-token logits over the Yes/No token ids."""
        import torch

        yes, no = self._yes_no_token_ids()
        inputs = self._encode(self._question(image, prompt))
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0, -1].float()
        log_yes = torch.logsumexp(logits[yes], dim=0)
        log_no = torch.logsumexp(logits[no], dim=0)
        return float(torch.sigmoid(log_yes - log_no))

    def score_options(
        self, image: Image.Image | Sequence[Image.Image] | None, question: str, options: Sequence[str]
    ) -> list[float]:
        """Mean per-token log-likelihood of each option as the assistant's reply to `question`.

        The prompt is encoded once by the processor; each option's tokens are appended to it
        (so no tokenizer boundary merges) and scored with one teacher-forced forward pass each.
        """
        import torch

        if not options:
            raise ValueError("score_options needs at least one option")
        prompt = self._encode(self._question(image, question))
        ids = prompt["input_ids"]
        prompt_len = int(ids.shape[1])
        per_token = [k for k, v in prompt.items() if hasattr(v, "shape") and tuple(v.shape) == tuple(ids.shape)]
        scores: list[float] = []
        for option in options:
            if not isinstance(option, str) or not option:
                raise ValueError(f"options must be non-empty strings, got {option!r}")
            option_ids = self.tokenizer.encode(option, add_special_tokens=False)
            extra = torch.tensor([option_ids], dtype=ids.dtype, device=ids.device)
            inputs = dict(prompt)
            for key in per_token:
                if key == "input_ids":
                    tail = extra
                elif key == "attention_mask":
                    tail = torch.ones_like(extra, dtype=prompt[key].dtype)
                else:  # token-type style masks: option tokens are plain text (0)
                    tail = torch.zeros_like(extra, dtype=prompt[key].dtype)
                inputs[key] = torch.cat([prompt[key], tail], dim=1)
            with torch.inference_mode():
                logits = self.model(**inputs).logits[0].float()
            logprobs = torch.log_softmax(logits[prompt_len - 1 : -1], dim=-1)
            picked = logprobs.gather(1, extra[0].unsqueeze(1)).squeeze(1)
            scores.append(float(picked.mean()))
        return scores

    def describe(self) -> dict[str, Any]:
        """Backend facts for traces and eval records (device/dtype are resolved once loaded)."""
        quant = "8bit" if self.load_in_8bit else "4bit" if self.load_in_4bit else None
        return {
            "backend": "transformers",
            "model": self.model_id,
            "device": self.device or str(self.requested_device),
            "dtype": str(self.dtype).replace("torch.", "") if self.dtype is not None else str(self.requested_dtype),
            "quantization": quant,
            "max_image_pixels": self.max_image_pixels,
            "model_type": self.model_type,
            "box_format": self.box_format,
            # the most pixels one image reaches the vision encoder with, and the family rule (None before load)
            "pixel_budget": self.pixel_rule.budget() if self.model is not None else None,
            "pixel_rule": self.pixel_rule.describe() if self.model is not None else None,
            "loaded": self.model is not None,
        }

    def __repr__(self) -> str:
        return f"TransformersVLM({self.model_id!r}, device={self.requested_device!r}, dtype={self.requested_dtype!r})"
