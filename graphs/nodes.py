"""The three nodes: SHOW (ask the VLM), SEARCH (one branch per missing target), TELL (answer with memory)."""

from __future__ import annotations

import contextvars
import json
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from PIL import Image

from lookcloser.images import load_image
from lookcloser.memory import VisualWorkingMemory
from lookcloser.parsing import parse_choice, parse_show
from lookcloser.prompts import options_block, render_prompt
from lookcloser.tracing import trace_run
from lookcloser.types import Finding, Target
from lookcloser.vlm.base import ChatMessage, supports

from lookcloser.graphs.state import AgentRuntime, AgentState, SearchTask


def _image(state: AgentState | SearchTask, runtime: AgentRuntime) -> Image.Image:
    image = state["image"]
    return image if isinstance(image, Image.Image) else load_image(image, runtime.config.max_pixels)


def _answer_hint(options: list[str] | None) -> str:
    return " as the letter of one option, e.g. (A)" if options else " as a short phrase"


def show(state: AgentState, runtime: AgentRuntime) -> dict[str, Any]:
    image = _image(state, runtime)
    options = state.get("options")
    with trace_run("show", "chain", {"question": state["question"], "options": options}) as run:
        prompt = render_prompt(
            "show", width=image.width, height=image.height, question=state["question"],
            options_block=options_block(options), answer_hint=_answer_hint(options),
        )
        reply = runtime.vlm.generate([ChatMessage("user", [image, prompt])], max_new_tokens=runtime.config.max_new_tokens)
        parsed = parse_show(reply.text)
        targets = parsed.targets[: runtime.config.max_targets]
        dropped = parsed.targets[runtime.config.max_targets :]
        update: dict[str, Any] = {
            "image": image, "show_reply": reply.text, "parse_path": parsed.parse_path,
            "targets": targets, "dropped_targets": dropped, "answer": parsed.answer,
        }
        if parsed.answer is not None and not targets:
            update.update(_choice(image, state["question"], options, parsed.answer, runtime))
        run.outputs = {
            "answer": parsed.answer, "parse_path": parsed.parse_path,
            "targets": [t.model_dump() for t in targets], "dropped_targets": [t.model_dump() for t in dropped],
        }
        return update


def search(task: SearchTask, runtime: AgentRuntime) -> dict[str, Any]:
    """Find one target; any exception or time-out becomes a 'failed' finding, never a crashed run."""
    target: Target = task["target"]
    image = _image(task, runtime)
    limit = runtime.config.max_search_seconds
    with trace_run("search", "chain", {"target": target.model_dump()}) as run:
        started = time.perf_counter()
        tool_name = "localizer"
        try:
            localizer = runtime.tool("localizer")
            tool_name = localizer.name
            findings = _call_with_timeout(localizer.locate, image, target, limit)
            findings = _maybe_segment(image, findings, runtime)
        except FutureTimeout:
            findings = [Finding(target=target, status="failed", tool=tool_name,
                                error=f"timed out after {limit:g} s (max_search_seconds)")]
        except Exception as exc:  # isolate tool failures: the run still answers
            findings = [Finding(target=target, status="failed", tool=tool_name, error=f"{type(exc).__name__}: {exc}")]
        if not findings:
            findings = [Finding(target=target, status="not_found", tool=tool_name)]
        run.outputs = {"findings": [f.to_json() for f in findings], "seconds": round(time.perf_counter() - started, 3)}
        return {"findings": findings}


def _call_with_timeout(func: Any, image: Image.Image, target: Target, limit: float) -> list[Finding]:
    """Run `func` in a worker thread (in this context, so tracing nests) and wait at most `limit` s.

    A timed-out worker cannot be killed; it finishes in the background and its result is dropped.
    """
    context = contextvars.copy_context()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookcloser-search")
    try:
        future = executor.submit(context.run, func, image, target)
        return list(future.result(timeout=limit))
    finally:
        executor.shutdown(wait=False)


def _maybe_segment(image: Image.Image, findings: list[Finding], runtime: AgentRuntime) -> list[Finding]:
    """Grounded-SAM style: found object boxes become segmenter prompts (one batched call)."""
    if not runtime.config.segment_found or not runtime.has_tool("segmenter"):
        return findings
    todo = [f for f in findings if f.status == "found" and f.box is not None and f.target.kind == "object"]
    if not todo:
        return findings
    segmenter = runtime.tool("segmenter")
    try:
        masks = segmenter.segment(image, [f.box for f in todo])
    except Exception as exc:
        return [f.model_copy(update={"error": f"segmenter {segmenter.name} failed: {type(exc).__name__}: {exc}"})
                if f in todo else f for f in findings]
    by_id = {id(f): m for f, m in zip(todo, masks)}
    return [f.model_copy(update={"mask": by_id[id(f)]}) if id(f) in by_id else f for f in findings]


def tell(state: AgentState, runtime: AgentRuntime) -> dict[str, Any]:
    image = _image(state, runtime)
    options = state.get("options")
    findings = order_findings(state.get("findings", []), state.get("targets", []))
    with trace_run("tell", "chain", {"findings": [f.to_json() for f in findings]}) as run:
        memory = VisualWorkingMemory(image, state["question"], findings, max_crops=runtime.config.max_crops)
        memory_text, crops = memory.render()
        prompt = render_prompt(
            "tell", width=image.width, height=image.height, memory=memory_text, question=state["question"],
            options_block=options_block(options), answer_hint=_answer_hint(options),
        )
        reply = runtime.vlm.generate([ChatMessage("user", [image, *crops, prompt])],
                                     max_new_tokens=runtime.config.max_new_tokens)
        answer = _final_answer_text(reply.text)
        update: dict[str, Any] = {"answer": answer, **_choice(image, state["question"], options, answer, runtime)}
        run.outputs = {"answer": answer, "choice": update.get("choice"), "crops": len(crops)}
        return update


def order_findings(findings: list[Finding], targets: list[Target]) -> list[Finding]:
    """Parallel branches finish in any order; put findings back in the order SHOW named the targets."""
    rank = {target: i for i, target in enumerate(targets)}
    return sorted(findings, key=lambda f: rank.get(f.target, len(rank)))


def _final_answer_text(text: str) -> str:
    """TELL may still answer in SHOW's JSON shape; take its "answer" field then."""
    stripped = text.strip()
    parsed = parse_show(stripped)
    if parsed.parse_path in ("json", "json_fence") and parsed.answer:
        return parsed.answer
    try:
        data = json.loads(stripped)
        if isinstance(data, dict) and data.get("answer"):
            return str(data["answer"]).strip()
    except (json.JSONDecodeError, ValueError):
        pass
    return stripped


def _choice(image: Image.Image, question: str, options: list[str] | None, answer: str | None,
            runtime: AgentRuntime) -> dict[str, Any]:
    """Option index from the answer text; if it names none and the VLM can score options, use likelihoods."""
    if not options:
        return {"choice": None, "choice_path": None}
    choice = parse_choice(answer, options)
    if choice is not None:
        return {"choice": choice, "choice_path": "text"}
    if supports(runtime.vlm, "score_options"):
        scores = runtime.vlm.score_options(image, question, options)
        return {"choice": int(max(range(len(scores)), key=scores.__getitem__)), "choice_path": "likelihood"}
    return {"choice": None, "choice_path": "unmatched"}
