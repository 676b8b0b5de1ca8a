"""VLM backends behind one protocol: local transformers, OpenAI-compatible endpoints, LangChain.

Heavy libraries (torch, transformers, openai, langchain) are imported inside the backends, so
importing this package is cheap. `make_vlm(spec)` turns a CLI/Agent spec into a backend. May import
core, imaging and tools, never tracing (its twin layer) or anything above.
"""

from lookcloser.core.vlm_protocol import VLM, ChatMessage, VLMReply, supports
from lookcloser.vlm.factory import make_vlm
from lookcloser.vlm.langchain_vlm import LangChainVLM
from lookcloser.vlm.openai_vlm import OpenAIVLM
from lookcloser.vlm.transformers_vlm import TransformersVLM

__all__ = [
    "ChatMessage",
    "VLMReply",
    "VLM",
    "supports",
    "TransformersVLM",
    "OpenAIVLM",
    "LangChainVLM",
    "make_vlm",
]
