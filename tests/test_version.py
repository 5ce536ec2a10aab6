"""The version has one definition (gkaan_cli/version.py) that packaging and --version both read."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import gkaan_cli
from gkaan_cli.version import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_reads_the_version_from_the_package() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "a second, static version in pyproject.toml"
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert module == "gkaan_cli.version"
    assert getattr(gkaan_cli.version, name) == __version__ == gkaan_cli.__version__


def test_version_is_semver_0_2() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    assert __version__ == "0.2.0"
