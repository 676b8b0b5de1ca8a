"""A process that runs one question on a durable checkpointer until the test kills it (kill -9)."""

from __future__ import annotations

import sqlite3
import sys

from lookcloser.graphs import build_graph
from lookcloser.runtime.context import Context


def main(backend: str, uri: str, thread_id: str, vlm: str, image: str) -> None:
    context = Context(vlm=vlm, tools={"localizer": "whole_image"})
    config = {"configurable": {"thread_id": thread_id}}
    question = {"image": image, "question": "What does the sign say?"}
    if backend == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(uri) as saver:
            saver.setup()
            build_graph(checkpointer=saver).invoke(question, config, context=context)
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        saver = SqliteSaver(sqlite3.connect(uri, check_same_thread=False))
        build_graph(checkpointer=saver).invoke(question, config, context=context)


if __name__ == "__main__":
    main(*sys.argv[1:6])
