"""Every settings key, walked from the schema itself, refuses a value of the wrong kind (and one
out of its range, where it has one) from the environment with one line naming the key and the
variable: a key added later is covered without a line here."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from agent.cli import main
from configs import Settings, SettingsError, load_settings

# A bad value the schema's types cannot tell (a validator's rule).
SPECIFIC = {
    "tools.timezone": ["Mars/Olympus_Mons"],
    "asr.url": ["gpu-box:8101", "ftp://gpu-box", "http://"],
    "tts.url": ["gpu-box:8102"],
    "llm.base_url": ["//gpu-box/v1"],
    "kiosk.room_prefix": ["", "front desk", "x" * 65],
}
# Keys with no bad value, and why.
ANY_VALUE = {
    "tts.voices": "a path, and empty means none (the torch backend's voices come with its model)",
    "profile": "the loaded profile's name: HALFSEC_PROFILE chooses which profile loads, empty meaning cpu",
    "worker.agent_name": "any string is a name, and empty means automatic dispatch",
    "service_token": "any string is a token, and empty means none (then only loopback binds load)",
}


def leaves(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from leaves(field.annotation, (*path, name))
        else:
            yield ".".join((*path, name)), field


def unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The type under Optional[...] and Annotated[...], and the constraints met on the way."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata = [*metadata, *(m for f in more for m in (f.metadata if isinstance(f, FieldInfo) else [f]))]
    return annotation, metadata


def out_of_range(metadata: list[Any]) -> list[str]:
    values = []
    for m in metadata:
        if isinstance(m, at.Ge):
            values.append(str(m.ge - 1))
        elif isinstance(m, at.Gt):
            values.append(str(m.gt))
        elif isinstance(m, at.Le):
            values.append(str(m.le + 1))
        elif isinstance(m, at.Lt):
            values.append(str(m.lt))
    return values


def bad_values(key: str, field: FieldInfo) -> list[str]:
    kind, metadata = unwrap(field.annotation, list(field.metadata))
    if key in SPECIFIC:
        return SPECIFIC[key]
    if get_origin(kind) is Literal:
        return ["nonsense"]
    if kind is bool:
        return ["maybe"]
    if kind is int:
        return ["seven", "2.5", *out_of_range(metadata)]
    if kind is float:
        return ["fast", "nan", "inf", *out_of_range(metadata)]
    if kind is str and any(isinstance(m, at.MinLen) for m in metadata):
        return [""]
    if kind is Path:
        return [""]
    if get_origin(kind) is list:
        item, item_metadata = unwrap(get_args(kind)[0], [])
        return ["not json", "[{}]", *(f"[{v}]" for v in out_of_range(item_metadata))]
    if get_origin(kind) is dict:
        return ["not json", '{"a": {}}']
    raise AssertionError(f"{key}: no bad value known for {field.annotation}: add one to SPECIFIC or ANY_VALUE")


CASES = [
    pytest.param(key, value, id=f"{key}={value!r}")
    for key, field in leaves(Settings)
    if key not in ANY_VALUE
    for value in bad_values(key, field)
]


def env_name(key: str) -> str:
    return "HALFSEC_" + key.replace(".", "__").upper()


@pytest.mark.parametrize(("key", "value"), CASES)
def test_a_bad_value_names_the_key_and_the_variable(monkeypatch, key, value):
    monkeypatch.setenv(env_name(key), value)
    with pytest.raises(SettingsError) as err:
        load_settings("cpu")
    message = str(err.value)
    assert key in message and env_name(key) in message and "\n" not in message, message


def test_every_key_has_a_bad_value_or_a_reason():
    keys = [key for key, _ in leaves(Settings)]
    assert set(ANY_VALUE) <= set(keys) and set(SPECIFIC) <= set(keys)
    assert {key for key, _ in (c.values for c in CASES)} | set(ANY_VALUE) == set(keys)


def test_good_values_still_load(monkeypatch):
    """The stricter types take what the profiles and the documentation use."""
    monkeypatch.setenv("HALFSEC_LLM__EXTRA_ARGS", '["--enforce-eager"]')
    monkeypatch.setenv("HALFSEC_LLM__ENV", '{"VLLM_CPU_KVCACHE_SPACE": "2"}')
    monkeypatch.setenv("HALFSEC_LLM__CPU_AFFINITY", "[0, 1]")
    monkeypatch.setenv("HALFSEC_ASR__COMPUTE_TYPE", "int8_float16")
    monkeypatch.setenv("HALFSEC_ASR__LOG_PROB_THRESHOLD", "-1.5")
    s = load_settings("cpu")
    assert s.llm.extra_args == ["--enforce-eager"] and s.llm.cpu_affinity == [0, 1]
    assert s.llm.env == {"VLLM_CPU_KVCACHE_SPACE": "2"} and s.asr.compute_type == "int8_float16"
    assert load_settings("gpu-24gb").tts.voices == ""


def test_the_cli_prints_the_whole_line(monkeypatch, capsys):
    """Rich must not take the message's "[from HALFSEC_...]" for markup and drop it."""
    monkeypatch.setenv("HALFSEC_ASR__PORT", "seventy")
    assert main(["plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("(got 'seventy') [from HALFSEC_ASR__PORT]") and "\n" not in err, err
