"""The feed build process (``python -m feeds.build_job``), started by
``feeds.publish.build_feeds``: reads the request as JSON on stdin, builds with
``run_build`` (its own read connection), writes progress and then the report as JSON
lines on stdout. Errors go to stderr with a non-zero exit."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from feeds.builder import FeedConfig
from feeds.openai_spec import spec_for
from feeds.publish import run_build


def config_from(data: dict[str, Any]) -> FeedConfig:
    tuples = {"url_params", "shipping"}
    return FeedConfig(**{k: tuple(tuple(x) for x in v) if k in tuples else v
                         for k, v in data.items()})


def main() -> None:
    request = orjson.loads(sys.stdin.buffer.read())
    if request.get("niceness"):
        os.nice(int(request["niceness"]))
    out = sys.stdout.buffer

    def progress(variants: int) -> None:
        out.write(orjson.dumps({"progress": variants}) + b"\n")
        out.flush()

    report = run_build(request["database_url"], Path(request["out_dir"]),
                       config_from(request["config"]),
                       openai_formats=tuple(request["openai_formats"]),
                       progress=progress, spec=spec_for(request["spec_version"]))
    out.write(orjson.dumps({"report": dataclasses.asdict(report)}) + b"\n")
    out.flush()


if __name__ == "__main__":
    main()
