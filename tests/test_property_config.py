"""Property tests over the configuration space (hypothesis): overrides drawn from the schema's
keys (twin/schema.py) with values of the wrong type, out of bounds and in bounds, and keys that
do not exist. Every composition either validates or ends in one line: a :class:`TwinError`, or
an error the ``twin`` command turns into one line with exit status 2 (``twin.cli.describe``) --
never another exception, never the "bug" path. In-bounds values of bounded keys validate. A few
examples go through the real command line.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import subprocess
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.cli import EXIT_BAD_INPUT, _precheck, describe
from twin.config import compose, validate
from twin.errors import TwinError
from twin.schema import CONTRACT_SCHEMAS, STUDY_SCHEMAS, TwinConfig

SKIP = {"name", "solver", "weights", "highs_options", "tou", "dynamic", "capacity", "label"}


def _leaves(schema: type, prefix: str = "") -> list[tuple[str, Any, dict[str, Any]]]:
    """(dotted key, type, metadata) of every scalar field of a schema."""
    out = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            out += _leaves(hint, f"{prefix}{f.name}.")
        elif f.name not in SKIP and hint is not Any:
            out.append((f"{prefix}{f.name}", hint, dict(f.metadata)))
    return out


# (the group choice that makes the key exist, key, type, metadata)
KEYS: list[tuple[list[str], str, Any, dict[str, Any]]] = [
    ([], key, hint, meta) for key, hint, meta in _leaves(TwinConfig)
]
for _name, _schema in CONTRACT_SCHEMAS.items():
    KEYS += [([f"contract={_name}"], k, h, m) for k, h, m in _leaves(_schema, "contract.")]
for _name, _schema in STUDY_SCHEMAS.items():
    KEYS += [([f"study={_name}"], k, h, m) for k, h, m in _leaves(_schema, "study.")]
BOUNDED = [k for k in KEYS if k[3].get("choices") or k[3].get("low") is not None]


def _base(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in typing.get_args(hint) else hint


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def in_bounds(entry) -> st.SearchStrategy[str]:
    _, key, hint, meta = entry
    if meta.get("choices"):
        return st.sampled_from([_fmt(c) for c in meta["choices"]])
    low, high = meta["low"], meta["high"]
    if _base(hint) is int:
        return st.integers(int(low), int(high)).map(_fmt)
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(_fmt)


def out_of_bounds(entry) -> st.SearchStrategy[str]:
    _, key, hint, meta = entry
    if meta.get("choices"):
        return st.text("abcxyz_", min_size=1, max_size=8).filter(
            lambda t: t not in map(str, meta["choices"])
        )
    low, high = meta["low"], meta["high"]
    delta = st.floats(1e-3, 1e6, allow_nan=False)
    if _base(hint) is int:
        delta = st.integers(1, 10**6)
    return st.one_of(delta.map(lambda d: low - d), delta.map(lambda d: high + d)).map(_fmt)


WRONG = st.one_of(
    st.sampled_from(
        [
            "abc",
            "1.5",
            "-0.5",
            "true",
            "null",
            "[1,2]",
            "{a: 1}",
            "''",
            "${seed}",
            "${nope}",
            "1e400",
            "nan",
            "inf",
            "0x10",
            "1_000",
            "[",
            "${",
            "a,b",
            "'a b'",
            "~",
            "",
        ]
    ),
    st.text("ab1.-_ ,[]{}$'\"=:~%", max_size=10),
)


def overrides_for(entry, value: str) -> list[str]:
    choice, key, _, _ = entry
    return [*choice, f"{key}={value}"]


def _judged(overrides: list[str], make: Callable[[], Any]) -> str:
    """Read ``overrides`` as the CLI does, then validate the configuration ``make()`` returns;
    'ok' or 'error' (one line)."""
    try:
        _precheck(overrides)  # the CLI reads the command line with Hydra's own parsers first
        validate(make())
    except TwinError as err:
        assert "\n" not in str(err) and str(err).strip(), repr(str(err))
        return "error"
    except Exception as err:  # noqa: BLE001 - must be one the CLI turns into one line
        line, status = describe(err, overrides)
        assert status == EXIT_BAD_INPUT, f"{overrides}: {type(err).__name__}: {err} -> {line}"
        assert line and "\n" not in line
        return "error"
    return "ok"


def outcome(overrides: list[str]) -> str:
    """Compose and validate as ``twin <overrides>`` would; 'ok' or 'error' (one line)."""
    return _judged(overrides, lambda: compose(overrides))


@functools.cache
def _composed(choice: tuple[str, ...]) -> Any:
    """The configuration ``twin <choice>`` composes to, once per group choice (in struct mode,
    as Hydra holds it while it applies the command line's key overrides)."""
    from omegaconf import OmegaConf

    cfg = compose(list(choice))
    OmegaConf.set_struct(cfg, True)
    return cfg


def outcome_of_value(entry, value: str) -> str:
    """:func:`outcome` of ``overrides_for(entry, value)`` for a plain value (a number or a
    name: no sweep, no interpolation), without composing again: the override is applied to
    the composed group choice by the function Hydra's compose applies key overrides with
    (``ConfigLoaderImpl._apply_overrides_to_config``), so the same configuration is validated
    in a hundredth of the time (:func:`test_the_shortcut_validates_what_compose_does`)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = overrides_for(entry, value)

    def applied() -> Any:
        cfg = copy.deepcopy(_composed(tuple(entry[0])))
        parsed = OverridesParser.create().parse_overrides([overrides[-1]])
        ConfigLoaderImpl._apply_overrides_to_config(parsed, cfg)
        return cfg

    return _judged(overrides, applied)


FAST = settings(
    max_examples=int(os.environ.get("TWIN_HYPOTHESIS_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


@FAST
@given(st.sampled_from(BOUNDED).flatmap(lambda e: in_bounds(e).map(lambda v: (e, v))))
def test_in_bounds_values_validate(drawn):
    entry, value = drawn
    assert outcome_of_value(entry, value) == "ok", (entry[1], value)


@FAST
@given(st.sampled_from(BOUNDED).flatmap(lambda e: out_of_bounds(e).map(lambda v: (e, v))))
def test_out_of_bounds_values_are_one_line_errors(drawn):
    entry, value = drawn
    assert outcome_of_value(entry, value) == "error", (entry[1], value)


@pytest.mark.parametrize("entry", BOUNDED[::7], ids=lambda e: e[1])
def test_the_shortcut_validates_what_compose_does(entry):
    """The bounds tests' shortcut (:func:`outcome_of_value`) and a full composition agree, in
    bounds and out of them (every seventh bounded key, its lowest and just below/its choices
    and a name that is none of them)."""
    _, key, hint, meta = entry
    if meta.get("choices"):
        values = [_fmt(meta["choices"][0]), "zz_none"]
    else:
        low = meta["low"]
        values = [_fmt(low), _fmt(low - 1 if _base(hint) is int else low - 0.5)]
    for value in values:
        assert outcome_of_value(entry, value) == outcome(overrides_for(entry, value)), (key, value)


@FAST
@given(st.sampled_from(KEYS), WRONG)
def test_values_of_any_type_validate_or_give_one_line(entry, value):
    outcome(overrides_for(entry, value))


@FAST
@given(
    st.lists(
        st.one_of(
            st.sampled_from(KEYS).flatmap(
                lambda e: st.one_of(WRONG, in_bounds(e) if e in BOUNDED else WRONG).map(
                    lambda v: f"{e[1]}={v}"
                )
            ),
            st.from_regex(r"\A[+~]?[a-z_]{1,8}(\.[a-z_]{1,8})?=[a-z0-9]{0,4}\Z"),
            st.sampled_from(
                [
                    f"{g}={o}"
                    for g in ("contract", "study", "sim", "tariff")
                    for o in ("firm", "performance", "hosting", "day", "tou", "perfomance", "x")
                ]
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_random_command_lines_validate_or_give_one_line(overrides):
    outcome(overrides)


# --------------------------------------------------------------------------- the real CLI

NUMERIC = [k for k in BOUNDED if not k[3].get("choices")]


@settings(max_examples=6, deadline=None, database=None)
@given(
    st.sampled_from(NUMERIC).flatmap(
        lambda e: st.one_of(out_of_bounds(e), st.sampled_from(["abc", "[1]", "${nope}"])).map(
            lambda v: (e, v)
        )
    )
)
def test_bad_values_through_the_real_cli_end_in_one_line(tmp_path_factory, twin_exe, drawn):
    entry, value = drawn
    folder: Path = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "TWIN_DEBUG")}
    proc = subprocess.run(
        [twin_exe, "sim=day", *overrides_for(entry, value), f"paths.results_dir={folder}"],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**env, "MPLBACKEND": "Agg"},
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("twin: error: "), proc.stderr
    assert not list(folder.rglob("DONE"))
    assert not [p for p in folder.glob("runs/*")], "a failed call left a run folder"


def test_the_key_space_is_the_schemas():
    """The strategies cover every bounded key of the schema (so new keys are tested too)."""
    from twin.schema import bounds_of

    keys = {k for _, k, _, _ in BOUNDED}
    # a group's name (forecast.name) is chosen with the group (forecast=statistical)
    assert {k for k, _ in bounds_of(TwinConfig) if not k.endswith(".name")} <= keys
    for name, schema in CONTRACT_SCHEMAS.items():
        assert {k for k, _ in bounds_of(schema, "contract.")} <= keys, name


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
