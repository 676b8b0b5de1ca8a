"""`Agent`: the public entry point. Wraps the graph, the shared VLM and the tools.

    agent = Agent()                                     # default VLM (Qwen2.5-VL-3B) + default tools
    answer = agent.run("street.jpg", "What animal is drawn on the red sign?")
    agent = Agent(vlm="openai:qwen2.5-vl@http://localhost:8000/v1", tools={"localizer": "whole_image"})

Models load lazily, once, and are shared by every node, every parallel branch and `batch`.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from lookcloser.config import AgentConfig
from lookcloser.graphs.agent_graph import graph as compiled_graph
from lookcloser.graphs.nodes import order_findings
from lookcloser.graphs.state import AgentRuntime
from lookcloser.images import ImageInput, load_image
from lookcloser.traced import TracedTool, TracedVLM, begin_image_refs, end_image_refs
from lookcloser.tracing import start_trace
from lookcloser.tools import DEFAULT_TOOLS, ROLES, ToolContext, registry
from lookcloser.types import Answer, Finding, Stats, Target
from lookcloser.usage import track_usage

DEFAULT_TRACE_DIR = "traces"


class Agent:
    """Show-Search-Tell visual agent.

    vlm: None (default TransformersVLM), a spec string ("transformers:ID_OR_PATH", "openai:MODEL@URL"),
        a VLM instance, or a LangChain chat model.
    tools: role -> registered name or instance, merged over the defaults
        (localizer "vstar", ocr "rapidocr"); e.g. {"localizer": "whole_image", "detector": my_detector}.
    tool_options: role -> keyword options for that tool's factory.
    trace_dir: where traces go (one folder per run); None switches local traces off.
    """

    def __init__(self, vlm: Any = None, tools: dict[str, Any] | None = None, *,
                 tool_options: dict[str, dict[str, Any]] | None = None, config: AgentConfig | None = None,
                 trace_dir: str | os.PathLike | None = DEFAULT_TRACE_DIR) -> None:
        from lookcloser.vlm.factory import make_vlm

        self.config = config or AgentConfig()
        self.trace_dir = Path(trace_dir) if trace_dir is not None else None
        self._vlm_spec = vlm
        self.vlm = TracedVLM(make_vlm(vlm))
        self.tool_specs = {**DEFAULT_TOOLS, **(tools or {})}
        self.tool_options = dict(tool_options or {})
        for role, spec in self.tool_specs.items():
            if role not in ROLES:
                raise ValueError(f"unknown tool role '{role}' in tools=; roles are: {', '.join(ROLES)}")
            if isinstance(spec, str):
                registry.factory(role, spec)  # fails now, listing the known names, not at first use
        self._tools: dict[tuple[str, bool], Any] = {}
        self._lock = threading.RLock()
        self.runtime = AgentRuntime(vlm=self.vlm, tool=self.tool, config=self.config, has_tool=self.has_tool)
        self.graph = compiled_graph

    # ------------------------------------------------------------------ tools
    def has_tool(self, role: str) -> bool:
        return self.tool_specs.get(role) is not None

    def tool(self, role: str, *, with_vlm: bool = True) -> Any:
        """The traced tool for `role`, built on first use and then shared (thread-safe)."""
        if not self.has_tool(role):
            raise LookupError(f"no '{role}' tool is configured; pass tools={{'{role}': NAME_OR_INSTANCE}}")
        key = (role, with_vlm)
        with self._lock:
            if key not in self._tools:
                context = ToolContext(vlm=self.vlm if with_vlm else None,
                                      resolve=lambda other: self.tool(other, with_vlm=with_vlm))
                built = registry.create(role, self.tool_specs[role], context, **self.tool_options.get(role, {}))
                self._tools[key] = TracedTool(role, built)
            return self._tools[key]

    # ------------------------------------------------------------------ running
    def run(self, image: ImageInput, question: str, options: Sequence[str] | None = None) -> Answer:
        """Answer `question` about `image`; `options` makes it multiple choice (Answer.choice)."""
        return self._execute(image, question, options, on_event=None)

    async def arun(self, image: ImageInput, question: str, options: Sequence[str] | None = None) -> Answer:
        return await asyncio.to_thread(self.run, image, question, options)

    def batch(self, items: Sequence[Any], *, max_workers: int = 2, return_exceptions: bool = False) -> list[Any]:
        """Run many questions on a thread pool sharing this agent's models.

        items: (image, question) or (image, question, options) tuples, or dicts with those keys.
        Results come back in input order; with return_exceptions=True a failed item yields its exception.
        """
        normalised = [self._normalise_item(i, item) for i, item in enumerate(items)]

        def one(args: tuple[Any, str, Sequence[str] | None]) -> Any:
            try:
                return self.run(*args)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lookcloser-batch") as pool:
            return list(pool.map(one, normalised))

    def stream(self, image: ImageInput, question: str, options: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield {"node": name, "update": {...}} as each node finishes, then {"node": "answer", "answer": Answer}."""
        events: queue.Queue = queue.Queue()
        done = object()

        def work() -> None:
            try:
                answer = self._execute(image, question, options, on_event=events.put)
                events.put({"node": "answer", "answer": answer})
            except BaseException as exc:  # handed to the consumer below
                events.put(exc)
            finally:
                events.put(done)

        threading.Thread(target=work, name="lookcloser-stream", daemon=True).start()
        while (event := events.get()) is not done:
            if isinstance(event, BaseException):
                raise event
            yield event

    def find(self, image: ImageInput, target: str | Target, kind: str = "object") -> list[Finding]:
        """SEARCH only (no VLM): locate `target` with the configured localizer."""
        target = target if isinstance(target, Target) else Target(name=target, kind=kind)
        picture = load_image(image, self.config.max_pixels)
        with_vlm = self._vlm_spec is not None
        metadata = {"vlm": self.vlm.describe()} if with_vlm else None
        with track_usage(), self._trace("lookcloser.find", {"target": target.model_dump()}, picture, metadata) as root:
            localizer = self.tool("localizer", with_vlm=with_vlm)
            findings = list(localizer.locate(picture, target)) or [
                Finding(target=target, status="not_found", tool=localizer.name)]
            root.outputs = {"findings": [f.to_json() for f in findings]}
            return findings

    # ------------------------------------------------------------------ internals
    def _execute(self, image: ImageInput, question: str, options: Sequence[str] | None, on_event: Any) -> Answer:
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty string, got {question!r}")
        option_list = self._check_options(options)
        picture = load_image(image, self.config.max_pixels)
        started = time.perf_counter()
        inputs = {"question": question, "options": option_list}
        metadata = {"vlm": self.vlm.describe()}
        with track_usage() as usage, self._trace("lookcloser.run", inputs, picture, metadata) as root:
            final: dict[str, Any] = {"image": picture, "question": question, "options": option_list, "findings": []}
            # "values" chunks are the graph's own state (reducers applied); "updates" feed stream()
            for mode, chunk in self.graph.stream(final, context=self.runtime, stream_mode=["updates", "values"]):
                if mode == "values":
                    final = chunk
                elif on_event is not None:
                    for node, update in chunk.items():
                        on_event({"node": node, "update": {k: v for k, v in (update or {}).items() if k != "image"}})
            stats = Stats(vlm_calls=usage.vlm_calls, tool_calls=usage.tool_calls,
                          search_steps=usage.search_steps, seconds=round(time.perf_counter() - started, 3))
            answer = Answer(
                text=final.get("answer"), choice=final.get("choice"),
                findings=order_findings(final.get("findings", []), final.get("targets") or []),
                stats=stats, parse_path=final.get("parse_path"),
                trace_id=root.trace_id,
                trace_dir=str(self.trace_dir / root.trace_id) if self.trace_dir else None,
            )
            root.outputs = answer.to_json()
            return answer

    @contextmanager
    def _trace(self, name: str, inputs: dict[str, Any], picture: Image.Image,
               metadata: dict[str, Any] | None) -> Iterator[Any]:
        """Open the root run; the input image is saved once (JPEG: a full-size PNG of a 12 MP photo is
        slow and large) and every later reference to it reuses that file."""
        with start_trace(self.trace_dir, name, inputs, metadata=metadata) as root:
            path = root.save_image(picture, "input", format="jpeg")
            root.inputs["image"] = path
            token = begin_image_refs({id(picture): path} if path else None)
            try:
                yield root
            finally:
                end_image_refs(token)

    @staticmethod
    def _check_options(options: Sequence[str] | None) -> list[str] | None:
        if options is None:
            return None
        if isinstance(options, str):
            raise ValueError("options must be a list of strings, not a single string")
        option_list = [str(o).strip() for o in options]
        if len(option_list) < 2 or any(not o for o in option_list):
            raise ValueError(f"options need at least two non-empty strings, got {list(options)!r}")
        if len(option_list) > 26:
            raise ValueError(f"at most 26 options (A-Z) are supported, got {len(option_list)}")
        return option_list

    @staticmethod
    def _normalise_item(index: int, item: Any) -> tuple[Any, str, Sequence[str] | None]:
        if isinstance(item, dict):
            if "image" not in item or "question" not in item:
                raise ValueError(f"batch item {index} needs 'image' and 'question' keys, got {sorted(item)}")
            return item["image"], item["question"], item.get("options")
        if isinstance(item, (tuple, list)) and len(item) in (2, 3):
            return (item[0], item[1], item[2] if len(item) == 3 else None)
        raise ValueError(f"batch item {index} must be (image, question[, options]) or a dict, got {type(item).__name__}")

