"""JSON Schema validation (draft 2020-12), fast when the value is valid, precise when not.

jsonschema-rs answers "is this valid" in microseconds, which keeps it off the runner's hot
path; the pure-Python `jsonschema` validator, built only when something is invalid, lists
the errors with their paths and words. When the two disagree (they implement `format` and
regex dialects slightly differently), the value is invalid and jsonschema-rs's error is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema_rs

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SchemaError:
    path: Path  # where in the value (or in the schema, for metaschema errors)
    message: str

    def render(self) -> str:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return f"${where}: {self.message}"


class CompiledSchema:
    """One schema, compiled once, validating many values."""

    __slots__ = ("_fast", "_slow", "schema")

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._fast = jsonschema_rs.Draft202012Validator(schema)
        self._slow: Any = None

    def is_valid(self, value: Any) -> bool:
        return bool(self._fast.is_valid(value))

    def errors(self, value: Any) -> list[SchemaError]:
        """Every error, sorted by path; [] when valid."""
        if self._fast.is_valid(value):
            return []
        found = self._python_errors(value)
        if found:
            return sorted(found, key=lambda e: list(map(str, e.path)))
        return list(_rs_errors(self._fast.iter_errors(value)))

    def first_error(self, value: Any) -> SchemaError | None:
        """The most relevant error (jsonschema's best_match), or None when valid."""
        if self._fast.is_valid(value):
            return None
        found = self._python_errors(value, best=True)
        return found[0] if found else next(_rs_errors(self._fast.iter_errors(value)), None)

    def _python_errors(self, value: Any, *, best: bool = False) -> list[SchemaError]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        if self._slow is None:
            self._slow = Draft202012Validator(self.schema)
        try:
            errors = ([e for e in [best_match(self._slow.iter_errors(value))] if e is not None]
                      if best else list(self._slow.iter_errors(value)))
        except Exception:  # e.g. an ECMA-262 `pattern` Python's re cannot compile
            return []
        return [SchemaError(tuple(e.absolute_path), e.message) for e in errors]


def _rs_errors(errors: Any) -> Iterator[SchemaError]:
    for e in errors:
        yield SchemaError(tuple(e.instance_path), e.message)


@cache
def _meta_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(Draft202012Validator.META_SCHEMA)


def metaschema_errors(schema: Any) -> list[SchemaError]:
    """Every draft 2020-12 metaschema violation of `schema`, with its path inside it."""
    if jsonschema_rs.meta.is_valid(schema):
        return []
    found = sorted(_meta_validator().iter_errors(schema), key=lambda e: list(map(str, e.path)))
    if found:
        return [SchemaError(tuple(e.absolute_path), e.message) for e in found]
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        return [SchemaError(tuple(exc.instance_path), exc.message)]
    return []
