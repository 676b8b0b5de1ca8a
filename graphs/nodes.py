"""The nodes: read the input, SHOW (ask the VLM), SEARCH (one branch per missing target), TELL.

Each node reads plain state, resolves the image reference, uses the services of the runtime context
(`lookcloser.runtime.context`) and returns a plain-JSON update. VLM and tool calls below a node are child
runs of that node's run (langchain-core nests them), and `counting()` counts them into `stats`.
"""

from __future__ import annotations

import contextvars
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Overwrite
from PIL import Image

from lookcloser.core.config import AgentConfig, cap_text
from lookcloser.core.deadline import time_left, time_limit, time_limit_seconds
from lookcloser.graphs.counting import COUNTERS, counting
from lookcloser.core.errors import InputError, TimeLimitError
from lookcloser.imaging.refs import resolve_image
from lookcloser.graphs.memory import VisualWorkingMemory
from lookcloser.core.parsing import parse_choice, parse_show
from lookcloser.prompts import options_block, render_prompt
from lookcloser.runtime.context import Services
from lookcloser.core.types import Finding, Mask, Target
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply, supports

from lookcloser.graphs.progress import finding_event, step_events
from lookcloser.graphs.state import AgentState, SearchTask

__all__ = ["check_options", "image_in_messages", "localizer_batches", "order_findings", "read_input", "search",
           "segment", "show", "tell", "wants_masks", "within_time_limit"]


def _counts(stats: Any) -> dict[str, int]:
    """The node's counters as the `stats` state update (seconds are the Agent's)."""
    return {name: getattr(stats, name) for name in COUNTERS}


def _answer_hint(options: list[str] | None) -> str:
    return " as the letter of one option, e.g. (A)" if options else " as a short phrase"


def _chat_reply(state: AgentState, text: str | None, message_id: str | None = None) -> dict[str, Any]:
    """Chat input gets its answer as an AI message appended to `messages`; with the id of the VLM reply
    it comes from, so a client that watched that reply stream sees this message replace it, not a second one."""
    return {"messages": [AIMessage(content=text or "", id=message_id)]} if state.get("mode") == "chat" else {}


# ----------------------------------------------------------------------------------- input
def check_options(options: Any) -> list[str] | None:
    """At least two distinct non-empty strings (at most 26: A-Z), stripped; else one InputError line."""
    if options is None:
        return None
    if isinstance(options, str):
        raise InputError("options must be a list of strings, not a single string")
    if not isinstance(options, (list, tuple)):
        raise InputError(f"options must be a list of strings, got {type(options).__name__}")
    wrong = [o for o in options if not isinstance(o, str)]
    if wrong:
        raise InputError(f"options must be strings, got {type(wrong[0]).__name__} {str(wrong[0])[:40]!r} among them")
    option_list = [o.strip() for o in options]
    if len(option_list) < 2 or any(not o for o in option_list):
        raise InputError(f"options need at least two non-empty strings, got {[o[:40] for o in options]!r}")
    if len(option_list) > 26:
        raise InputError(f"at most 26 options (A-Z) are supported, got {len(option_list)}")
    seen: dict[str, int] = {}
    for i, option in enumerate(option_list):
        if option.casefold() in seen:
            raise InputError(f"options {chr(65 + seen[option.casefold()])} and {chr(65 + i)} are the same "
                             f"({option[:40]!r}): a choice between them could not be told apart")
        seen[option.casefold()] = i
    return option_list


def _from_chat(messages: list[Any]) -> tuple[str, str | None]:
    """(question, image reference or None) from the last user message's text and image parts."""
    last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    if last is None:
        raise InputError("chat input needs a user message with a question (and an image)")
    content = last.content if isinstance(last.content, list) else [{"type": "text", "text": str(last.content)}]
    texts, image = [], None
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        else:
            image = _image_part(part) or image
    question = " ".join(t.strip() for t in texts if t.strip())
    if not question:
        raise InputError("the last user message has no text: ask a question about the image")
    return question, image


def _image_part(part: dict[str, Any]) -> str | None:
    """The image reference of one content block: OpenAI `image_url`, LangChain `image` (base64 or url), or
    Agent Chat UI's `{"type": "image", "mimeType", "data"}`; None for any other block."""
    kind = part.get("type")
    if kind == "image_url":
        url = part.get("image_url")
        return url.get("url") if isinstance(url, dict) else url
    if kind == "image":
        if part.get("base64"):
            return f"data:{part.get('mime_type', 'image/png')};base64,{part['base64']}"
        data, mime = part.get("data"), part.get("mimeType") or part.get("mime_type")
        if isinstance(data, str) and mime and not data.startswith("data:"):
            # a data URL, as the block says what it holds: a JPEG's raw base64 begins "/9j/", like a path
            return f"data:{mime};base64,{data}"
        return part.get("url") or data
    return None


