"""The install path: environment.yml and pyproject.toml must not drift apart."""

from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["test"])


def _environment_requirements() -> set[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    return {r for r in pip_section if not r.startswith("-")}


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    pyproject, environment = _pyproject_requirements(), _environment_requirements()
    assert pyproject - environment == set(), "in pyproject.toml but not environment.yml"
    assert environment - pyproject == set(), "in environment.yml but not pyproject.toml"


def test_environment_yml_installs_the_package_and_python_311():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"]
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert any(r.endswith("-e .") for r in pip_section)
