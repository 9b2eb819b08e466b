"""The file formats as frozen, closed pydantic models: function.yaml, providers.yaml, aiops.yaml.

No I/O here: `loader` reads files and turns validation errors into located diagnostics.
Unknown keys are errors (extra="forbid"); defaults are materialised so that fingerprints see
the behaviour a call will really have.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticKnownError

from aiops.errors import shown
from aiops.keyscrub import KEY_AFTER_PREFIX, KEY_PREFIXES, looks_like_key, masked
from aiops.patterns import linear_error

API_VERSION = "aiops/v1"
NAME_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_SEMVER = re.compile(SEMVER_PATTERN)
DURATION_PATTERN = r"^[1-9]\d*(s|m|h|d)$"
MAX_INPUT_BYTES_CEILING = 10 << 20  # the largest `limits.max_input_bytes`
# A rendered prompt: 1 MiB is ~260k tokens, past most context windows; a provider refuses (or
# bills) far less. Set per function up to 64 MiB (`limits.max_prompt_bytes`).
DEFAULT_MAX_PROMPT_BYTES = 1 << 20
MAX_PROMPT_BYTES_CEILING = 64 << 20
# What the database and the code that uses a value can take (store/tables.py): every value a
# file may hold can be planned, applied and run on SQLite and PostgreSQL alike.
INT32_MAX = (1 << 31) - 1  # INTEGER columns (daily usage counters); counts beyond are absurd
INT64 = (-(1 << 63), (1 << 63) - 1)  # what providers take as an integer (`seed`)
VERSION_CHARS = 100  # ai_function_versions.version
PROVIDER_CHARS = 100  # ai_function_versions.provider, ai_function_logs.provider
MODEL_CHARS = 200  # ai_function_versions.model
MAX_PRICE_PER_MTOK = 1_000_000.0  # USD; keeps every cost finite
MAX_BUDGET_USD = 1_000_000_000.0
MAX_ALERT_WINDOW_S = 366 * 86400


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              defer_build=True)


def _no_text_or_boolean(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise PydanticKnownError("int_type")
    return value


# Scalars as JSON Schema reads them, so that what the published schema (and so an editor)
# accepts is what aiops accepts: lax pydantic would read "3" or true as a number and "yes" as
# true. An integral float (3.0) is an integer, as in JSON Schema.
_JSON_INT = BeforeValidator(_no_text_or_boolean)
Int = Annotated[int, _JSON_INT]
# An optional integer keeps its bounds inside (in Field on the field, pydantic would publish
# `ge`/`le`, which JSON Schema does not know, instead of `minimum`/`maximum`).
Count = Annotated[int, Field(ge=1, le=INT32_MAX), _JSON_INT]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]


def _at_most(n: int) -> str:
    """A regex of the integers 1..n, written without leading zeros."""
    digits = str(n)
    parts = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, d in enumerate(digits):  # n's first i digits, then a lower one, then any
        low = 1 if i == 0 else 0
        if int(d) > low:
            lower = f"[{low}-{int(d) - 1}]" if int(d) - 1 > low else str(low)
            parts.append(digits[:i] + lower + "[0-9]" * (len(digits) - i - 1))
    return "(?:" + "|".join([*parts, digits]) + ")"


@total_ordering
class Semver:
    """A parsed semantic version; ordering follows semver precedence (build ignored)."""

    __slots__ = ("major", "minor", "patch", "pre", "text")

    def __init__(self, text: str) -> None:
        m = _SEMVER.match(text)
        if not m:
            raise ValueError(f"{shown(text)} is not a semantic version like 1.2.0")
        self.text = text
        self.major, self.minor, self.patch = int(m[1]), int(m[2]), int(m[3])
        self.pre: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(p)) if p.isdigit() else (1, p) for p in (m[4].split(".") if m[4] else ())
        )

    def _key(self) -> tuple[Any, ...]:
        # A release sorts after its pre-releases.
        return (self.major, self.minor, self.patch, not self.pre, self.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Semver) and self._key() == other._key()

    def __lt__(self, other: Semver) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Semver({self.text!r})"

    def is_major_bump_over(self, old: Semver) -> bool:
        """Whether going from `old` to self announces breaking changes (0.x: minor counts)."""
        if old.major == 0 and self.major == 0:
            return self.minor > old.minor
        return self.major > old.major


# --- function.yaml -----------------------------------------------------------------------


class Message(Model):
    """One chat message of the prompt."""

    role: Literal["system", "user", "assistant"] = Field(
        description="Who speaks: system, user or assistant.")
    content: str = Field(min_length=1, description=(
        "A Jinja2 template over the inputs (`{{ text }}`), rendered in a sandbox; a variable "
        "that is not an input of input_schema is an error."))


class Configuration(Model):
    """Provider settings shared by the chat-completions APIs; unknown settings are errors."""

    temperature: Float | None = Field(None, ge=0, le=2, description="Sampling temperature, 0 to 2.")
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000), _JSON_INT] | None = Field(
        None, description="Output token limit; also what `tpm` and budgets reserve before a call.")
    top_p: Float | None = Field(None, ge=0, le=1, description="Nucleus sampling, 0 to 1.")
    stop: str | list[str] | None = Field(None, description="A stop sequence, or a list of them.")
    seed: Annotated[int, Field(ge=INT64[0], le=INT64[1]), _JSON_INT] | None = Field(
        None, description="Best-effort determinism, where the model supports it.")
    presence_penalty: Float | None = Field(None, ge=-2, le=2, description="-2 to 2.")
    frequency_penalty: Float | None = Field(None, ge=-2, le=2, description="-2 to 2.")
    reasoning_effort: Literal["low", "medium", "high"] | None = Field(
        None, description="For reasoning models: low, medium or high.")


class Fallback(Model):
    """A provider and model tried when the ones before failed after their retries."""

    provider: str = Field(max_length=PROVIDER_CHARS, description="A key of providers.yaml.")
    model: str = Field(min_length=1, max_length=MODEL_CHARS,
                       description="The provider's model id.")
    configuration: Configuration | None = Field(  # None: the function's configuration
        None, description="Provider settings for this fallback; the function's when absent.")


class Retry(Model):
    """Retries of transient errors and repairs of invalid output."""

    max_attempts: Int = Field(3, ge=1, le=10, description=(
        "Calls per provider for transient errors (429, 5xx, timeouts, connection)."))
    backoff_s: Float = Field(0.5, ge=0, le=60, description=(
        "First backoff in seconds; doubles each attempt, with jitter; Retry-After wins."))
    max_backoff_s: Float = Field(8.0, ge=0, le=600, description="Backoff cap in seconds.")
    repair_attempts: Int = Field(1, ge=0, le=5, description=(
        "Re-asks with the validation error when the output does not validate."))


class Limits(Model):
    """Operational limits of the function: changed in place, no version bump."""

    rpm: Count | None = Field(None, description="Requests per minute for this function.")
    tpm: Count | None = Field(None, description="Tokens per minute for this function.")
    max_concurrency: Count | None = Field(None, description="Concurrent calls of this function.")
    max_input_bytes: Int = Field(65536, ge=1, le=MAX_INPUT_BYTES_CEILING, description=(
        "Bound on an input's size as compact UTF-8 JSON (at most 10 MiB)."))
    daily_budget_usd: Float | None = Field(None, ge=0, le=MAX_BUDGET_USD, description=(
        "Daily spend in USD (UTC day, all processes); each call's estimate is reserved first."))
    daily_calls: Annotated[int, Field(ge=0, le=INT32_MAX), _JSON_INT] | None = Field(
        None, description="Daily quota of executions that reach a provider.")
    on_limit: Literal["fallback", "wait", "fail"] = Field("fallback", description=(
        "When a rate limit has no room for a call: fallback (go to the next fallback whose "
        "provider has room, else wait), wait (for this provider), or fail at once."))
    # None: `prompt_bytes` derives it. Left out of the dump while unset, so that adding the
    # key changed no existing function's metadata hash (and planned no update of every one).
    max_prompt_bytes: Annotated[int, Field(ge=1024, le=MAX_PROMPT_BYTES_CEILING),
                                _JSON_INT] | None = Field(None, description=(
        "Bound on the rendered prompt, all messages, in UTF-8 bytes (1024 to 64 MiB, at least "
        "max_input_bytes); default 1 MiB or twice max_input_bytes."))

    @model_validator(mode="after")
    def _prompt_holds_an_input(self) -> Limits:
        if self.max_prompt_bytes is not None and self.max_prompt_bytes < self.max_input_bytes:
            raise ValueError(f"max_prompt_bytes ({self.max_prompt_bytes}) is below "
                             f"max_input_bytes ({self.max_input_bytes}): an input at its bound "
                             "could never render")
        return self

    @model_serializer(mode="wrap")
    def _unset_prompt_bound_omitted(self, handler: SerializerFunctionWrapHandler
                                    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.max_prompt_bytes is None:
            data.pop("max_prompt_bytes", None)
        return data

    @property
    def prompt_bytes(self) -> int:
        """The bound on a rendered prompt (all its messages, UTF-8): `max_prompt_bytes`, else
        1 MiB or twice `max_input_bytes`, whichever is larger (an input at its bound fits)."""
        if self.max_prompt_bytes is not None:
            return self.max_prompt_bytes
        return max(DEFAULT_MAX_PROMPT_BYTES, 2 * self.max_input_bytes)


class Access(Model):
    """Which API callers may read, run and change the function: groups of API tokens, or
    `everyone` (aiops.access decides; the CLI and the Python API run with the operator's own
    database and keys, and are not bound by these lists)."""

    invoke: tuple[str, ...] = Field(("everyone",), description=(
        "Token groups allowed to run it through the API (tokens of role invoker and up); "
        "`everyone` by default."))
    view: tuple[str, ...] = Field(("everyone",), description=(
        "Token groups allowed to read it, its versions and its logs through the API; "
        "`everyone` by default. Others get 404, as if it did not exist."))
    # None: everyone. Left out of the dump while unset, so that adding the key changed no
    # existing function's metadata hash (and planned no update of every one).
    edit: tuple[str, ...] | None = Field(None, description=(
        "Token groups allowed to change it through the API (tokens of role editor and up), "
        "and to read the inputs and outputs of its logs there; `everyone` by default."))

    @model_serializer(mode="wrap")
    def _unset_edit_omitted(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.edit is None:
            data.pop("edit", None)
        return data


class FilterRule(Model):
    """A content filter: `pii_redact` (e-mail, phone and card numbers) or `{deny: REGEX}`."""

    pii_redact: Bool | None = None
    deny: str | None = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # `deny` is RE2 syntax, not ECMA-262: no `format: regex` (editors would refuse `(?i)`).
        return {
            "description": cls.__doc__,
            "oneOf": [
                {"const": "pii_redact"},
                {"type": "object", "required": ["pii_redact"], "additionalProperties": False,
                 "properties": {"pii_redact": {"type": "boolean", "description": (
                     "Redact e-mail addresses, phone and card numbers.")}}},
                {"type": "object", "required": ["deny"], "additionalProperties": False,
                 "properties": {"deny": {"type": "string", "description": (
                     "A regular expression in RE2 syntax (`(?i)`, `\\d`, `\\pL`; no "
                     "lookarounds or backreferences): an output that matches it is refused.")}}},
            ],
        }

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "pii_redact":
            return {"pii_redact": True}
        if isinstance(value, str):
            raise ValueError(f"unknown filter {shown(value)}; a filter is `pii_redact` or "
                             "`{deny: REGEX}`")
        return value

    @model_validator(mode="after")
    def _one(self) -> FilterRule:
        if (self.pii_redact is None) == (self.deny is None):
            raise ValueError("a filter is `pii_redact` or `{deny: REGEX}`, one per item")
        if self.deny is not None and (why := linear_error(self.deny)):
            raise ValueError(f"`deny`: {why}")
        return self


class Filters(Model):
    """Content filters of inputs and outputs."""

    input: tuple[FilterRule, ...] = Field((), description="Filters applied to each input.")
    output: tuple[FilterRule, ...] = Field((), description="Filters applied to each output.")


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# What `Alert._window` accepts, as one regex for the published schema: 1 to a year in s, m, h, d.
_WINDOW_PATTERN = "^(?:" + "|".join(f"{_at_most(MAX_ALERT_WINDOW_S // seconds)}{unit}"
                                    for unit, seconds in _SECONDS.items()) + ")$"


ALERT_METRICS = ("error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "cost_usd",
                 "calls", "quota_usage")
AlertMetric = Literal["error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                      "cost_usd", "calls", "quota_usage"]
RULE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
RECEIVER_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
# The keys a rule gained after `{metric, over, above}`: left out of the dump while unset, so
# that a rule written before them keeps its metadata hash (and no apply updates every function).
_OPTIONAL_ALERT_KEYS = ("name", "over", "above", "below", "baseline", "ratio_above", "min_calls",
                        "for_", "severity", "notify", "repeat")


def window_seconds(text: str) -> int:
    """A duration like 15m in seconds (the pattern DURATION_PATTERN)."""
    return int(text[:-1]) * _SECONDS[text[-1]]


def _a_window(value: str | None, what: str = "duration") -> str | None:
    if value is None:
        return value
    amount = int(value[:-1]) if len(value) <= 12 else MAX_ALERT_WINDOW_S + 1
    if amount * _SECONDS[value[-1]] > MAX_ALERT_WINDOW_S:
        raise ValueError(f"{what} {shown(value)} is longer than a year (366d)")
    return value


def _window_field(description: str) -> Any:
    return Field(None, pattern=DURATION_PATTERN, description=description,
                 json_schema_extra={"pattern": _WINDOW_PATTERN})


class Alert(Model):
    """An alert rule over a metric of the function (DESIGN §8): it fires when the metric over
    the window `over` is above `above` (or below `below`), or, with `baseline`, when it is
    more than `ratio_above` times its value over the `baseline` window before `over`."""

    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["above"]}, {"required": ["below"]},
                  {"required": ["ratio_above", "baseline"]}],
        "dependentRequired": {"baseline": ["ratio_above"], "ratio_above": ["baseline"]},
        "if": {"properties": {"metric": {"const": "quota_usage"}}},
        "then": {"not": {"required": ["baseline"]}},
        "else": {"required": ["over"]},
    })

    name: str | None = Field(None, pattern=RULE_NAME_PATTERN, description=(
        "The rule's name, unique in the function (lowercase letters, digits, _ and -); "
        "default: the metric and the windows, e.g. error_rate_15m."))
    metric: AlertMetric = Field(description=(
        "What is watched: error_rate (0 to 1), p50/p95/p99_latency_ms, cost_usd, calls, or "
        "quota_usage (the largest share of the daily call quota or budget used today)."))
    over: str | None = _window_field(
        "The window, at most a year: e.g. 15m, 1h, 1d (366d at most). Required except for "
        "quota_usage, which is measured over the current UTC day.")
    above: Float | None = Field(None, description="Fires when the metric is above this.")
    below: Float | None = Field(None, description="Fires when the metric is below this.")
    baseline: str | None = _window_field(
        "Relative form: the window just before `over` that the metric is compared with "
        "(e.g. 7d); with ratio_above.")
    ratio_above: Float | None = Field(None, gt=0, description=(
        "Relative form: fires when the metric over `over` is more than this many times its "
        "value over `baseline` (e.g. 1.5); with baseline."))
    min_calls: Annotated[int, Field(ge=0, le=INT32_MAX), _JSON_INT] | None = Field(
        None, description=(
            "Calls the window (and the baseline) must hold for the rule to be evaluated; "
            "default 1 for rates and latencies, 0 for calls, cost_usd and quota_usage."))
    for_: str | None = Field(None, alias="for", pattern=DURATION_PATTERN, description=(
        "How long the condition must hold before the rule fires (e.g. 5m); at once by "
        "default."), json_schema_extra={"pattern": _WINDOW_PATTERN})
    severity: Literal["info", "warning", "critical"] | None = Field(None, description=(
        "info, warning (the default) or critical: sent with each notification."))
    notify: tuple[Annotated[str, Field(pattern=RECEIVER_NAME_PATTERN)], ...] | None = Field(
        None, description=(
            "Receivers named in aiops.yaml `alerting.receivers`; without any, the rule is "
            "evaluated and shown but notifies nobody."))
    repeat: str | None = _window_field(
        "While the rule fires, notify again this often (default: aiops.yaml "
        "`alerting.repeat_interval`).")

    @field_validator("over", "baseline", "for_", "repeat")
    @classmethod
    def _window(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _a_window(value, "window" if info.field_name in ("over", "baseline")
                         else "duration")

    @model_validator(mode="after")
    def _one_condition(self) -> Alert:
        given = [k for k in ("above", "below", "ratio_above") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a rule needs exactly one of `above`, `below` or `ratio_above` "
                             f"(with `baseline`); found {', '.join(given) or 'none'}")
        if (self.baseline is None) != (self.ratio_above is None):
            raise ValueError("`baseline` and `ratio_above` go together: the metric over `over` "
                             "is compared with its value over `baseline` before it")
        if self.metric == "quota_usage":
            if self.baseline is not None:
                raise ValueError("quota_usage has no baseline: it is the share of today's "
                                 "daily limits used")
        elif self.over is None:
            raise ValueError(f"`over` (the window) is required for {self.metric}, e.g. 15m")
        return self

    @model_serializer(mode="wrap")
    def _unset_keys_omitted(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in _OPTIONAL_ALERT_KEYS:
            if getattr(self, key) is None:
                data.pop(key, None)
                data.pop(key.rstrip("_"), None)  # `for_` dumped by its alias
        if "for_" in data:
            data["for"] = data.pop("for_")
        return data

    @property
    def rule_name(self) -> str:
        """`name`, else one made of the metric and the windows: error_rate_15m,
        p95_latency_ms_1h_vs_7d, quota_usage."""
        if self.name is not None:
            return self.name
        parts = [self.metric, *(w for w in (self.over,) if w and self.metric != "quota_usage")]
        if self.baseline is not None:
            parts += ["vs", self.baseline]
        return "_".join(parts)


class Bounds(Model):
    """Inclusive bounds; either may be left out."""

    min: Float | None = Field(None, description="The smallest allowed, inclusive.")
    max: Float | None = Field(None, description="The largest allowed, inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: nothing is "
                             "within these bounds")
        return self


ASSERTION_KEYS = ("schema_valid", "equals", "contains", "matches", "length", "range",
                  "max_latency_ms", "max_cost_usd", "not")
PATH_ASSERTIONS = {"equals", "contains", "matches", "length", "range"}


class Assertion(Model):
    """One `expect` item: exactly one assertion key, plus `path` where it applies."""

    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": [k]} for k in ASSERTION_KEYS],
        "if": {"required": ["path"], "properties": {"path": {"type": "string"}}},
        "then": {"anyOf": [{"required": [k]} for k in sorted(PATH_ASSERTIONS)]},
    })

    path: str | None = Field(None, pattern=r"^\$", description=(
        "A JSON path into the output ($.items[0].name); with equals, contains, matches, "
        "length or range."))
    schema_valid: Bool | None = Field(None, description=(
        "The output validates against output_schema."))
    equals: Any = Field(None, description=(
        "The output (or the value at path) equals this JSON value."))
    contains: Any = Field(None, description=(
        "An array holds this element, an object these keys and values, text this text."))
    matches: str | None = Field(None, description="An RE2 regular expression searched in the text.")
    length: Bounds | None = Field(None, description="Length of a string, array or object.")
    range: Bounds | None = Field(None, description="A number within these bounds.")
    max_latency_ms: Float | None = Field(None, gt=0, description="Latency of the run, at most.")
    max_cost_usd: Float | None = Field(None, ge=0, description="Cost of the run, at most.")
    not_: Assertion | None = Field(None, alias="not", description="Holds when this one does not.")

    @model_validator(mode="after")
    def _one_key(self) -> Assertion:
        given = [k for k in ASSERTION_KEYS if (k if k != "not" else "not_") in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                f"an expectation needs exactly one of {', '.join(ASSERTION_KEYS)}; "
                f"found {', '.join(given) or 'none'}"
            )
        if self.path is not None and given[0] not in PATH_ASSERTIONS:
            raise ValueError(f"`path` does not apply to `{given[0]}`")
        if self.matches is not None and (why := linear_error(self.matches)):
            raise ValueError(f"`matches`: {why}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ASSERTION_KEYS if (k if k != "not" else "not_")
                    in self.model_fields_set)


class TestCase(Model):
    __test__ = False  # not a pytest class

    name: str = Field(pattern=NAME_PATTERN.replace("{1,62}", "{0,62}"),
                      description="Unique in the function: lowercase letters, digits, dashes.")
    description: str = Field("", description="What the case checks, for people.")
    input: dict[str, Any] = Field(description="The input, validated against input_schema.")
    expect: tuple[Assertion, ...] = Field((), description="Assertions over the output.")


class FunctionSpec(Model):
    """One AI function: `functions/<name>/function.yaml`."""

    api_version: Literal["aiops/v1"] = Field(alias="apiVersion",
                                             description="The format's version: aiops/v1.")
    name: str = Field(pattern=NAME_PATTERN, description=(
        "Lowercase letters, digits and dashes, starting with a letter (2-63); equals the "
        "directory's name."))
    version: str = Field(pattern=SEMVER_PATTERN, max_length=VERSION_CHARS, description=(
        "Semantic version (1.2.0, 2.0.0-rc.1): a behaviour change bumps it, a change that "
        "breaks callers bumps the major."))
    description: str = Field("", description="One line for people.")
    status: Literal["draft", "active", "deprecated"] = Field("active", description=(
        "draft, active or deprecated: all three run (deprecated warns); archived is set by "
        "`aiops apply --prune` only."))
    provider: str = Field(max_length=PROVIDER_CHARS,
                          description="The primary provider: a key of providers.yaml.")
    model: str = Field(min_length=1, max_length=MODEL_CHARS,
                       description="The provider's model id.")
    configuration: Configuration = Field(Configuration(), description=(
        "Provider settings: temperature, max_tokens, top_p, stop, seed, penalties, "
        "reasoning_effort."))
    prompt: tuple[Message, ...] = Field(min_length=1, description=(
        "The chat messages, at least one; each content is a Jinja2 template over the inputs."))
    input_schema: dict[str, Any] = Field(description=(
        "JSON Schema (draft 2020-12) of the named inputs: `type: object`, inputs under "
        "`properties`. Defaults are filled in before validation."))
    output_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "string"}, description=(
        "JSON Schema (draft 2020-12) of the output. `{type: string}` (the default) is plain "
        "text; anything else asks for JSON and validates it."))
    fallbacks: tuple[Fallback, ...] = Field((), description=(
        "Providers and models tried in order when the primary fails after its retries."))
    retry: Retry = Field(Retry(), description="Retries of transient errors, repairs of output.")
    limits: Limits = Field(Limits(), description=(
        "Rate limits, size bounds and budgets: operational, no version bump."))
    access: Access = Field(Access(), description="Who may run and read it through the API.")
    filters: Filters = Field(Filters(), description=(
        "Content filters: pii_redact, or {deny: REGEX}, on inputs and outputs."))
    alerts: tuple[Alert, ...] = Field((), description=(
        "Alert rules over metrics: {name, metric, over, above | below | baseline + "
        "ratio_above, min_calls, for, severity, notify, repeat}."))
    metadata: dict[str, Any] = Field(default_factory=dict, description=(
        "Free-form: owner, tags, ..."))
    test_providers: tuple[str, ...] | None = Field(None, description=(
        "The providers golden tests run against; the primary's and the fallbacks' by default."))
    tests: tuple[TestCase, ...] = Field((), description=(
        "Golden tests: inputs and assertions; not part of any hash."))

    @field_validator("alerts")
    @classmethod
    def _rule_names_unique(cls, alerts: tuple[Alert, ...]) -> tuple[Alert, ...]:
        seen: set[str] = set()
        for rule in alerts:
            if rule.rule_name in seen:
                raise ValueError(f"two rules are named {rule.rule_name}; give one of them a "
                                 "`name` of its own (alert state and history are kept by name)")
            seen.add(rule.rule_name)
        return alerts

    @property
    def semver(self) -> Semver:
        return Semver(self.version)

    @property
    def output_is_text(self) -> bool:
        return self.output_schema.get("type") == "string"


# --- providers.yaml ----------------------------------------------------------------------


class Price(Model):
    """USD per million tokens, pinned in git."""

    input_per_mtok: Float = Field(ge=0, le=MAX_PRICE_PER_MTOK,
                                  description="USD per million input tokens.")
    output_per_mtok: Float = Field(ge=0, le=MAX_PRICE_PER_MTOK,
                                   description="USD per million output tokens.")
    cached_input_per_mtok: Float | None = Field(None, ge=0, le=MAX_PRICE_PER_MTOK, description=(
        "USD per million cached input tokens; input_per_mtok when absent."))
    reasoning_per_mtok: Float | None = Field(None, ge=0, le=MAX_PRICE_PER_MTOK, description=(
        "USD per million reasoning tokens; output_per_mtok when absent."))


class ProviderLimits(Model):
    """Limits shared by every function of the provider."""

    rpm: Count | None = Field(None, description="Requests per minute.")
    tpm: Count | None = Field(None, description="Tokens per minute.")
    max_concurrency: Count | None = Field(None, description="Concurrent calls.")


# A key where its variable's name belongs (`api_key_env: gsk_...`) is refused when the file is
# read, so that no command ever runs with it, prints it, or logs it (`aiops run` used to say
# "environment variable gsk_... is not set" and keep that in a log row). The schema refuses
# the known prefixes too; randomness is for aiops alone to judge (`looks_like_key`).
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN, json_schema_extra={"not": {
    "pattern": "^(?:" + "|".join(KEY_PREFIXES) + f").{{{KEY_AFTER_PREFIX}}}",
    "description": "a key, not the name of the variable that holds it"}})]


def env_name(value: Any, example: str) -> Any:
    """A `*_env` value as written, when it is an environment variable's name; a key, or any
    other text, is refused with at most its first 4 characters and its length."""
    if not isinstance(value, str):
        return value  # pydantic says it is not text
    fix = f"put the variable's NAME here, e.g. {example}; the value goes in the environment"
    if looks_like_key(value):
        raise PydanticCustomError("key_like", "holds a key-like value ({value})",
                                  {"value": masked(value), "fix": fix})
    if not re.fullmatch(ENV_NAME_PATTERN, value):
        raise PydanticCustomError(
            "not_a_variable_name", "holds a value that is not an environment variable name "
            "({value}): a name is letters, digits and _, not starting with a digit",
            {"value": masked(value), "fix": fix})
    return value


def url_without_secrets(value: str | None, *, user_allowed: bool, fix: str) -> str | None:
    """A URL as written, when it holds no secret: no password in its user part (nor a user
    part at all unless `user_allowed`: a token is often passed as the user), and no query
    value that is a password or looks like a key. Secrets are read from the environment,
    never from a file; the message shows nothing of the secret."""
    if value is None:
        return value
    try:
        parts = urlsplit(value.strip())
        password = parts.password
    except ValueError:
        return value  # not a URL: the field's own pattern or the database says so
    held = None
    if password is not None:
        held = "a password in its user part"
    elif parts.username is not None and not user_allowed:
        held = "credentials in its user part"
    else:
        for name, arg in parse_qsl(parts.query, keep_blank_values=True):
            if name.lower() in ("password", "passwd", "pwd") and arg:
                held = f"a password in its `{name}` query parameter"
            elif looks_like_key(arg):
                held = f"a key-like value in its `{name}` query parameter"
            if held:
                break
    if held:
        raise PydanticCustomError("secret_in_url", "holds {held}; secrets are never kept in "
                                  "files", {"held": held, "fix": fix})
    return value


class BearerAuth(Model):
    """A bearer token in the Authorization header."""

    type: Literal["bearer"] = Field(description="bearer")
    token_env: EnvName = Field(description=(
        "The NAME of the environment variable that holds the token, never the token."))

    @field_validator("token_env", mode="before")
    @classmethod
    def _a_name(cls, value: Any) -> Any:
        return env_name(value, "BACKEND_TOKEN")


class HmacAuth(Model):
    """Requests signed with an HMAC secret."""

    type: Literal["hmac"] = Field(description="hmac")
    secret_env: EnvName = Field(description=(
        "The NAME of the environment variable that holds the secret, never the secret."))
    window_s: Int = Field(300, ge=1, le=3600, description=(
        "How old a signed request may be, in seconds."))

    @field_validator("secret_env", mode="before")
    @classmethod
    def _a_name(cls, value: Any) -> Any:
        return env_name(value, "BACKEND_SECRET")


# A response body over this many bytes fails its attempt: 16 times the largest answer a chat
# model gives today (128k output tokens, ~512 KB of text, more once JSON-escaped).
DEFAULT_MAX_RESPONSE_BYTES = 8 << 20


class ProviderSpec(Model):
    """A provider: how to reach it, its key by reference, its limits and prices."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"required": ["type"], "properties": {"type": {"const": "http"}}},
        "then": {"required": ["base_url"], "properties": {"base_url": {"type": "string"}}},
        "else": {"properties": {"auth": {"type": "null"}}},
    })

    type: Literal["groq", "openai", "http"] = Field(description=(
        "groq, openai (any OpenAI-compatible server with base_url) or http (the custom "
        "backend protocol)."))
    api_key_env: EnvName | None = Field(None, description=(
        "The NAME of the environment variable that holds the key (GROQ_API_KEY), never the "
        "key; the SDK's default variable when absent."))
    base_url: str | None = Field(None, pattern=r"^https?://", description=(
        "http(s)://...: a proxy, a mock, a compatible server; required for http. No "
        "credentials in it: keys come from the environment."), json_schema_extra={"not": {
            "type": "string", "pattern": "^https?://[^/?#]*@",
            "description": "credentials in the URL's user part"}})
    timeout_s: Float = Field(30, gt=0, le=600, description=(
        "Bound of each attempt as a whole, in seconds: connect, first byte, body."))
    max_response_bytes: Int = Field(
        DEFAULT_MAX_RESPONSE_BYTES, ge=1024, le=1 << 30,
        description="A response body over this many bytes fails its attempt (not retried).")
    limits: ProviderLimits = Field(ProviderLimits(), description=(
        "rpm, tpm and max_concurrency, shared by every function."))
    models: dict[str, Price] = Field(default_factory=dict, description=(
        "Prices per model id, in USD per million tokens, pinned in git."))
    auth: Annotated[BearerAuth | HmacAuth, Field(discriminator="type")] | None = Field(
        None, description="http only: {type: bearer, token_env} or {type: hmac, secret_env}.")

    @field_validator("base_url")
    @classmethod
    def _no_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        where = ("`auth.token_env` or `auth.secret_env`" if kind == "http" else
                 "`api_key_env` (the NAME of the variable that holds the key)")
        return url_without_secrets(value, user_allowed=False, fix=(
            f"remove them from the URL; name the key's environment variable in {where}, or "
            "set the whole URL in the environment (AIOPS_<PROVIDER>_BASE_URL)"))

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _a_name(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")  # a valid type, or none: the message's example variable
        example = f"{kind.upper()}_API_KEY" if kind in ("groq", "openai") else "PROVIDER_API_KEY"
        return env_name(value, example)

    @model_validator(mode="after")
    def _wiring(self) -> ProviderSpec:
        if self.type == "http" and not self.base_url:
            raise ValueError("an `http` provider needs `base_url`, the root of its protocol")
        if self.type != "http" and self.auth is not None:
            raise ValueError("`auth` applies to `http` providers; use `api_key_env`")
        return self


class ProvidersFile(Model):
    """providers.yaml: the providers functions may name."""

    providers: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ProviderSpec] = Field(
        description="Providers by name: lowercase letters, digits and dashes.",
        json_schema_extra={"additionalProperties": False})