def image_in_messages(messages: list[Any]) -> str | None:
    """The image of the last user message that has one (the photo a chat is about), or None."""
    for message in reversed(messages):
        role = message.get("role") or message.get("type") if isinstance(message, dict) else getattr(message, "type", "")
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        if role not in ("human", "user") or not isinstance(content, list):
            continue
        images = [found for part in content if isinstance(part, dict) and (found := _image_part(part))]
        if images:
            return images[-1]
    return None


def read_input(state: AgentState, services: Services, config: AgentConfig) -> dict[str, Any]:
    """Validate the input and start a fresh turn: image + question (+ options), chat messages, or a
    SEARCH-only `target`. Per-turn outputs from an earlier turn of the thread are reset."""
    update: dict[str, Any] = {
        "answer": None, "choice": None, "choice_path": None, "parse_path": None, "targets": [],
        "dropped_targets": [], "findings": Overwrite([]), "stats": Overwrite({}), "notes": [],
        "zoom_turns": [], "views": [], "zoom_done": False,
    }
    if state.get("target"):
        target = Target.model_validate(state["target"])
        update.update(mode="find", target=None, targets=[target.model_dump(mode="json")],
                      search_with_vlm=services.vlm_spec is not None)
    elif state.get("question") and state.get("image") and not _newer_chat_turn(state):
        update.update(mode="ask", question=str(state["question"]).strip(), options=check_options(state.get("options")))
    elif state.get("messages"):
        question, image = _from_chat(state["messages"])
        image = image or state.get("image")  # a follow-up question may talk about the same image
        if not image:
            raise InputError("the chat message has no image part and the thread has no image yet")
        update.update(mode="chat", question=question, image=image, options=None)
    else:
        raise InputError("graph input needs 'image' and 'question', chat 'messages', or 'image' and 'target'")
    image = resolve_image(update.get("image", state.get("image")), config)
    frames = image.info.get("lookcloser_frames")
    if frames and frames > 1:
        frame = int(image.info.get("lookcloser_frame") or 0)
        used = "the first one was used" if frame == 0 else f"frame {frame + 1} (the one the image was at) was used"
        update["notes"] = [f"the image has {frames} frames or pages; {used}"]
    return update


def _newer_chat_turn(state: AgentState) -> bool:
    """In a chat thread, a new user message after the last answer starts a new turn."""
    messages = state.get("messages") or []
    return state.get("mode") == "chat" and bool(messages) and isinstance(messages[-1], HumanMessage)


# ------------------------------------------------------------------------------ time limit
def within_time_limit(node: Any) -> Any:
    """Run `node(state, services, config)` under the question's deadline (set by Agent around the whole run);
    a served graph has none, so each node gets AgentConfig.timeout of its own. The earlier deadline wins."""
    @functools.wraps(node)
    def bounded(state: Any, services: Services, config: AgentConfig) -> dict[str, Any]:
        with time_limit(config.timeout):
            return node(state, services, config)
    return bounded


def _check_time(what: str, services: Services) -> None:
    """Raise TimeLimitError before starting `what` when the question's time is already up."""
    left = time_left()
    if left is not None and left <= 0:
        raise TimeLimitError(f"the time limit of {time_limit_seconds():g} s ran out before {what} "
                             f"({services.vlm.name})")


def _ask_vlm(step: str, images: list[Image.Image], image: Image.Image, state: AgentState, services: Services,
             config: AgentConfig, **fields: Any) -> VLMReply:
    """Fill the `step` prompt (image size, question, options) and ask the VLM with `images`; its reply.
    TELL's reply is the user's answer: it goes to LangGraph's `messages` stream (token by token when the
    backend streams); SHOW's JSON does not."""
    options = state.get("options")
    prompt = render_prompt(step, width=image.width, height=image.height, question=state["question"],
                           options_block=options_block(options), answer_hint=_answer_hint(options), **fields)
    _check_time(f"{step.upper()}'s VLM call", services)
    return services.vlm.generate([ChatMessage("user", [*images, prompt])],
                                 max_new_tokens=config.max_new_tokens, answer=step == "tell")


