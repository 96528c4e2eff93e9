"""One recipe per scale: the recipes, `python -m workbench recipes`, YAML files, and one spec for the
command line and the notebooks."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

import workbench.cli.finetune as finetune_cli
import workbench.cli.pretrain as pretrain_cli
from workbench.cli import main
from workbench.core.options import apply_overrides, from_dict, overrides_from_args, to_dict
from workbench.experiments import (
    RECIPES,
    FinetuneSettings,
    PretrainingExperiment,
    PretrainSpec,
    Recipe,
    TransferExperiment,
    ZeroShotExperiment,
    config_key,
    load_recipe,
    recipes_table,
)
from workbench.experiments.recipes import recipe_yaml
from workbench.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def _rebuilt(instance):
    """``instance`` built again from its fields, every nested config too: runs every check once more."""
    values = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}
    return type(instance)(**{k: _rebuilt(v) if dataclasses.is_dataclass(v) else v for k, v in values.items()})


def _pretrain_spec(argv: list[str]) -> PretrainSpec:
    """The spec the pretrain command builds from ``argv``."""
    parser = argparse.ArgumentParser()
    pretrain_cli.add_arguments(parser)
    args = parser.parse_args(argv)
    return apply_overrides(pretrain_cli.recipe_from_args(args).pretraining, overrides_from_args(args, PretrainSpec))


def test_the_three_recipes_validate():
    assert list(RECIPES) == ["cpu", "gpu", "paper"]
    for name, recipe in RECIPES.items():
        assert recipe.name == name and _rebuilt(recipe) == recipe
        assert recipe.pretraining.model == "gpt" and recipe.pretraining.train.checkpoint_steps == ()
        assert {"sentiment", "next_line"} <= set(recipe.labelled) and recipe.ladder
        assert set(recipe.transfer_checkpoints) < set(recipe.pretraining.checkpoint_steps())
        assert load_recipe(name) is recipe and load_recipe(recipe) is recipe
        # the experiments accept every recipe as it stands (layers, ladder, ...)
        assert TransferExperiment.from_params(name).recipe == recipe
        assert ZeroShotExperiment.from_params(name).recipe == recipe
    assert RECIPES["cpu"].pretraining.preset == "gpt2-slim"
    assert RECIPES["paper"].pretraining.preset == "gpt1"
    # the GPU recipe is sized to the data (about 3M tokens): a 5.3M model for several epochs, early stopping
    gpu = RECIPES["gpu"]
    assert gpu.pretraining.preset == "gpt2-mini" and gpu.evaluation.checkpoint == "best"
    assert gpu.pretraining.train.steps * gpu.pretraining.train.batch_size * 128 > 5 * 2_860_000
    with pytest.raises(
        ValueError,
        match=r"unknown recipe 'laptop': expected one of \['cpu', 'gpu', 'paper'\] or the "
        r"path of an existing .yaml file",
    ):
        load_recipe("laptop")
    with pytest.raises(ValueError, match="Recipe.name must be a non-empty string, got ''"):
        dataclasses.replace(RECIPES["cpu"], name="")
    with pytest.raises(
        ValueError,
        match=r"Recipe.labelled must be a mapping from tasks \[.*\] to a positive integer "
        r"or None, got \{'nli': 5\}",
    ):
        dataclasses.replace(RECIPES["cpu"], labelled={"nli": 5})


def test_gpt1_published_values_appear_only_in_the_paper_recipe():
    paper = RECIPES["paper"]
    train, tune = paper.pretraining.train, paper.finetuning
    assert (train.lr, train.warmup_steps, train.batch_size, train.schedule) == (2.5e-4, 2000, 64, "gpt1-pretrain")
    assert (train.weight_decay, train.grad_clip, paper.pretraining.dropout) == (0.01, 1.0, 0.1)
    assert (tune.train.lr, tune.train.batch_size, tune.epochs, tune.head_dropout) == (6.25e-5, 32, 3, 0.1)
    assert tune.train.schedule == "gpt1-finetune" and paper.pretraining.preset == "gpt1"
    assert paper.labelled == {"sentiment": None, "next_line": None}  # every label
    # the laptop recipe has its own, measured values
    cpu = RECIPES["cpu"]
    assert cpu.pretraining.train.lr != 2.5e-4 and cpu.finetuning.train.lr != 6.25e-5
    # ... and no other module writes GPT-1's numbers: only the paper recipe's definition (besides
    # TrainConfig's default lr and the gpt1-pretrain schedule's default warmup, which are GPT-1's by design)
    allowed = {("workbench/training/config.py", 2.5e-4), ("workbench/training/schedules.py", 2000)}
    recipes_file = ROOT / "workbench/experiments/recipes.py"
    paper_lines = next(
        (node.lineno, node.end_lineno)
        for node in ast.parse(recipes_file.read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PAPER"
    )
    found = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and type(node.value) in (int, float)
                and node.value in (6.25e-5, 2.5e-4, 2000, 11_300)
                and (name, node.value) not in allowed
                and not (path == recipes_file and paper_lines[0] <= node.lineno <= paper_lines[1])
            ):
                found.append(f"{name}:{node.lineno}: {node.value}")
    assert found == []


def test_recipes_command_prints_them_side_by_side(capsys):
    assert main(["recipes"]) == 0
    printed = capsys.readouterr().out
    header, *rows = printed.splitlines()
    assert header.split() == ["cpu", "gpu", "paper"]
    lines = {row.split()[0]: row.split()[1:] for row in rows if row.strip() and row.split()[0] != "option"}
    assert lines["pretraining.train.steps"] == ["700", "2100", "11300"]
    assert lines["finetuning.train.lr"] == ["0.001", "0.001", "6.25e-05"]
    assert lines["pretraining.preset"] == ["gpt2-slim", "gpt2-mini", "gpt1"]
    assert lines["evaluation.checkpoint"] == ["last", "best", "last"]
    table = recipes_table()
    assert list(table.columns) == ["cpu", "gpu", "paper"] and table.index.name == "option"
    assert set(lines) == set(table.index)  # every option, none cut off
    assert lines["labelled.line_order"] == ["2560", "None"]  # one row per task; paper does not list it
    assert max(map(len, printed.splitlines())) <= 100, "the table must fit a terminal"
    assert main(["recipes", "--out", "x.yaml"]) == 2  # a usage error: one line on stderr
    assert capsys.readouterr().err.startswith("workbench recipes: error: --out x.yaml needs --yaml NAME")


def test_yaml_file_round_trips_and_edits_are_read_back(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    assert main(["recipes", "--yaml", "cpu", "--out", str(path)]) == 0
    assert f"--recipe-file {path}" in capsys.readouterr().out
    assert load_recipe(path) == RECIPES["cpu"]
    assert main(["recipes", "--yaml", "paper"]) == 0  # to stdout
    assert load_recipe(RECIPES["paper"]) == from_dict(Recipe, yaml.safe_load(capsys.readouterr().out))
    for recipe in RECIPES.values():
        assert from_dict(Recipe, yaml.safe_load(recipe_yaml(recipe))) == recipe

    data = yaml.safe_load(path.read_text())
    assert data["pretraining"]["train"]["steps"] == 700  # every option is written out
    data["pretraining"]["train"]["steps"] = 1200
    data["finetuning"]["epochs"] = None
    data["ladder"] = ["gpt2-nano", "gpt2-slim"]
    data["transfer_checkpoints"] = [275]  # kept by the recipe's 700-update run, not by a 1200-update one
    edited = tmp_path / "edited.yml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    expected = apply_overrides(
        RECIPES["cpu"],
        {
            "pretraining": {"train": {"steps": 1200}},
            "finetuning": {"epochs": None},
            "ladder": ("gpt2-nano", "gpt2-slim"),
            "transfer_checkpoints": (275,),
        },
    )
    assert load_recipe(edited) == expected
    # the commands and the experiments read the file the same way
    assert _pretrain_spec(["--recipe-file", str(edited)]) == expected.pretraining
    # the layer-transfer checkpoints must be kept steps of the edited run: the experiment says which are
    with pytest.raises(
        ValueError, match=r"steps \[275\] are not kept checkpoints .* kept steps: \[1, 3, 8, 21, 57, 158"
    ):
        TransferExperiment.from_params(edited)
    data["transfer_checkpoints"] = [1, 158]
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    expected = apply_overrides(expected, {"transfer_checkpoints": (1, 158)})
    assert TransferExperiment.from_params(edited).recipe == expected
    assert ZeroShotExperiment.from_params(edited).recipe.ladder == ("gpt2-nano", "gpt2-slim")


def test_bad_yaml_names_the_file_and_the_field(tmp_path, capsys):
    text = recipe_yaml(RECIPES["cpu"])
    cases = {
        "steps.yaml": (
            text.replace("steps: 700", "steps: -5"),
            r"TrainConfig.steps must be a positive integer, got -5",
        ),
        "unknown.yaml": (
            text.replace("n_checkpoints: 8", "n_checkpoints: 8\n  checkpoints: 3"),
            r"PretrainSpec has no option\(s\) \['checkpoints'\]; valid: \[",
        ),
        "preset.yaml": (
            text.replace("preset: gpt2-slim", "preset: gpt9"),
            r"PretrainSpec.preset must be one of \[.*\], got 'gpt9'",
        ),
        "ladder.yaml": (text.replace("- gpt2-2x64", "- gpt9"), r"Recipe.ladder must be a list of items each one of"),
        "list.yaml": ("- 1\n- 2\n", "Recipe: expected a mapping of options, got list"),
        "syntax.yaml": ("pretraining: [\n", "is not valid YAML"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        where = re.escape(str(path)) + (" " if name == "syntax.yaml" else ": ")
        with pytest.raises(ValueError, match=f"^{where}{message}"):
            load_recipe(path)
    bad = tmp_path / "steps.yaml"
    message = f"^{re.escape(str(bad))}: TrainConfig.steps must be a positive integer, got -5"
    with pytest.raises(ValueError, match=message):
        pretrain_cli.run(argparse.Namespace(recipe="cpu", recipe_file=bad))
    assert main(["pretrain", "--recipe-file", str(bad)]) == 1
    line = f"workbench pretrain: error: {bad}: TrainConfig.steps must be a positive integer, got -5\n"
    assert capsys.readouterr().err == line
    for missing in (tmp_path / "none.yaml", tmp_path / "recipe.txt"):
        with pytest.raises(ValueError, match="unknown recipe"):
            load_recipe(missing)


def test_misshapen_recipe_files_name_the_field_and_bound_the_value(tmp_path):
    """A list or a string where a section belongs, a number where a list belongs, bytes that are not
    UTF-8, a YAML bomb, a huge file and a 200,000-item value: each is one short error naming the file
    and the field, never a traceback, a MemoryError or a megabyte of repr."""
    text = recipe_yaml(RECIPES["cpu"])
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20)
    )

    def edited(change) -> str:
        data = yaml.safe_load(text)
        change(data)
        return yaml.safe_dump(data, sort_keys=False)

    cases = {
        "section-list.yaml": (
            edited(lambda d: d.update(pretraining=[1, 2])),
            r"Recipe.pretraining is a section of options: expected a mapping, got list \[1, 2\]$",
        ),
        "section-string.yaml": (
            edited(lambda d: d["pretraining"].update(train="fast")),
            r"PretrainSpec.train is a section of options: expected a mapping, got str 'fast'$",
        ),
        "steps-int.yaml": (
            edited(lambda d: d["pretraining"]["train"].update(checkpoint_steps=5)),
            r"TrainConfig.checkpoint_steps must be a list, got int 5$",
        ),
        "bomb.yaml": (bomb, r"line 2 uses a YAML alias \(\*a\); a recipe file spells every value out$"),
        "ladder.yaml": (
            text.replace("- gpt2-2x64", "\n".join(["- gpt2-2x64"] * 200_000), 1),
            r"bytes; a recipe file is at most 1,000,000",
        ),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: .*{message}") as raised:
            load_recipe(path)
        assert len(str(raised.value)) < 1000, str(raised.value)[:2000]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(text.replace("gpt2-slim", "caf\xe9").encode("latin-1"))
    with pytest.raises(ValueError, match=f"^{re.escape(str(latin))} is not UTF-8 text: invalid .* at byte"):
        load_recipe(latin)
    long = tmp_path / "long.yaml"
    long.write_text(text.replace("- gpt2-2x64", "\n".join(["- gpt9"] * 20_000), 1))  # under the size limit
    with pytest.raises(ValueError, match=r"Recipe.ladder must be a list of items each one of") as raised:
        load_recipe(long)
    assert len(str(raised.value)) < 1000
    for value in (123, None, 1.5):
        with pytest.raises(ValueError, match=r"^recipe must be one of \['cpu', 'gpu', 'paper'\], the path of a"):
            load_recipe(value)
        with pytest.raises(ValueError, match=f"got {type(value).__name__} {value}$"):
            TransferExperiment.from_params(value)


def test_the_command_line_builds_the_notebooks_spec():
    cli = _pretrain_spec(["--recipe", "cpu", "--train.steps", "1200"])
    assert cli == TransferExperiment.from_params("cpu", pretrain_steps=1200).recipe.pretraining
    longer = apply_overrides(RECIPES["cpu"], {"pretraining": {"train": {"steps": 1200}}})
    assert cli == ZeroShotExperiment.from_params(longer).spec
    assert cli == PretrainingExperiment.from_params("cpu", steps=1200).spec
    cpu = RECIPES["cpu"].pretraining
    assert _pretrain_spec(["--recipe", "cpu"]) == ZeroShotExperiment.from_params("cpu").spec == cpu
    assert _pretrain_spec([]) == cpu  # cpu is the default recipe
    for name in RECIPES:
        assert _pretrain_spec(["--recipe", name]) == TransferExperiment.from_params(name).recipe.pretraining
    assert cli.train.steps == 1200 and dataclasses.replace(cli, train=cpu.train) == cpu
    # hiding the progress bar on the command line leaves the run (and its cache entry) the same
    quiet = _pretrain_spec(["--recipe", "cpu", "--train.steps", "1200", "--train.progress", "false"])
    assert quiet != cli and quiet.key() == cli.key()
    # the finetune command's options are the recipe's fine-tuning settings, overridden the same way
    parser = argparse.ArgumentParser()
    finetune_cli.add_arguments(parser)
    args = parser.parse_args(["--recipe", "paper", "--task", "sentiment", "--train.lr", "1e-4"])
    recipe = pretrain_cli.recipe_from_args(args)
    settings = apply_overrides(recipe.finetuning, overrides_from_args(args, FinetuneSettings))
    assert settings == apply_overrides(RECIPES["paper"].finetuning, {"train": {"lr": 1e-4}})


def test_cache_keys_ignore_the_progress_bar():
    spec = RECIPES["cpu"].pretraining
    shown, hidden = (apply_overrides(spec, {"train": {"progress": p}}) for p in (True, False))
    assert shown.key() == hidden.key() and config_key(shown.key()) == config_key(hidden.key())
    assert "progress" not in shown.key()["train"] and shown.key()["train"]["steps"] == 700
    assert spec.train.progress is True  # key() leaves the spec itself alone
    assert shown.train_config(progress=False).progress is False
    assert shown.train_config().checkpoint_steps == spec.checkpoint_steps()
    for changed in ({"train": {"steps": 1401}}, {"train": {"seed": 1}}, {"preset": "gpt2-mini"}, {"n_checkpoints": 4}):
        assert apply_overrides(spec, changed).key() != spec.key(), changed
    settings = RECIPES["cpu"].finetuning
    quiet = apply_overrides(settings, {"train": {"progress": False}})
    assert quiet.key() == settings.key() and "progress" not in settings.key()["train"]
    assert apply_overrides(settings, {"threads": 2}).key() != settings.key()  # threads can change the last bits
    assert isinstance(spec.train, TrainConfig) and to_dict(spec)["train"]["progress"] is True


def test_recipes_piped_into_head_stops_quietly():
    """`python -m workbench recipes | head` closes the pipe early: no error line, no traceback."""
    result = subprocess.run(
        f"{sys.executable} -m workbench recipes | head -1", shell=True, capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[:3] == ["cpu", "gpu", "paper"]
    assert result.stderr == ""


def test_pretraining_findings_with_a_single_evaluation():
    """`02 -p steps 40` evaluates only at update 0 (eval_every is 140): the findings say so instead of
    raising an IndexError after the training."""
    experiment = PretrainingExperiment.from_params("cpu", steps=40)
    history = pd.DataFrame({"step": [0, 10, 40], "loss": [None, 8.5, 7.9], "val_loss": [9.02, None, None]})
    text = experiment.findings(SimpleNamespace(history=history))
    assert "9.02 nats at update 0" in text and "one evaluation only" in text
    history.loc[2, "val_loss"] = 8.0
    assert "still falling over the last two evaluations: True" in experiment.findings(SimpleNamespace(history=history))