# --- aiops.yaml --------------------------------------------------------------------------


PROJECT_ID_CHARS = 300  # managed_by, managed_functions.project, reconcile_runs.project
# Printable, no surrounding blanks: an id a derived fallback made (a folder's name, a path, a
# remote) can be written down as it is.
PROJECT_ID_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"


class Receiver(Model):
    """Where alert notifications go (aiops.yaml `alerting.receivers`): the URL, and a webhook's
    signing secret, by the NAMES of environment variables, never the values."""

    type: Literal["webhook", "slack", "alertmanager"] = Field(description=(
        "webhook (a JSON body signed per Standard Webhooks), slack (a Slack-compatible "
        "incoming-webhook message) or alertmanager (the Alertmanager v2 alerts API)."))
    url_env: EnvName = Field(description=(
        "The NAME of the environment variable that holds the URL (it may hold a token)."))
    secret_env: EnvName | None = Field(None, description=(
        "webhook only, required: the NAME of the variable that holds the signing secret, "
        "whsec_ followed by base64 (Standard Webhooks)."))
    timeout_s: Float = Field(10, gt=0, le=60, description=(
        "Bound of one delivery attempt as a whole, in seconds."))

    @field_validator("url_env", "secret_env", mode="before")
    @classmethod
    def _a_name(cls, value: Any) -> Any:
        return env_name(value, "AIOPS_ALERT_URL")

    @model_validator(mode="after")
    def _secret_for_webhooks(self) -> Receiver:
        if self.type == "webhook" and self.secret_env is None:
            raise ValueError("a `webhook` receiver signs what it sends: name the variable that "
                             "holds its secret in `secret_env` (e.g. AIOPS_ALERT_SECRET)")
        if self.type != "webhook" and self.secret_env is not None:
            raise ValueError(f"`secret_env` applies to `webhook` receivers, not `{self.type}`")
        return self


