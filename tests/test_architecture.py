"""The layering contracts in pyproject.toml (import-linter, also run by scripts/test):
kept by the code as it is, and broken by a forbidden import or a cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("api", "protocols", "payment_events", "fulfillment", "commissions", "creatives",
            "checkout",
            "orders", "etsy", "attribution", "payments", "feeds", "catalog", "webhooks",
            "idempotency", "links", "models")


def _copy(repo_root: Path, dest: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(repo_root / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "templates", "static"))
    shutil.copy(repo_root / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)}, timeout=120, check=False)


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_the_code_keeps_every_contract(repo_root: Path, tmp_path: Path) -> None:
    result = _lint(_copy(repo_root, tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "code", "contract"), [
    ("checkout/domain.py", "import api.settings  # noqa", "never import the composition root"),
    ("orders/service.py", "from protocols.acp import render  # noqa",
     "never import the composition root"),
    ("models/base.py", "def _x() -> None:\n    import checkout.pricing  # noqa",
     "models imports nothing above it"),
    ("payments/provider.py", "import checkout.service  # noqa", "Layers"),
    ("orders/notify.py", "def _x() -> None:\n    from orders import service  # noqa",
     "No import cycles"),
])
def test_a_forbidden_import_breaks_a_contract(repo_root: Path, tmp_path: Path, module: str,
                                              code: str, contract: str) -> None:
    tree = _copy(repo_root, tmp_path)
    _append(tree / module, code)
    result = _lint(tree)
    assert result.returncode != 0, result.stdout[-3000:]
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout[-3000:]


def test_the_image_ships_every_package(repo_root: Path) -> None:
    """The Dockerfile copies each top-level package that pyproject.toml installs."""
    import re
    import tomllib

    config = tomllib.loads((repo_root / "pyproject.toml").read_text())
    installed = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"][
        "include"]}
    copied = set(re.findall(r"^COPY (\w+) ", (repo_root / "Dockerfile").read_text(), re.M))
    assert installed == set(PACKAGES)
    assert installed <= copied


def test_every_requirement_is_bounded_including_the_build_backend(repo_root: Path) -> None:
    """Runtime, dev and build requirements all carry a lower and an upper bound, so an
    isolated build (``pip install .``, the Dockerfile) cannot pick up a new major release
    of the build backend unannounced; and the build backend's series understands the SPDX
    ``license`` string (setuptools >= 77)."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    config = tomllib.loads((repo_root / "pyproject.toml").read_text())
    build = config["build-system"]["requires"]
    listed = [*build, *config["project"]["dependencies"],
              *(r for group in config["project"]["optional-dependencies"].values()
                for r in group)]
    unbounded = []
    for text in listed:
        operators = {spec.operator for spec in Requirement(text).specifier}
        if not (operators & {">=", ">", "==", "~="} and operators & {"<", "<=", "==", "~="}):
            unbounded.append(text)
    assert unbounded == []
    [setuptools] = [Requirement(r) for r in build if Requirement(r).name == "setuptools"]
    assert not setuptools.specifier.contains(Version("76.9"))
    assert isinstance(config["project"]["license"], str)