# ------------------------------------------------------------------------------------ show
@within_time_limit
def show(state: AgentState, services: Services, config: AgentConfig) -> dict[str, Any]:
    image = resolve_image(state["image"], config)
    options = state.get("options")
    with counting() as stats:
        reply = _ask_vlm("show", [image], image, state, services, config).text
        parsed = parse_show(cap_text(reply, config.max_reply_chars))
        targets = [t.model_dump(mode="json") for t in parsed.targets[: config.max_targets]]
        dropped = [t.model_dump(mode="json") for t in parsed.targets[config.max_targets:]]
        update: dict[str, Any] = {
            "parse_path": parsed.parse_path, "targets": targets, "dropped_targets": dropped, "answer": parsed.answer,
        }
        if dropped:
            names = ", ".join(t["name"] for t in dropped)
            update["notes"] = [*state.get("notes", []), f"SHOW named {len(dropped)} target(s) past max_targets="
                                                        f"{config.max_targets}, not searched: {names}"]
        if config.ablate == "no-search" and targets:
            update.update(_no_search(state, update))
        if parsed.answer is not None and not update["targets"]:
            update.update(_choice(image, state["question"], options, parsed.answer, services, config))
            update.update(_chat_reply(state, parsed.answer))
        elif config.ablate == "no-search":  # SHOW did not answer, and nothing comes after it
            update.update(answer=None, choice=None, choice_path="unanswered")
            update.update(_chat_reply(state, None))
    update["stats"] = _counts(stats)
    return update


def _no_search(state: AgentState, update: dict[str, Any]) -> dict[str, Any]:
    """The no-search ablation: SHOW's targets are not searched (kept as dropped, with a note saying so). A reply
    that names targets has no answer (the prompt contract ignores its "answer"), so the question stays unanswered."""
    targets = update["targets"]
    names = ", ".join(t["name"] for t in targets)
    notes = [*update.get("notes", state.get("notes", [])),
             f"ablate=no-search: SHOW named {len(targets)} target(s) instead of answering, not searched ({names}); "
             "the question is unanswered"]
    return {"targets": [], "dropped_targets": [*targets, *update["dropped_targets"]], "notes": notes}


# ---------------------------------------------------------------------------------- search
def localizer_batches(services: Services) -> bool:
    """Whether the configured localizer finds several targets in one call (`locate_many`), without building it."""
    return services.batches("localizer")


@within_time_limit
def search(task: SearchTask, services: Services, config: AgentConfig) -> dict[str, Any]:
    """Find the branch's targets; any exception or time-out becomes a 'failed' finding per target, never
    a crashed run. It runs for at most max_search_seconds, and never past the question's time limit."""
    targets = [Target.model_validate(t) for t in task["targets"]]
    image = resolve_image(task["image"], config)
    limit = config.max_search_seconds
    why = f"timed out after {limit:g} s (max_search_seconds)"
    left = time_left()
    if left is not None and left < limit:
        limit = max(0.0, left)
        why = f"stopped after {limit:.3g} s: the question's time limit of {time_limit_seconds():g} s ran out"
    tool_name = "localizer"
    with counting() as stats, step_events() as write:  # each step and finding streamed (custom stream mode)
        try:
            localizer = services.tool("localizer", with_vlm=task.get("with_vlm", True))
            tool_name = localizer.name
            with time_limit(limit):  # passed down: the V* search stops itself when it runs out
                per_target = _call_with_timeout(_locate, localizer, image, targets, limit=limit)
        except FutureTimeout:
            per_target = [[Finding(target=t, status="failed", tool=tool_name, error=why)] for t in targets]
        except Exception as exc:  # isolate tool failures: the run still answers
            error = f"{type(exc).__name__}: {exc}"
            per_target = [[Finding(target=t, status="failed", tool=tool_name, error=error)] for t in targets]
        findings = [f for target, found in zip(targets, per_target)
                    for f in (found or [Finding(target=target, status="not_found", tool=tool_name)])]
        for finding in findings:
            write(finding_event(finding))
    return {"findings": [f.model_dump(mode="json") for f in findings], "stats": _counts(stats)}


def _locate(localizer: Any, image: Image.Image, targets: list[Target]) -> list[list[Finding]]:
    """One list of findings per target: one `locate_many` call for a batch, else `locate`."""
    if len(targets) > 1:
        results = [list(found) for found in localizer.locate_many(image, targets)]
        if len(results) != len(targets):
            raise RuntimeError(f"{localizer.name}.locate_many returned {len(results)} results for "
                               f"{len(targets)} targets")
        return results
    return [list(localizer.locate(image, targets[0]))]


def _call_with_timeout(func: Any, *args: Any, limit: float) -> Any:
    """Run `func(*args)` in a worker thread (in this context, so tracing, counting and the deadline reach it)
    for at most `limit` s. A worker cannot be killed: the V* search checks the deadline between steps and
    stops; a single call that cannot be interrupted (one model forward) finishes in the background, its
    result dropped."""
    context = contextvars.copy_context()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookcloser-search")
    try:
        return executor.submit(context.run, func, *args).result(timeout=limit)
    finally:
        executor.shutdown(wait=False)


