"""Child runs of LangGraph's own run tree: VLM calls, tool calls, search steps.

Inside a graph node LangGraph keeps the node's RunnableConfig in langchain-core's context variable.
`trace_run` opens a child run on that config's callback manager (chain / llm / tool), so every
callback handler LangGraph was given sees it: LangSmith's tracer when LANGSMITH_TRACING is on, the
local JSONL exporter (`tracing.jsonl.JsonlTracer`) when a trace directory is asked for, or nothing.
One question is one tree. Outside a graph (no config) it costs a context-variable lookup.

Images are never inlined: `image_ref(image)` puts the image in the process image store and returns a
short marker (`lookcloser-image:<content hash>`) that exporters may turn into a file.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from langchain_core.callbacks.manager import CallbackManager
from langchain_core.runnables.config import patch_config, var_child_runnable_config

from lookcloser.imagestore import IMAGE_REF_PREFIX, store

__all__ = ["RunHandle", "image_ref", "trace_run"]


class RunHandle:
    """What the body of `trace_run` may set: `outputs` (a dict) and events."""

    def __init__(self, run_id: uuid.UUID | None) -> None:
        self.id = run_id
        self.outputs: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []

    def add_event(self, name: str, **kwargs: Any) -> None:
        self.events.append({"name": name, **kwargs})


def image_ref(image: Any) -> str:
    """A marker naming `image` by content hash (the image stays in the process image store)."""
    return f"{IMAGE_REF_PREFIX}{store.put(image)}"


def _llm_messages(inputs: dict[str, Any]) -> list[list[Any]]:
    from langchain_core.messages import HumanMessage, SystemMessage, AIMessage  # noqa: PLC0415

    kinds = {"user": HumanMessage, "system": SystemMessage, "assistant": AIMessage}
    messages = inputs.get("messages") or [{"role": "user", "content": [{"type": "text", "text": json.dumps(inputs)}]}]
    return [[kinds.get(m["role"], HumanMessage)(content=m["content"]) for m in messages]]


def _llm_result(outputs: dict[str, Any]) -> Any:
    from langchain_core.messages import AIMessage  # noqa: PLC0415
    from langchain_core.outputs import ChatGeneration, LLMResult  # noqa: PLC0415

    text = outputs.get("text")
    message = AIMessage(content=text if isinstance(text, str) else json.dumps(outputs, default=str),
                        usage_metadata=outputs.get("usage_metadata"))
    extra = {k: v for k, v in outputs.items() if k not in ("text", "usage_metadata")}
    return LLMResult(generations=[[ChatGeneration(message=message, generation_info=extra or None)]])


def _manager(config: Any, run_type: str, metadata: dict[str, Any] | None, tags: list[str] | None) -> Any:
    """The callback manager for a child run of `config`'s run, or None when nobody listens."""
    if not config or not config.get("callbacks"):
        return None
    if run_type == "llm":  # internal VLM calls are not chat output: keep them out of LangGraph's messages stream
        tags = [*(tags or []), "nostream"]
    manager = CallbackManager.configure(
        inheritable_callbacks=config.get("callbacks"), inheritable_tags=config.get("tags"),
        inheritable_metadata=config.get("metadata"), local_tags=tags, local_metadata=metadata)
    return manager if manager.handlers else None


@contextmanager
def trace_run(name: str, run_type: str = "chain", inputs: Any = None, *,
              metadata: dict[str, Any] | None = None, tags: list[str] | None = None) -> Iterator[RunHandle]:
    """Open a child run of the current LangGraph/LangChain run; an exception is recorded and re-raised.

    run_type "llm" expects `inputs={"messages": [{"role", "content": [content blocks]}]}` and an
    `outputs["text"]`; "tool" and "chain" take any JSON-able dicts. `inputs` may be a zero-argument
    callable: it is called only when a run is really opened (so untraced calls never hash images).
    """
    config = var_child_runnable_config.get()
    manager = _manager(config, run_type, metadata, tags)
    if manager is None:
        yield RunHandle(None)
        return
    run_id = uuid.uuid4()
    inputs = dict((inputs() if callable(inputs) else inputs) or {})
    serialized = {"name": name}
    common = {"run_id": run_id, "name": name}
    if run_type == "llm":
        run = manager.on_chat_model_start(serialized, _llm_messages(inputs), **common)[0]
    elif run_type == "tool":
        run = manager.on_tool_start(serialized, json.dumps(inputs, default=str), inputs=inputs, **common)
    else:
        run = manager.on_chain_start(serialized, inputs, **common)
    handle = RunHandle(run_id)
    # nested runs go under this one (an llm run is a leaf: nothing nests under a VLM call)
    child = config if run_type == "llm" else patch_config(config, callbacks=run.get_child())
    token = var_child_runnable_config.set(child)
    try:
        yield handle
    except BaseException as exc:
        var_child_runnable_config.reset(token)
        token = None
        if run_type == "llm":
            run.on_llm_error(exc)
        elif run_type == "tool":
            run.on_tool_error(exc)
        else:
            run.on_chain_error(exc)
        raise
    finally:
        if token is not None:
            var_child_runnable_config.reset(token)
    outputs = dict(handle.outputs)
    if handle.events:
        outputs["events"] = handle.events
    if run_type == "llm":
        run.on_llm_end(_llm_result(outputs))
    elif run_type == "tool":
        run.on_tool_end(outputs)
    else:
        run.on_chain_end(outputs)
