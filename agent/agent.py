"""`Agent`: the Python entry point. Builds the runtime context, runs the graph, returns an `Answer`.

    agent = Agent()                                     # default VLM (Qwen3-VL-8B) + default tools
    answer = agent.run("street.jpg", "What animal is drawn on the red sign?")
    agent = Agent(vlm="openai:qwen2.5-vl@http://localhost:8000/v1", tools={"localizer": "whole_image"})

Models load lazily, once, and are shared by every node, every parallel branch and `batch`.
Traces are written only when asked: `trace_dir=` or the LOOKCLOSER_TRACE_DIR environment variable.
LangSmith tracing (LANGSMITH_TRACING=true) sees the same run tree as the local trace.

Failures. Every error raised on purpose is a `LookCloserError` with a one-line message: a VLM endpoint
that fails or answers garbage is a `VLMError`; `AgentConfig(timeout=SECONDS)` bounds the whole question
(VLM calls and search) and raises `TimeLimitError` (`VLMTimeoutError` when a VLM call was waiting)
naming what was waiting. Nothing paid for is lost: when SHOW, TELL or the option scoring fails after
the search found something, `run` raises `AnswerError` (from the original error) carrying `.findings`
and `.partial`, an Answer with those findings, no text and `error` set to the message.
"""

from __future__ import annotations

import asyncio
import copy
import os
import queue
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from langchain_core.messages import AIMessageChunk

from lookcloser.core.config import STRATEGIES, AgentConfig
from lookcloser.core.deadline import time_limit
from lookcloser.core.errors import AnswerError, InputError, SettingsError
from lookcloser.graphs.agent_graph import graph as compiled_graph
from lookcloser.graphs.nodes import check_options, order_findings
from lookcloser.imaging.refs import to_ref
from lookcloser.imaging.load import ImageInput, load_image
from lookcloser.runtime.context import Context, Services
from lookcloser.core.types import Answer, Finding, Stats, Target

__all__ = ["Agent", "TRACE_DIR_ENV"]

TRACE_DIR_ENV = "LOOKCLOSER_TRACE_DIR"


def _describe(obj: Any) -> Any:
    describe = getattr(obj, "describe", None)
    try:
        return describe() if callable(describe) else type(obj).__name__
    except Exception as exc:  # describing must never break a run or its record
        return {"describe_error": str(exc)}


def _check_workers(max_workers: Any) -> None:
    if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
        raise InputError(f"max_workers must be a positive integer, got {max_workers!r}")


