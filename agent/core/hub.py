"""Where and how a local (`transformers`) model loads: its source, device and dtype.

One home for what every local model adapter (TransformersVLM, the OWLv2 cue, future detectors
and segmenters) has to decide before `from_pretrained`:

* `model_source`: a local checkpoint directory, or a hub id; a path that is not a directory
  fails at once with a clear error instead of a confusing hub lookup.
* `resolve_device`: "auto" is CUDA when available, else (when the adapter allows it) Apple's
  MPS, else CPU. Asking for a device that is not there ("cuda" on a machine without CUDA) is a
  clear ModelLoadError, never a silent fallback.
* `resolve_dtype`: "auto" is bfloat16 on CUDA (float16 where the GPU lacks bf16, or where the
  adapter prefers float16), float16 on MPS, float32 on CPU; names such as "bf16" or "half" work.
* `from_pretrained`: cache-first loading that fails fast when the hub is out of reach. Without
  it, a hub id missing from the local cache on an offline machine waits out the hub client's
  retries (minutes, measured: ~150 s for a VLM) before failing. A local directory loads directly;
  a hub id loads from the local cache without network when it is there; otherwise one short TCP
  probe of the hub decides between downloading and a clear, immediate error.

torch is passed in by the caller (imported lazily there), so importing this module is cheap.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lookcloser.core.errors import ModelLoadError

__all__ = [
    "DTYPE_NAMES",
    "HubUnreachable",
    "check_dtype",
    "from_pretrained",
    "hub_reachable",
    "load_shared",
    "looks_like_path",
    "model_source",
    "resolve_device",
    "resolve_dtype",
]

#: Accepted dtype spellings -> torch attribute names.
DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}

_probe_lock = threading.Lock()
_probe_result: dict[str, bool] = {}


# --- model source -----------------------------------------------------------------------------


def looks_like_path(model: str) -> bool:
    """A hub id is 'name' or 'org/name'; anything else (absolute, ./, ~, deeper, a drive) is a local path."""
    return (
        model.startswith(("/", ".", "~", "\\"))
        or model.count("/") > 1
        or "\\" in model
        or (len(model) > 1 and model[1] == ":")  # Windows drive letter
    )


def model_source(model: str | os.PathLike, what: str, hint: str, *, option: str | None = None,
                 example: str | None = None) -> tuple[str, bool]:
    """(source, is_local): an existing directory (user home expanded), or a hub id.

    A file, or a path-looking name that does not exist, raises ModelLoadError naming `what`
    ("VLM", "OWLv2") and ending with `hint` (how to fix it); `option` / `example` name the tool
    option that picks the model, so the error can say how to set it (ModelLoadError).
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists():
        raise ModelLoadError(f"{what} model path {text} is a file, not a checkpoint directory; {hint}",
                             option=option, example=example)
    if looks_like_path(text):
        raise ModelLoadError(f"{what} model directory not found: {text}; {hint}", option=option, example=example)
    return text, False


# --- device and dtype -----------------------------------------------------------------------------


def resolve_device(spec: Any, torch: Any, what: str = "model", *, mps: bool = True) -> str:
    """The device to load on: "auto" -> "cuda" when available, else "mps" (if `mps` and available),
    else "cpu". An explicit device must exist: "cuda"/"cuda:N" without CUDA (or N beyond the GPUs
    there) and "mps" without MPS raise ModelLoadError; a string torch does not know, ValueError."""
    device = str(spec if spec is not None else "auto").strip()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if mps and _mps_available(torch):
            return "mps"
        return "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"unknown device {device!r} for the {what}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"{what} device '{device}' was asked for but CUDA is not available; use device='cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"{what} device '{device}' was asked for but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    if parsed.type == "mps" and not _mps_available(torch):
        raise ModelLoadError(f"{what} device '{device}' was asked for but MPS is not available; use device='cpu'")
    return device


def _mps_available(torch: Any) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_dtype(spec: Any, what: str = "model") -> None:
    """Early check (no torch import) of a dtype option: "auto", None, a known name or a torch dtype."""
    if spec is None or not isinstance(spec, str) or spec == "auto":
        return
    if spec.strip().lower() not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype {spec!r} for the {what}: use 'auto' or one of {sorted(set(DTYPE_NAMES.values()))}")


