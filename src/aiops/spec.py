"""The file formats as frozen, closed pydantic models: function.yaml, providers.yaml, aiops.yaml.

No I/O here: `loader` reads files and turns validation errors into located diagnostics.
Unknown keys are errors (extra="forbid"); defaults are materialised so that fingerprints see
the behaviour a call will really have.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from aiops.errors import shown
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
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


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
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class Configuration(Model):
    """Provider settings shared by the chat-completions APIs; unknown settings are errors."""

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=INT64[0], le=INT64[1])
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    reasoning_effort: Literal["low", "medium", "high"] | None = None


class Fallback(Model):
    provider: str = Field(max_length=PROVIDER_CHARS)
    model: str = Field(min_length=1, max_length=MODEL_CHARS)
    configuration: Configuration | None = None  # None: the function's configuration


class Retry(Model):
    max_attempts: int = Field(3, ge=1, le=10)
    backoff_s: float = Field(0.5, ge=0, le=60)
    max_backoff_s: float = Field(8.0, ge=0, le=600)
    repair_attempts: int = Field(1, ge=0, le=5)


class Limits(Model):
    rpm: int | None = Field(None, ge=1, le=INT32_MAX)
    tpm: int | None = Field(None, ge=1, le=INT32_MAX)
    max_concurrency: int | None = Field(None, ge=1, le=INT32_MAX)
    max_input_bytes: int = Field(65536, ge=1, le=MAX_INPUT_BYTES_CEILING)
    daily_budget_usd: float | None = Field(None, ge=0, le=MAX_BUDGET_USD)
    daily_calls: int | None = Field(None, ge=0, le=INT32_MAX)
    on_limit: Literal["wait", "fail"] = "wait"
    # None: `prompt_bytes` derives it. Left out of the dump while unset, so that adding the
    # key changed no existing function's metadata hash (and planned no update of every one).
    max_prompt_bytes: int | None = Field(None, ge=1024, le=MAX_PROMPT_BYTES_CEILING)

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
    invoke: tuple[str, ...] = ("everyone",)
    view: tuple[str, ...] = ("everyone",)


class FilterRule(Model):
    """A content filter: `pii_redact` (e-mail, phone and card numbers) or `{deny: REGEX}`."""

    pii_redact: bool | None = None
    deny: str | None = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {
            "description": cls.__doc__,
            "oneOf": [
                {"const": "pii_redact"},
                {"type": "object", "required": ["pii_redact"], "additionalProperties": False,
                 "properties": {"pii_redact": {"type": "boolean"}}},
                {"type": "object", "required": ["deny"], "additionalProperties": False,
                 "properties": {"deny": {"type": "string", "format": "regex"}}},
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
    input: tuple[FilterRule, ...] = ()
    output: tuple[FilterRule, ...] = ()


class Alert(Model):
    metric: Literal["error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                    "cost_usd", "calls", "quota_usage"]
    over: str = Field(pattern=DURATION_PATTERN, description="window, e.g. 15m, 1h, 1d")
    above: float

    @field_validator("over")
    @classmethod
    def _window(cls, over: str) -> str:
        amount = int(over[:-1]) if len(over) <= 12 else MAX_ALERT_WINDOW_S + 1
        if amount * _SECONDS[over[-1]] > MAX_ALERT_WINDOW_S:
            raise ValueError(f"window {shown(over)} is longer than a year (366d)")
        return over


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Bounds(Model):
    min: float | None = None
    max: float | None = None

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

    path: str | None = Field(None, pattern=r"^\$")
    schema_valid: bool | None = None
    equals: Any = None
    contains: Any = None
    matches: str | None = None
    length: Bounds | None = None
    range: Bounds | None = None
    max_latency_ms: float | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, ge=0)
    not_: Assertion | None = Field(None, alias="not")

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

    name: str = Field(pattern=NAME_PATTERN.replace("{1,62}", "{0,62}"))
    description: str = ""
    input: dict[str, Any]
    expect: tuple[Assertion, ...] = ()


class FunctionSpec(Model):
    """One AI function: `functions/<name>/function.yaml`."""

    api_version: Literal["aiops/v1"] = Field(alias="apiVersion")
    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=SEMVER_PATTERN, max_length=VERSION_CHARS)
    description: str = ""
    status: Literal["draft", "active", "deprecated"] = "active"
    provider: str = Field(max_length=PROVIDER_CHARS)
    model: str = Field(min_length=1, max_length=MODEL_CHARS)
    configuration: Configuration = Configuration()
    prompt: tuple[Message, ...] = Field(min_length=1)
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "string"})
    fallbacks: tuple[Fallback, ...] = ()
    retry: Retry = Retry()
    limits: Limits = Limits()
    access: Access = Access()
    filters: Filters = Filters()
    alerts: tuple[Alert, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    test_providers: tuple[str, ...] | None = None
    tests: tuple[TestCase, ...] = ()

    @property
    def semver(self) -> Semver:
        return Semver(self.version)

    @property
    def output_is_text(self) -> bool:
        return self.output_schema.get("type") == "string"


# --- providers.yaml ----------------------------------------------------------------------


class Price(Model):
    """USD per million tokens, pinned in git."""

    input_per_mtok: float = Field(ge=0, le=MAX_PRICE_PER_MTOK)
    output_per_mtok: float = Field(ge=0, le=MAX_PRICE_PER_MTOK)
    cached_input_per_mtok: float | None = Field(None, ge=0, le=MAX_PRICE_PER_MTOK)
    reasoning_per_mtok: float | None = Field(None, ge=0, le=MAX_PRICE_PER_MTOK)


class ProviderLimits(Model):
    rpm: int | None = Field(None, ge=1, le=INT32_MAX)
    tpm: int | None = Field(None, ge=1, le=INT32_MAX)
    max_concurrency: int | None = Field(None, ge=1, le=INT32_MAX)


EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


class BearerAuth(Model):
    type: Literal["bearer"]
    token_env: EnvName


class HmacAuth(Model):
    type: Literal["hmac"]
    secret_env: EnvName
    window_s: int = Field(300, ge=1, le=3600)


# A response body over this many bytes fails its attempt: 16 times the largest answer a chat
# model gives today (128k output tokens, ~512 KB of text, more once JSON-escaped).
DEFAULT_MAX_RESPONSE_BYTES = 8 << 20


class ProviderSpec(Model):
    type: Literal["groq", "openai", "http"]
    api_key_env: EnvName | None = None
    base_url: str | None = Field(None, pattern=r"^https?://")
    timeout_s: float = Field(30, gt=0, le=600)
    max_response_bytes: int = Field(
        DEFAULT_MAX_RESPONSE_BYTES, ge=1024, le=1 << 30,
        description="a response body over this many bytes fails its attempt (not retried)")
    limits: ProviderLimits = ProviderLimits()
    models: dict[str, Price] = Field(default_factory=dict)
    auth: Annotated[BearerAuth | HmacAuth, Field(discriminator="type")] | None = None

    @model_validator(mode="after")
    def _wiring(self) -> ProviderSpec:
        if self.type == "http" and not self.base_url:
            raise ValueError("an `http` provider needs `base_url`, the root of its protocol")
        if self.type != "http" and self.auth is not None:
            raise ValueError("`auth` applies to `http` providers; use `api_key_env`")
        return self


class ProvidersFile(Model):
    providers: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ProviderSpec]


# --- aiops.yaml --------------------------------------------------------------------------


class ProjectSettings(Model):
    """Optional project settings: `aiops.yaml`."""

    database_url: str | None = None
    max_prune: int = Field(10, ge=0, le=INT32_MAX)


FORMAT_MODELS: dict[str, type[Model]] = {
    "function": FunctionSpec,
    "providers": ProvidersFile,
    "project": ProjectSettings,
}