class Alerting(Model):
    """How alert rules are evaluated and where they notify (aiops.yaml `alerting:`)."""

    interval: str = Field("30s", pattern=DURATION_PATTERN, description=(
        "How often `aiops serve` evaluates every rule (one evaluator across replicas)."),
        json_schema_extra={"pattern": _WINDOW_PATTERN})
    allow_private_addresses: Bool = Field(False, description=(
        "Let receivers' URLs resolve to private, loopback or link-local addresses (off: an "
        "SSRF guard)."))
    repeat_interval: str | None = Field("4h", pattern=DURATION_PATTERN, description=(
        "While a rule fires, notify again this often (a rule's `repeat` overrides it); null: "
        "only when it starts and stops firing."), json_schema_extra={"pattern": _WINDOW_PATTERN})
    receivers: dict[Annotated[str, Field(pattern=RECEIVER_NAME_PATTERN)], Receiver] = Field(
        default_factory=dict, description="Receivers by name; rules name them in `notify`.")

    @field_validator("interval", "repeat_interval")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return _a_window(value)


class ProjectSettings(Model):
    """Optional project settings: `aiops.yaml`."""

    project: str | None = Field(None, max_length=PROJECT_ID_CHARS, pattern=PROJECT_ID_PATTERN,
                                description=(
        "The project's id: who owns the functions it applies to a database (`aiops init` "
        "writes a name and a random suffix). Keep it when the folder moves or is renamed; "
        "give a copy that becomes another project an id of its own. AIOPS_PROJECT overrides "
        "it."))
    database_url: str | None = Field(None, description=(
        "The database (sqlite:///path, postgresql://user@host/db); without a password: "
        "AIOPS_DATABASE_URL, PGPASSWORD or ~/.pgpass hold that."))
    max_prune: Int = Field(10, ge=0, le=INT32_MAX)
    log_patience_s: Float = Field(120, ge=0, le=86400, description=(
        "How long log writes and budget leases wait, in all, for a locked or unreachable "
        "database before rows are saved to .aiops/pending-logs/ (seconds)."))
    alerting: Alerting = Field(Alerting(), description=(
        "Alert evaluation and receivers: interval, allow_private_addresses, repeat_interval, "
        "receivers."))

    @field_validator("database_url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        return url_without_secrets(value, user_allowed=True, fix=(
            "leave the password out of aiops.yaml: set the whole URL in AIOPS_DATABASE_URL, "
            "or let PostgreSQL read the password from PGPASSWORD or ~/.pgpass"))


FORMAT_MODELS: dict[str, type[Model]] = {
    "function": FunctionSpec,
    "providers": ProvidersFile,
    "project": ProjectSettings,
}