# --------------------------------------------------------------------------------- segment
def wants_masks(services: Services, config: AgentConfig) -> bool:
    return config.segment_found and services.has_tool("segmenter")


@within_time_limit
def segment(state: AgentState, services: Services, config: AgentConfig) -> dict[str, Any]:
    """Grounded-SAM: every found object box of the image (all targets) goes to the segmenter in ONE
    call; each finding gets the mask of its box. A failing segmenter leaves the boxes and says why."""
    findings = [Finding.model_validate(f) for f in state.get("findings") or []]
    todo = [i for i, f in enumerate(findings) if f.status == "found" and f.box is not None and f.target.kind == "object"]
    if not todo:
        return {}
    image = resolve_image(state["image"], config)
    with_vlm = state.get("mode") != "find" or bool(state.get("search_with_vlm"))
    with counting() as stats:
        segmenter = services.tool("segmenter", with_vlm=with_vlm)
        try:
            _check_time("the segmenter call", services)
            results = list(segmenter.segment(image, [findings[i].box for i in todo]))
            if len(results) != len(todo):
                raise RuntimeError(f"{len(results)} masks for {len(todo)} boxes")
            updates = {i: {"mask": _as_mask(r)} for i, r in zip(todo, results) if _as_mask(r) is not None}
        except Exception as exc:  # the boxes still answer; the finding says why it has no mask
            updates = {i: {"error": f"segmenter {segmenter.name} failed: {type(exc).__name__}: {exc}"} for i in todo}
    findings = [f.model_copy(update=updates[i]) if i in updates else f for i, f in enumerate(findings)]
    return {"findings": Overwrite([f.model_dump(mode="json") for f in findings]), "stats": _counts(stats)}


def _as_mask(result: Any) -> Mask | None:
    mask = getattr(result, "mask", result)
    if mask is None or isinstance(mask, Mask):
        return mask
    return Mask.from_array(mask)


# ------------------------------------------------------------------------------------ tell
@within_time_limit
def tell(state: AgentState, services: Services, config: AgentConfig) -> dict[str, Any]:
    image = resolve_image(state["image"], config)
    options = state.get("options")
    findings = order_findings([Finding.model_validate(f) for f in state.get("findings") or []],
                              state.get("targets") or [])
    with counting() as stats:
        memory = VisualWorkingMemory(
            image, state["question"], findings, max_crops=config.max_crops, crop_factor=config.crop_factor,
            crop_min_size=config.crop_min_size, mask_background=config.mask_background,
            max_text_chars=config.max_text_chars,
            max_text_lines=config.max_text_lines, black_crops=config.ablate == "crop-black")
        memory_text, crops = memory.render()
        reply = _ask_vlm("tell", [image, *crops], image, state, services, config, memory=memory_text)
        answer = cap_text(_final_answer_text(reply.text), config.max_reply_chars)
        scored = ([image, *crops], f"{memory_text}\n{state['question']}") if memory_text else (image, state["question"])
        update: dict[str, Any] = {"answer": answer, **_choice(*scored, options, answer, services, config)}
    update.update(_chat_reply(state, answer, reply.message_id))
    update["stats"] = _counts(stats)
    return update


def order_findings(findings: list[Finding], targets: list[Any]) -> list[Finding]:
    """Parallel branches finish in any order; put findings back in the order SHOW named the targets."""
    rank: dict[tuple[str, str], int] = {}
    for i, target in enumerate(targets):
        t = target if isinstance(target, Target) else Target.model_validate(target)
        rank.setdefault((t.name, t.kind), i)
    return sorted(findings, key=lambda f: rank.get((f.target.name, f.target.kind), len(rank)))


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


def _choice(image: Image.Image | list[Image.Image], question: str, options: list[str] | None, answer: str | None,
            services: Services, config: AgentConfig) -> dict[str, Any]:
    """Option index from the answer text; if it names none and the VLM can score options, use likelihoods.
    With AgentConfig.choice == "likelihood", a VLM that can score options always picks by likelihood."""
    if not options:
        return {"choice": None, "choice_path": None}
    can_score = supports(services.vlm, "score_options")
    choice = None if can_score and config.choice == "likelihood" else parse_choice(answer, options)
    if choice is not None:
        return {"choice": choice, "choice_path": "text"}
    if can_score:
        _check_time("scoring the options", services)
        scores = services.vlm.score_options(image, question, options)
        return {"choice": int(max(range(len(scores)), key=scores.__getitem__)), "choice_path": "likelihood"}
    return {"choice": None, "choice_path": "unmatched"}
