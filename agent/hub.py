"""Load `from_pretrained` models cache-first, and fail fast when the hub is out of reach.

Without this, a hub id that is not in the local cache on an offline machine waits out the hub
client's retries (minutes, measured: ~150 s for a VLM) before failing. Here: a local directory
loads directly; a hub id loads from the local cache without network when it is there; otherwise
one short TCP probe of the hub decides between downloading and a clear, immediate error.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_probe_lock = threading.Lock()
_probe_result: dict[str, bool] = {}


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
