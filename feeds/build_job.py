"""The feed build process (``python -m feeds.build_job``), started by
``feeds.publish.build_feeds``: reads the request as JSON on stdin, builds with
``run_build`` (its own read connection), writes progress and then the report as JSON
lines on stdout. Errors go to stderr with a non-zero exit. With a ``part`` request it
builds one key range of a parallel build (``feeds.parallel``) and answers with the part."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from feeds.builder import FeedConfig
from feeds.openai_spec import spec_for
from feeds.publish import build_part, run_build


def config_from(data: dict[str, Any]) -> FeedConfig:
    tuples = {"url_params", "shipping"}
    return FeedConfig(**{k: tuple(tuple(x) for x in v) if k in tuples else v
                         for k, v in data.items()})


def main() -> None:
    request = orjson.loads(sys.stdin.buffer.read())
    if "part" not in request:  # a build: a process group of its own, with its parts
        os.setpgid(0, 0)
    if request.get("niceness"):
        os.nice(int(request["niceness"]))
    out = sys.stdout.buffer

    def progress(variants: int) -> None:
        out.write(orjson.dumps({"progress": variants}) + b"\n")
        out.flush()

    if "part" in request:  # one key range of a parallel build (feeds.parallel)
        part = request["part"]
        outcome = build_part(
            part["database_url"], Path(part["part_dir"]), config_from(part["config"]),
            openai_formats=tuple(part["openai_formats"]), spec=spec_for(part["spec_version"]),
            acp=part["acp"], google_tsv=part["google_tsv"], after=part["after"],
            until=part["until"], snapshot_id=part["snapshot_id"], progress=progress)
        out.write(orjson.dumps({"part": outcome}) + b"\n")
        out.flush()
        return
    report = run_build(request["database_url"], Path(request["out_dir"]),
                       config_from(request["config"]),
                       openai_formats=tuple(request["openai_formats"]),
                       progress=progress, spec=spec_for(request["spec_version"]),
                       processes=int(request.get("processes", 1)))
    out.write(orjson.dumps({"report": dataclasses.asdict(report)}) + b"\n")
    out.flush()


if __name__ == "__main__":
    main()
