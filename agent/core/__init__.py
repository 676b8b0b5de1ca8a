"""The foundations every other layer stands on; imports nothing of lookcloser outside `lookcloser.core`.

- `errors`: `LookCloserError` and its kinds (`ImageError`, `InputError`, `VLMError`, ...).
- `types`: `Box`, `Target`, `Detection`, `Finding`, `Stats`, `Answer` (plain pydantic models, JSON in state).
- `geometry`: pure numpy box helpers (IoU, clipping, scaling, the V* split rule).
- `config`: `AgentConfig` (per-run settings) and the caps it sets on text.
- `deadline`: the question's time limit, one ContextVar.
- `vlm_protocol`: the `VLM` protocol, `ChatMessage`, `VLMReply` (what tools and graphs may call).
- `parsing`: a VLM's reply text into core types (SHOW's JSON, an option letter).
- `boxes`: each VLM family's box convention, from a grounding reply to original-image pixels (supervision, lazily).
- `hub`: loading a model once per process, local paths and the offline hub cache.
"""
