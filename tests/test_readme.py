"""The README's quickstart and papermill sections work verbatim, and running them leaves git clean.

Every command in a ```bash block of those sections is run exactly as written, in a scratch copy of the
working directory's layout (``.venv`` linked, ``notebooks/`` copied), so that what they write lands in
the scratch directory. ``make reproduce`` and ``make test`` are the exceptions: CI runs ``make test``
itself (with an empty experiment cache, which is what ``make reproduce`` computes), and each takes tens
of minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## Quickstart", "### A first look in five minutes", "### Running one notebook with other parameters")
RUN_BY_CI = ("make install", "make reproduce", "make test")

pytestmark = [pytest.mark.notebook, pytest.mark.train, pytest.mark.data]


def readme_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks under ``SECTIONS`` (each up to the next heading), with
    backslash continuations joined and comments dropped."""
    commands = []
    for heading in SECTIONS:
        start = text.index(heading + "\n")
        end = re.compile(r"^#{2,3} ", re.MULTILINE).search(text, start + len(heading))
        section = text[start : end.start() if end else len(text)]
        for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
            for command in block.replace("\\\n", " ").splitlines():
                command = re.sub(r"\s+#\s.*$", "", command).strip()
                if command and not command.startswith("#"):
                    commands.append(command)
    return commands


def test_the_sections_hold_commands():
    commands = readme_commands((ROOT / "README.md").read_text())
    assert any(c.startswith(".venv/bin/papermill ") for c in commands), commands
    assert any(" -y " in c for c in commands if "papermill" in c), "a list parameter needs papermill's -y (YAML)"
    assert all(c.startswith((".venv/bin/", "make ")) for c in commands), commands


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def test_readme_commands_run_verbatim(tmp_path):
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv: the README's commands run from the repository's virtual environment")
    before = _git_status()
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_FIGURES_DIR"}
    for command in readme_commands((ROOT / "README.md").read_text()):
        if command in RUN_BY_CI:
            continue
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "runs" / "figures" / "parameter_count.png").exists()
    assert _git_status() == before, "running the README's commands changed the repository"
