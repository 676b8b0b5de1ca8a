"""`lookcloser eval --ray` on a local Ray: the same rows as in-process, and --resume across the two modes.

One local cluster for the whole test (it takes ~10-20 s to start on 2 cores). The actors reach the
OpenAI-compatible stub over HTTP, as a real cluster reaches a vLLM server; actors take 0.5 CPU each
(two actors at 1 CPU on a 2-core machine leave Ray's own tasks none, and it deadlocks)."""

from __future__ import annotations

import json

import pytest
from eval_helpers import knowing_reply, make_vstar
from openai_stub import StubServer, prompt_text
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app
from lookcloser.eval import read_rows

pytest.importorskip("ray")
runner = CliRunner()
STABLE = ("id", "category", "options", "shown_order", "answer", "choice", "choice_letter", "correct", "choice_mode",
          "reply", "findings", "vlm_calls", "tool_calls", "search_steps", "error")


def _stable(rows):
    return sorted(({k: r[k] for k in STABLE} for r in rows), key=lambda r: r["id"])


def test_ray_gives_the_same_results_as_in_process_and_resumes_across_modes(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    (data / "position" / "dog.json").write_text("{broken")  # an error row travels through Ray too
    with StubServer() as stub:
        stub.script = lambda request: json.loads(knowing_reply(prompt_text(request), {"Is the flag red or white?"}))["answer"]
        common = ["eval", str(data), "--vlm", stub.spec, "--tool", "localizer=whole_image", "--seed", "9", "--no-traces"]
        local = runner.invoke(app, [*common, "--out", str(tmp_path / "local")])
        assert local.exit_code == 0, local.output

        started = runner.invoke(app, [*common, "--out", str(tmp_path / "mixed"), "--limit", "2"])
        assert started.exit_code == 0, started.output
        before = len(stub.requests)
        on_ray = runner.invoke(app, [*common, "--out", str(tmp_path / "mixed"), "--resume", "--ray", "--workers", "2",
                                     "--ray-cpus", "0.5"])
        assert on_ray.exit_code == 0, on_ray.output
        assert len(stub.requests) - before == 2  # 5 items: 2 done in-process, 1 broken, 2 asked by the actors

    rows = read_rows(tmp_path / "mixed" / "results.jsonl")
    assert _stable(rows) == _stable(read_rows(tmp_path / "local" / "results.jsonl"))
    summary = json.loads((tmp_path / "mixed" / "summary.json").read_text())
    assert summary["overall"]["accuracy"] == 0.6 and summary["overall"]["errors"] == 1
    assert summary["settings"]["run"] == {"mode": "ray", "actors": 2, "address": None, "cpus_per_actor": 0.5,
                                          "gpus_per_actor": 0.0}
    assert summary["settings"]["vlm"]["described"]["backend"] == "openai"  # described by an actor's agent
