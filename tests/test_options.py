"""Config dataclasses as command-line options, overrides and plain dicts (core.options), and the shared
field checks they run (core.checks)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass

import pytest

from workbench.core.checks import (
    NON_EMPTY_STRING,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    Check,
    check_fields,
    in_range,
    one_of,
    optional,
    sequence_of,
)
from workbench.core.options import (
    add_arguments,
    apply_overrides,
    from_dict,
    option,
    overrides_from_args,
    to_dict,
    to_flat_dict,
)
from workbench.experiments import RECIPES, FinetuneSettings, PretrainSpec, Recipe
from workbench.training import TrainConfig


@dataclass(frozen=True)
class Inner:
    steps: int = option("updates", default=10, check=POSITIVE_INT)
    rate: float = option("rate in %", default=0.1, check=POSITIVE_NUMBER)
    limit: int | None = option("a cap", default=None, check=optional(POSITIVE_INT))
    flag: bool = option("a switch", default=True)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Outer:
    name: str = option("a name", default="base", check=NON_EMPTY_STRING)
    sizes: tuple[int, ...] = option("sizes", default=(1, 2), check=sequence_of(POSITIVE_INT, non_empty=False))
    extra: dict = option("free-form options", default_factory=dict)
    inner: Inner = option("the nested config", default_factory=Inner)

    def __post_init__(self) -> None:
        check_fields(self)


BASE = Outer(name="recipe", inner=Inner(rate=0.3))


def _parser(cls=Outer) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    add_arguments(parser, cls)
    return parser


def _overrides(argv, cls=Outer) -> dict:
    return overrides_from_args(_parser(cls).parse_args(argv), cls)


# ------------------------------------------------------------------ command line and overrides


def test_every_field_is_an_option_and_nested_ones_are_dotted():
    text = _parser().format_help()
    for flag in ("--name", "--sizes", "--extra", "--inner.steps", "--inner.rate", "--inner.limit", "--inner.flag"):
        assert flag in text
    assert "--inner " not in text  # a nested config is its fields, not an option of its own
    assert "rate in %" in text  # help text with a % survives argparse's formatting
    assert "a cap (none: unset)" in text and "updates (none" not in text  # only optional fields take none
    assert "JSON" in text  # dict options are given as JSON


def test_only_given_options_override_the_base():
    assert _overrides([]) == {}
    assert apply_overrides(BASE, {}) == BASE
    overrides = _overrides(
        [
            "--inner.steps",
            "5",
            "--sizes",
            "3",
            "4",
            "--inner.limit",
            "none",
            "--extra",
            '{"a": [1, 2]}',
            "--inner.flag",
            "False",
            "--name",
            "other",
        ]
    )
    assert overrides == {
        "name": "other",
        "sizes": (3, 4),
        "extra": {"a": [1, 2]},
        "inner": {"steps": 5, "limit": None, "flag": False},
    }
    result = apply_overrides(BASE, overrides)
    assert result == Outer(
        name="other", sizes=(3, 4), extra={"a": [1, 2]}, inner=Inner(steps=5, rate=0.3, limit=None, flag=False)
    )  # rate: the base's
    assert BASE.inner.steps == 10  # the base is not changed
    assert _overrides(["--sizes"]) == {"sizes": ()}  # an empty list
    assert apply_overrides(BASE, _overrides(["--inner.limit", "7"])).inner.limit == 7
    assert apply_overrides(BASE, _overrides(["--inner.rate", "1e-3"])).inner.rate == 1e-3
    # a nested config can also be replaced whole
    assert apply_overrides(BASE, {"inner": Inner(steps=3)}).inner == Inner(steps=3)


def test_values_of_the_wrong_type_stop_at_parsing(capsys):
    for argv, message in [
        (["--inner.steps", "none"], "expected int, got 'none'"),  # not optional
        (["--inner.steps", "2.5"], "expected int, got '2.5'"),
        (["--inner.rate", "fast"], "expected float, got 'fast'"),
        (["--inner.flag", "yes"], "expected true or false, got 'yes'"),
        (["--extra", "[1]"], "expected a JSON object, got '[1]'"),
        (["--sizes", "a"], "invalid int value: 'a'"),
    ]:
        with pytest.raises(SystemExit) as info:
            _parser().parse_args(argv)
        assert info.value.code == 2
        assert message in capsys.readouterr().err, argv


def test_unknown_names_are_listed_and_values_checked_by_their_class():
    outer_names = r"valid: \['extra', 'inner', 'name', 'sizes'\]$"
    with pytest.raises(ValueError, match=r"^Outer has no option\(s\) \['nme'\]; " + outer_names):
        apply_overrides(BASE, {"nme": "x"})
    inner_names = r"valid: \['flag', 'limit', 'rate', 'steps'\]$"
    with pytest.raises(ValueError, match=r"^Inner has no option\(s\) \['stpes'\]; " + inner_names):
        apply_overrides(BASE, {"inner": {"stpes": 1}})
    with pytest.raises(ValueError, match=r"^Inner.steps must be a positive integer, got 0$"):
        apply_overrides(BASE, {"inner": {"steps": 0}})
    with pytest.raises(
        ValueError, match=r"^Outer.sizes must be a list of items each a positive integer, got \(1, 0\)$"
    ):
        apply_overrides(BASE, _overrides(["--sizes", "1", "0"]))
    with pytest.raises(ValueError, match=r"^Inner.limit must be None or a positive integer, got -2$"):
        apply_overrides(BASE, _overrides(["--inner.limit", "-2"]))


def test_the_real_configs_take_dotted_overrides():
    spec = RECIPES["cpu"].pretraining
    overrides = _overrides(
        [
            "--preset",
            "gpt2-micro",
            "--train.steps",
            "7",
            "--train.batch-size",
            "2",
            "--train.micro-batch-size",
            "none",
            "--train.precision",
            "fp32",
            "--train.progress",
            "false",
            "--train.compile",
            "true",
        ],
        PretrainSpec,
    )
    assert overrides == {
        "preset": "gpt2-micro",
        "train": {
            "steps": 7,
            "batch_size": 2,
            "micro_batch_size": None,
            "precision": "fp32",
            "progress": False,
            "compile": True,
        },
    }
    changed = apply_overrides(spec, overrides)
    assert changed.train == spec.train.replace(steps=7, batch_size=2, precision="fp32", progress=False, compile=True)
    assert dataclasses.replace(changed, preset=spec.preset, train=spec.train) == spec
    settings = apply_overrides(
        RECIPES["cpu"].finetuning, _overrides(["--epochs", "none", "--train.lr", "1e-4"], FinetuneSettings)
    )
    assert settings.epochs is None and settings.train.lr == 1e-4 and settings.updates(1000) == settings.train.steps


# ------------------------------------------------------------------ plain dicts


def test_to_dict_from_dict_round_trip_with_tuples_and_nested_configs():
    value = Outer(name="x", sizes=(4, 5), extra={"k": (1, 2)}, inner=Inner(steps=3, limit=2, flag=False))
    data = to_dict(value)
    assert data == {
        "name": "x",
        "sizes": [4, 5],
        "extra": {"k": [1, 2]},
        "inner": {"steps": 3, "rate": 0.1, "limit": 2, "flag": False},
    }
    assert json.loads(json.dumps(data)) == data  # plain values only
    back = from_dict(Outer, data)
    assert back == dataclasses.replace(value, extra={"k": [1, 2]})  # lists inside a dict stay lists
    assert isinstance(back.sizes, tuple) and isinstance(back.inner, Inner)
    # missing fields take the class defaults, at every level
    assert from_dict(Outer, {"inner": {"steps": 3}}) == Outer(inner=Inner(steps=3))
    assert from_dict(Outer, {}) == Outer()
    config = TrainConfig(steps=20, checkpoint_steps=(5, 1), device="cpu")
    assert from_dict(TrainConfig, to_dict(config)) == config and config.checkpoint_steps == (1, 5)
    for recipe in RECIPES.values():
        assert from_dict(Recipe, json.loads(json.dumps(to_dict(recipe)))) == recipe


def test_from_dict_rejects_unknown_keys_and_bad_values():
    with pytest.raises(
        ValueError, match=r"^Outer has no option\(s\) \['bogus'\]; valid: \['extra', 'inner', 'name', 'sizes'\]$"
    ):
        from_dict(Outer, {"name": "x", "bogus": 1})
    with pytest.raises(ValueError, match=r"^Inner has no option\(s\) \['stpes'\]; valid:"):
        from_dict(Outer, {"inner": {"stpes": 3}})
    with pytest.raises(ValueError, match=r"^Outer: expected a mapping of options, got list \[1, 2\]$"):
        from_dict(Outer, [1, 2])
    with pytest.raises(ValueError, match=r"^Inner.steps must be a positive integer, got '3'$"):
        from_dict(Outer, {"inner": {"steps": "3"}})  # no silent conversion from text
    with pytest.raises(ValueError, match=r"^TrainConfig has no option\(s\) \['learning_rate'\]"):
        from_dict(
            Recipe,
            {
                **to_dict(RECIPES["cpu"]),
                "finetuning": {**to_dict(RECIPES["cpu"].finetuning), "train": {"learning_rate": 1}},
            },
        )


def test_flat_dict_uses_the_command_line_names():
    assert to_flat_dict(BASE) == {
        "name": "recipe",
        "sizes": (1, 2),
        "extra": {},
        "inner.steps": 10,
        "inner.rate": 0.3,
        "inner.limit": None,
        "inner.flag": True,
    }
    flat = to_flat_dict(RECIPES["cpu"].pretraining)
    assert flat["train.steps"] == 700 and flat["preset"] == "gpt2-slim"
    options = {action.dest for action in _parser(PretrainSpec)._actions} - {"help"}
    assert set(flat) == options


# ------------------------------------------------------------------ checks


@pytest.mark.parametrize(
    "check, good, bad, expected",
    [
        (POSITIVE_INT, [1, 10**9], [0, -1, 1.0, True, "1", None], "a positive integer"),
        (NON_NEGATIVE_INT, [0, 3], [-1, 0.0, False, None], "an integer >= 0"),
        (POSITIVE_NUMBER, [1, 0.5, 1e-12], [0, 0.0, -1.5, math.inf, math.nan, True, "1"], "a positive number"),
        (NON_NEGATIVE_NUMBER, [0, 0.0, 2.5], [-0.1, math.inf, math.nan, False, None], "a number >= 0"),
        (NON_EMPTY_STRING, ["a", " x "], ["", "   ", None, 1], "a non-empty string"),
        (one_of(["a", "b"]), ["a", "b"], ["c", None, ["a"]], "one of ['a', 'b']"),
        (one_of((1, 2)), [1, 2], [3, "1"], "one of [1, 2]"),
        (in_range(0, 1), [0, 0.5, 0.999], [1, 1.0, -0.1, math.nan, True], "a number in [0, 1)"),
        (in_range(0, 1, closed=True), [0, 1, 1.0], [1.01, -1], "a number in [0, 1]"),
        (optional(POSITIVE_INT), [None, 3], [0, "x"], "None or a positive integer"),
        (
            sequence_of(POSITIVE_INT),
            [[1], (1, 2)],
            [[], (), [1, 0], "12", 1, None],
            "a non-empty list of items each a positive integer",
        ),
        (sequence_of(one_of(["a"]), non_empty=False), [[], ("a",)], [["b"], "a"], "a list of items each one of ['a']"),
    ],
)
def test_each_check_accepts_rejects_and_names(check, good, bad, expected):
    assert check.expected == expected
    for value in good:
        assert check(value, "Thing.field") is value
    for value in bad:
        with pytest.raises(ValueError) as info:
            check(value, "Thing.field")
        assert str(info.value) == f"Thing.field must be {expected}, got {value!r}"


def test_a_check_of_ones_own():
    even = Check("an even integer", lambda v: isinstance(v, int) and v % 2 == 0)
    assert even(4, "n") == 4
    with pytest.raises(ValueError, match=r"^n must be an even integer, got 3$"):
        even(3, "n")
    assert optional(even).expected == "None or an even integer"


def test_check_fields_names_the_class_and_field_of_the_first_bad_value():
    @dataclass
    class Plain:
        count: int = option("a count", default=1, check=POSITIVE_INT)
        note: str = option("unchecked", default="")
        ratio: float = option("a ratio", default=0.5, check=in_range(0, 1))

    check_fields(Plain())
    check_fields(Plain(note=None))  # a field without a check is not checked
    with pytest.raises(ValueError, match=r"^Plain.ratio must be a number in \[0, 1\), got 2$"):
        check_fields(Plain(ratio=2))
    with pytest.raises(ValueError, match=r"^Plain.count must be a positive integer, got 0$"):
        check_fields(Plain(count=0, ratio=2))  # fields are checked in order
    with pytest.raises(ValueError, match=r"^Inner.rate must be a positive number, got -1$"):
        Inner(rate=-1)  # a dataclass that calls it from __post_init__
