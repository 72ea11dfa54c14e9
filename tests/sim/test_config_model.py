"""One mapping of schema errors to the project's terms: file, dotted field path, value, expectation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field, field_validator

from sim.config_model import ConfigModel, Flag, Integer, Number, Text, invalid, validate, within
from sim.errors import ScenarioError, StudyError

FILE = Path("plan.toml")


class Lamp(ConfigModel):
    colour: Literal["red", "amber"] = "red"
    lit: Flag = False


class Post(ConfigModel):
    height_m: Annotated[float, within(0.5, 12.0)] = 4.0
    lamps: list[Lamp] = Field(default_factory=list)
    origin: tuple[Number, Number] = (0.0, 0.0)


class Plan(ConfigModel):
    name: Text
    posts: dict[str, Post] = Field(default_factory=dict)
    spacing_m: Number = Field(default=30.0, gt=0)
    tags: list[Text] = Field(default=[], min_length=1)
    count: Integer = 1
    code: Text = "A1"

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not value[:1].isalpha():
            raise invalid("not a code", "a letter then digits, e.g. A1")
        return value


def error(doc: object, **kwargs: object) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        validate(Plan, doc, FILE, **kwargs)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("doc", "field", "problem", "value", "expected"),
    [
        ({"name": "x", "posts": {"p1": {"lamps": [{}, {"lit": True, "watts": 9}]}}},
         "posts.p1.lamps[1].watts", "unknown field", None, "one of colour, lit"),
        ({"name": "x", "posts": {"p1": {"height_m": "tall"}}},
         "posts.p1.height_m", "wrong type", "tall", "a number"),
        ({"name": "x", "posts": {"p1": {"height_m": 20}}},
         "posts.p1.height_m", "out of range", 20, "0.5..12"),
        ({"name": "x", "posts": {"p1": {"lamps": [{"lit": 1}]}}},
         "posts.p1.lamps[0].lit", "wrong type", 1, "true or false"),
        ({"name": "x", "posts": {"p1": {"lamps": [{"colour": "blue"}]}}},
         "posts.p1.lamps[0].colour", "unknown value", "blue", "'red' or 'amber'"),
        ({"name": "x", "posts": {"p1": {"lamps": {"colour": "red"}}}},
         "posts.p1.lamps", "wrong type", {"colour": "red"}, "[[posts.p1.lamps]] tables"),
        ({"name": "x", "posts": {"p1": {"origin": [1.0]}}},
         "posts.p1.origin", "wrong length", [1.0], "a list of 2 numbers"),
        ({"name": "x", "posts": {"p1": 3}}, "posts.p1", "not a table", 3, "[posts.p1]"),
        ({}, "name", "missing a value", None, "a string"),
        ({"name": 7}, "name", "wrong type", 7, "a string"),
        ({"name": "x", "spacing_m": 0}, "spacing_m", "out of range", 0, "> 0"),
        ({"name": "x", "spacing_m": float("nan")}, "spacing_m", "out of range", None, "a finite number"),
        ({"name": "x", "count": 2.0}, "count", "wrong type", 2.0, "an integer"),
        ({"name": "x", "count": True}, "count", "wrong type", True, "an integer"),
        ({"name": "x", "tags": []}, "tags", "wrong length", [], "a list with at least one entry"),
        ({"name": "x", "tags": ["a", 3]}, "tags[1]", "wrong type", 3, "a string"),
        ({"name": "x", "code": "11"}, "code", "not a code", "11", "a letter then digits, e.g. A1"),
        ({"name": "x", "colour": "red"}, "colour", "unknown field", None,
         "one of code, count, name, posts, spacing_m, tags"),
    ],
)  # fmt: skip
def test_an_error_names_the_full_path_the_value_and_what_was_expected(
    doc: dict[str, object], field: str, problem: str, value: object, expected: str
) -> None:
    err = error(doc)
    assert (err.path, err.field, err.expected) == (FILE, field, expected)
    if value is not None:
        assert err.value == value
    assert str(err).startswith(f"{FILE}: field '{field}': {problem}")
    assert "\n" not in str(err)


def test_the_place_in_the_file_prefixes_the_path_and_the_error_class_is_the_callers() -> None:
    err = error({"name": "x", "posts": {"p": {"lamps": [{"lit": "no"}]}}}, at=("site", "plan"))
    assert err.field == "site.plan.posts.p.lamps[0].lit"
    with pytest.raises(StudyError, match=r"plan.toml: field 'name': missing"):
        validate(Plan, {}, FILE, error=StudyError)


def test_good_documents_become_typed_values() -> None:
    plan = validate(Plan, {"name": "x", "posts": {"p": {"origin": [1, 2], "lamps": [{}]}}}, FILE)
    post = plan.posts["p"]
    assert post.origin == (1.0, 2.0) and isinstance(post.origin[0], float)
    assert post.lamps == [Lamp()] and plan.spacing_m == 30.0
