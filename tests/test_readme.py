"""The README's tables and walkthrough stay true to the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_cli_table_lists_each_command_once() -> None:
    rows = re.findall(r"^\| `(reelcart [^`]*)` \|", section("## CLI"), re.MULTILINE)
    assert "reelcart worker" in rows
    assert len(rows) == len(set(rows)), sorted(r for r in rows if rows.count(r) > 1)


def test_dashboard_table_covers_every_page_in_the_nav() -> None:
    nav = (ROOT / "api/templates/dashboard/base.html").read_text()
    table = section("## Dashboard")
    for href in re.findall(r'<a href="(/dashboard[^"]*)"', nav):
        name = href.removeprefix("/dashboard")
        assert f"`{href}`" in table or (name and f"`{name}`" in table), href


def test_try_it_creates_updates_and_completes_with_the_captured_id() -> None:
    block = section("### Try it").split("```sh", 1)[1].split("```", 1)[0]
    assert "<id>" not in block
    assert re.search(r"^ID=\$\(curl -s localhost:8000/checkout_sessions ", block, re.MULTILINE)
    calls = re.findall(r'curl -s "?localhost:8000(/checkout_sessions[^" ]*)', block)
    assert calls == ["/checkout_sessions", "/checkout_sessions/$ID",
                     "/checkout_sessions/$ID/complete"]


def test_quick_start_keeps_its_two_commands() -> None:
    quick = section("## Quick start")
    assert "```sh\nscripts/demo\n```" in quick
    assert "```sh\nscripts/test\n```" in quick