class Agent:
    """Show-Search-Tell visual agent.

    vlm: None (default TransformersVLM), a spec string ("transformers:ID_OR_PATH", "openai:MODEL@URL"),
        a VLM instance, or a LangChain chat model.
    tools: role -> registered name, instance, None (off), or a settings dict (name plus that tool's
        options), merged over the defaults (localizer "vstar", ocr "rapidocr"); e.g.
        {"localizer": "whole_image", "detector": my_detector} or
        {"detector": {"name": "grounding_dino", "model": "/models/gdino", "box_threshold": 0.3}}.
        An unknown name or option fails here, naming the tool, the option and the valid ones.
    tool_options: role -> keyword options for that tool's factory (the same options, set apart).
    trace_dir: write a local trace per run under this folder; default: $LOOKCLOSER_TRACE_DIR, else none.
    spelling: who wrote these settings, "python" (default) or "cli": an error that a setting fixes (a
        model that cannot load) names it as Agent keywords, or as `--tool` flags / `--config` keys.
    strategy: "vstar" (SHOW -> SEARCH -> TELL, the default) or "zoom" (the VLM zooms and calls the experts
        itself, docs/zoom.md); the same as `config=AgentConfig(strategy=...)`.
    config: AgentConfig; `timeout` (seconds, default None) bounds each question, `max_reply_chars` caps replies.
        The OpenAI client's per-call timeout and retries are OpenAIVLM options
        (`vlm=OpenAIVLM(model, base_url=..., timeout=30, max_retries=1)`); under a question's time limit a
        call never waits past it.

    Errors: see the module docstring. In short, `run` raises `AnswerError` with `.findings` and `.partial`
    (an Answer whose `error` says what failed) when the question fails after the search found something;
    otherwise the original LookCloserError (VLMError, TimeLimitError, ImageError, ...).
    """

    def __init__(self, vlm: Any = None, tools: dict[str, Any] | None = None, *,
                 tool_options: dict[str, dict[str, Any]] | None = None, config: AgentConfig | None = None,
                 trace_dir: str | os.PathLike | None = None, spelling: str = "python",
                 strategy: str | None = None) -> None:
        trace_dir = trace_dir if trace_dir is not None else os.environ.get(TRACE_DIR_ENV) or None
        self.trace_dir = Path(trace_dir) if trace_dir is not None else None
        config = config or AgentConfig()
        if strategy is not None:
            if strategy not in STRATEGIES:
                raise SettingsError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
            try:
                config = AgentConfig(**{**config.model_dump(), "strategy": strategy})
            except ValueError as exc:  # pydantic's ValidationError: the one rule it broke, in one line
                raise SettingsError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
        self.context = Context(vlm=vlm, tools=dict(tools or {}), tool_options=dict(tool_options or {}),
                               config=config)
        self.services = Services(self.context, spelling=spelling)
        self.context.pin(self.services)  # the graph uses these very models
        self.graph = compiled_graph

    @property
    def config(self) -> AgentConfig:
        return self.context.config

    @property
    def vlm(self) -> Any:
        return self.services.vlm

    def with_config(self, **changes: Any) -> "Agent":
        """This agent with some AgentConfig fields changed (checked as AgentConfig checks them), on the same
        models and tools: a per-call setting from a client (the MCP server's `max_targets`), nothing loaded twice."""
        clone = copy.copy(self)
        config = AgentConfig(**{**self.config.model_dump(), **changes})
        clone.context = self.context.model_copy(update={"config": config})  # keeps the pinned services
        return clone

    def tool(self, role: str, *, with_vlm: bool = True) -> Any:
        """The traced tool for `role`, built on first use and then shared (thread-safe)."""
        return self.services.tool(role, with_vlm=with_vlm)

    def describe(self) -> dict[str, Any]:
        """What this agent is built from, for a record of a measurement (`lookcloser eval` writes it):
        the VLM (its spec and its `describe()`), each tool role as configured (name, options) and, for the
        tools built so far, their `describe()` (model, device, ...), and the whole AgentConfig. Builds nothing."""
        built = self.services.built_tools()
        tools: dict[str, Any] = {}
        for role, spec in self.services.tool_specs.items():
            tools[role] = {"name": spec if isinstance(spec, str) or spec is None else type(spec).__name__,
                           "options": self.services.tool_options.get(role, {})}
            if role in built:
                tools[role]["described"] = _describe(built[role])
        spec = self.context.vlm
        return {"vlm": {"spec": spec if isinstance(spec, (str, dict)) or spec is None else type(spec).__name__,
                        "described": _describe(self.vlm)},
                "tools": tools, "config": self.config.model_dump(mode="json")}

    # ------------------------------------------------------------------ running
    def run(self, image: ImageInput, question: str, options: Sequence[str] | None = None) -> Answer:
        """Answer `question` about `image`; `options` makes it multiple choice (Answer.choice)."""
        return self._execute(self._ask_input(image, question, options), on_event=None)

    async def arun(self, image: ImageInput, question: str, options: Sequence[str] | None = None) -> Answer:
        return await asyncio.to_thread(self.run, image, question, options)

    def find(self, image: ImageInput, target: str | Target, kind: str = "object") -> list[Finding]:
        """SEARCH only, through the graph's own search node (time limit, failures become findings).
        Tools get the VLM only when this agent was given one explicitly."""
        target = self._target(target, kind)
        picture = load_image(image, self.config.max_pixels)
        inputs = {"image": to_ref(picture), "target": target.model_dump(mode="json")}
        return self._execute(inputs, on_event=None).findings

    def batch(self, items: Sequence[Any], *, max_workers: int = 2, return_exceptions: bool = False) -> list[Any]:
        """Run many questions on a thread pool sharing this agent's models.

        items: (image, question) or (image, question, options) tuples, or dicts with those keys; a dict
        with `image` and `target` (a name or a Target; optional `kind`) is a SEARCH-only item whose result
        is `find`'s list of findings. Results come back in input order; with return_exceptions=True a failed
        item yields its exception. A malformed item raises InputError before any item runs.
        """
        _check_workers(max_workers)
        normalised = [self._normalise_item(i, item) for i, item in enumerate(items)]
        results: list[Any] = [None] * len(normalised)
        for index, result in self._completed(iter(normalised), max_workers, return_exceptions):
            results[index] = result
        return results

    def batch_as_completed(self, items: Iterable[Any], *, max_workers: int = 2,
                           return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
        """Like `batch`, but yields (index, result) as each item finishes (LangChain's
        `Runnable.batch_as_completed`). `items` is read lazily, one item each time a worker is free, so at
        most `max_workers` items are in flight: leaving the loop early (break, an error, Ctrl-C) leaves at
        most that many unfinished, and starts no other.
        """
        _check_workers(max_workers)
        return self._completed((self._normalise_item(i, item) for i, item in enumerate(items)), max_workers,
                               return_exceptions)

    def _completed(self, items: Iterator[tuple[Any, ...]], max_workers: int,
                   return_exceptions: bool) -> Iterator[tuple[int, Any]]:
        def one(item: tuple[Any, ...]) -> Any:
            try:
                return self.find(item[1], item[2]) if item[0] == "find" else self.run(*item[1:])
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        numbered = enumerate(items)
        if max_workers == 1:  # in this thread: Ctrl-C stops the item at once
            for index, item in numbered:
                yield index, one(item)
            return
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lookcloser-batch") as pool:
            running = {pool.submit(one, item): index for index, item in islice(numbered, max_workers)}
            try:
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield running.pop(future), future.result()
                    running.update({pool.submit(one, item): index
                                    for index, item in islice(numbered, max_workers - len(running))})
            finally:
                for future in running:
                    future.cancel()

    def stream(self, image: ImageInput, question: str, options: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield {"node": name, "update": {...}} as each node finishes, {"node": "search", "progress": {...}} for each
        V* search step and finding as it happens (lookcloser.graphs.progress), {"node": "tell", "token": "..."} for
        each piece of TELL's answer as the VLM writes it (backends that stream), then {"node": "answer", "answer":
        Answer}. With strategy "zoom": {"node": "zoom_tools", "progress": {"event": "zoom", ...}} per view and
        each finding of a `find` call, {"node": "zoom_model", "token": ...} for each turn's reply as it is written
        (backends that stream)."""
        inputs = self._ask_input(image, question, options)
        events: queue.Queue = queue.Queue()
        done = object()

        def work() -> None:
            try:
                events.put({"node": "answer", "answer": self._execute(inputs, on_event=events.put)})
            except BaseException as exc:  # handed to the consumer below
                events.put(exc)
            finally:
                events.put(done)

        threading.Thread(target=work, name="lookcloser-stream", daemon=True).start()
        while (event := events.get()) is not done:
            if isinstance(event, BaseException):
                raise event
            yield event

    # ------------------------------------------------------------------ internals
    def _ask_input(self, image: ImageInput, question: str, options: Sequence[str] | None) -> dict[str, Any]:
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"question must be a non-empty string, got {question!r}")
        option_list = check_options(options)
        picture = load_image(image, self.config.max_pixels)
        return {"image": to_ref(picture), "question": question.strip(), "options": option_list}

    def _execute(self, inputs: dict[str, Any], on_event: Any) -> Answer:
        from lookcloser.tracing.jsonl import JsonlTracer  # noqa: PLC0415

        run_id = uuid.uuid4()
        callbacks = [JsonlTracer(self.trace_dir)] if self.trace_dir is not None else []
        config = {"callbacks": callbacks, "run_id": run_id}
        started = time.perf_counter()
        final: dict[str, Any] = {}
        # "values" chunks are the graph's own output state (reducers applied); "updates" feed stream()
        try:
            with time_limit(self.config.timeout):
                modes = ["updates", "values", "custom", "messages"] if on_event is not None else ["updates", "values"]
                for mode, chunk in self.graph.stream(inputs, config, context=self.context, stream_mode=modes):
                    if mode == "values":
                        final = chunk
                    elif mode == "custom":  # the search's live progress (lookcloser.graphs.progress), the zooms
                        on_event({"node": "zoom_tools" if self.config.strategy == "zoom" else "search",
                                  "progress": chunk})
                    elif mode == "messages":  # the answer's tokens (a backend that streams)
                        message, metadata = chunk
                        if isinstance(message, AIMessageChunk) and isinstance(message.content, str) and message.content:
                            on_event({"node": metadata.get("langgraph_node"), "token": message.content})
                    elif on_event is not None:
                        for node, update in chunk.items():
                            on_event({"node": node,
                                      "update": {k: v for k, v in (update or {}).items() if k != "image"}})
        except Exception as exc:
            if not final.get("findings") or "question" not in inputs:
                raise
            message = " ".join((str(exc) or type(exc).__name__).split())
            partial = self._answer(final, run_id, started).model_copy(update={"text": None, "error": message})
            raise AnswerError(f"{message} (the search's findings are kept: {len(partial.findings)} in "
                              "AnswerError.findings)", findings=partial.findings, partial=partial) from exc
        return self._answer(final, run_id, started)

    def _answer(self, final: dict[str, Any], run_id: uuid.UUID, started: float) -> Answer:
        findings = [Finding.model_validate(f) for f in final.get("findings") or []]
        return Answer(
            text=final.get("answer"), choice=final.get("choice"), choice_path=final.get("choice_path"),
            findings=order_findings(findings, final.get("targets") or []),
            stats=Stats(**(final.get("stats") or {}), seconds=round(time.perf_counter() - started, 3)),
            parse_path=final.get("parse_path"), notes=list(final.get("notes") or []), trace_id=str(run_id),
            trace_dir=str(self.trace_dir / str(run_id)) if self.trace_dir is not None else None,
        )

    @staticmethod
    def _normalise_item(index: int, item: Any) -> tuple[Any, ...]:
        """("run", image, question, options) or ("find", image, Target); InputError naming the item."""
        if isinstance(item, dict):
            if "image" in item and "target" in item and "question" not in item:
                return "find", item["image"], Agent._target(item["target"], item.get("kind", "object"),
                                                            f"batch item {index}: ")
            if "image" not in item or "question" not in item:
                raise InputError(f"batch item {index} needs 'image' and 'question' keys (or 'image' and 'target'), "
                                 f"got {sorted(item)}")
            return "run", item["image"], item["question"], item.get("options")
        if isinstance(item, (tuple, list)) and len(item) in (2, 3):
            return ("run", item[0], item[1], item[2] if len(item) == 3 else None)
        raise InputError(f"batch item {index} must be (image, question[, options]) or a dict, got {type(item).__name__}")

    @staticmethod
    def _target(target: Any, kind: str, where: str = "") -> Target:
        """A Target from a name (and kind) or a Target; InputError for an empty name or an unknown kind."""
        if isinstance(target, Target):
            return target
        if not isinstance(target, str) or not target.strip():
            raise InputError(f"{where}target must be a non-empty name or a Target, got {target!r}")
        if kind not in ("object", "text"):
            raise InputError(f"{where}kind must be 'object' or 'text', got {kind!r}")
        return Target(name=target, kind=kind)