def resolve_dtype(spec: Any, device: str, torch: Any, what: str = "model", *, cuda_default: str = "bfloat16") -> Any:
    """The torch dtype to load in. "auto"/None: on CUDA `cuda_default` (bfloat16 falls back to
    float16 on GPUs without bf16), float16 on MPS, float32 on CPU (bf16 matmuls are slow and
    lossy on most CPUs). A name from DTYPE_NAMES or a torch dtype is used as given."""
    if isinstance(spec, torch.dtype):
        return spec
    if spec is None or spec == "auto":
        if device.startswith("cuda"):
            if cuda_default == "bfloat16" and not torch.cuda.is_bf16_supported():
                return torch.float16
            return getattr(torch, cuda_default)
        if device.startswith("mps"):
            return torch.float16
        return torch.float32
    check_dtype(spec, what)
    if not isinstance(spec, str):
        raise ValueError(f"unknown dtype {spec!r} for the {what}: use 'auto', a dtype name or a torch dtype")
    return getattr(torch, DTYPE_NAMES[spec.strip().lower()])


# --- loading ------------------------------------------------------------------------------------


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face endpoint accepts a TCP connection (cached per process)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    with _probe_lock:
        if endpoint not in _probe_result:
            parsed = urlparse(endpoint)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
                    _probe_result[endpoint] = True
            except OSError:
                _probe_result[endpoint] = False
        return _probe_result[endpoint]


class HubUnreachable(OSError):
    """A hub id is neither a local directory nor in the local cache, and the hub cannot be reached."""


def from_pretrained(cls: Any, source: str, **kwargs: Any) -> Any:
    """`cls.from_pretrained(source)`: local dir, else local cache, else hub (when reachable)."""
    if Path(source).expanduser().is_dir():
        return cls.from_pretrained(str(Path(source).expanduser()), **kwargs)
    try:
        return cls.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        pass  # not (fully) cached
    if not hub_reachable():
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise HubUnreachable(f"'{source}' is not in the local Hugging Face cache and {endpoint} cannot be reached")
    return cls.from_pretrained(source, **kwargs)


_shared: dict[tuple[str, ...], Any] = {}
_building: dict[tuple[str, ...], threading.Lock] = {}
_shared_lock = threading.Lock()


def shared(key: tuple[str, ...], build: Any) -> Any:
    """`build()` once per process per `key`, then that same object for every tool instance, agent and
    thread: models are big. The one model cache (VLMs, OWLv2, GroundingDINO, SAM 2, OCR sessions); `key`
    is what determines the weights and where they run. Two keys build in parallel; one key never twice.
    A failed build is not kept (the next call tries again)."""
    with _shared_lock:
        if key in _shared:
            return _shared[key]
        lock = _building.setdefault(key, threading.Lock())
    with lock:
        with _shared_lock:
            if key in _shared:
                return _shared[key]
        built = build()
        with _shared_lock:
            _shared[key] = built
            _building.pop(key, None)
        return built


def forget_shared(kind: str) -> int:
    """Drop the models whose key starts with `kind` (e.g. "onnx"), so the next use loads them again: after
    their files changed on disk, or to see a load fail again. How many were dropped."""
    with _shared_lock:
        keys = [key for key in _shared if key and key[0] == kind]
        for key in keys:
            del _shared[key]
    return len(keys)


def load_shared(processor_cls: Any, model_cls: Any, model: str | os.PathLike, *, what: str, hint: str,
                device: Any = "auto", dtype: Any = "auto", mps: bool = True,
                cuda_default: str = "bfloat16", option: str | None = None,
                example: str | None = None) -> tuple[Any, Any]:
    """(processor, model in eval mode, on its device) for a transformers checkpoint, loaded once per process for each
    (model, class, device, dtype) and shared by every tool instance and thread. Any load failure is one
    ModelLoadError line naming `what`, the model and `hint` (how to point at local weights), carrying
    `option` / `example` (the tool option to set, e.g. "model") for the caller's wording."""
    import torch  # noqa: PLC0415

    source, _local = model_source(model, what, hint, option=option, example=example)
    resolved_device = resolve_device(device, torch, what, mps=mps)
    resolved_dtype = resolve_dtype(dtype, resolved_device, torch, what, cuda_default=cuda_default)

    def build() -> tuple[Any, Any]:
        try:
            processor = from_pretrained(processor_cls, source)
            loaded = from_pretrained(model_cls, source, dtype=resolved_dtype)
        except Exception as exc:  # noqa: BLE001 - every load failure becomes one clear line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"could not load {what} model '{model}' ({type(exc).__name__}: {reason}); "
                                 f"there is no hub download at run time: {hint}", option=option,
                                 example=example) from exc
        return processor, loaded.to(resolved_device).eval()

    return shared((source, model_cls.__name__, str(resolved_device), str(resolved_dtype)), build)
