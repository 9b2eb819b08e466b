"""A deployed version compiled for running: validators, templates, filters, the chain of
providers and their prices, the rate-limit scope. Pure: the runner compiles a version once and
keeps it while the version stays the same."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from aiops.errors import ConfigError, FieldError
from aiops.filters import FilterChain
from aiops.limits import DEFAULT_MAX_TOKENS, RateSpec
from aiops.prompts import CompiledPrompt, compile_prompt
from aiops.records import DeployedVersion
from aiops.schemas import CompiledSchema
from aiops.spec import Limits, Price, ProvidersFile, Retry


@dataclass(frozen=True, kw_only=True)
class Candidate:
    provider: str
    model: str
    settings: dict[str, Any]
    price: Price | None
    max_tokens: int
    # What a function with a USD budget sends: `settings` with max_tokens always set, so that
    # the estimate (prompt + max_tokens) bounds what the call can cost.
    budget_settings: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A resolved version with everything compiled once: validators, templates, filters."""

    dv: DeployedVersion
    limits: Limits
    input_validator: CompiledSchema
    output_validator: CompiledSchema
    input_schema: dict[str, Any]
    request_schema: dict[str, Any] | None  # None: plain text output
    request_schema_chars: int  # its size as sent: input tokens too, in estimates
    prompt: CompiledPrompt
    candidates: tuple[Candidate, ...]
    retry: Retry
    input_filters: FilterChain
    output_filters: FilterChain
    scope: RateSpec


def fill_defaults(schema: Any, value: Any) -> Any:
    """A copy of `value` with the schema's property defaults filled in (nested objects too)."""
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    props = schema.get("properties")
    if not isinstance(props, dict):
        return value
    out = dict(value)
    for name, sub in props.items():
        if name not in out and isinstance(sub, dict) and "default" in sub:
            out[name] = json.loads(json.dumps(sub["default"]))
        elif name in out and isinstance(sub, dict) and sub.get("properties"):
            out[name] = fill_defaults(sub, out[name])
    return out


def schema_problem(validator: CompiledSchema, value: Any) -> str | None:
    """None when `value` is valid; else the most relevant error with its path."""
    error = validator.first_error(value)
    return None if error is None else error.render()[:500]


def prepare(dv: DeployedVersion, providers: ProvidersFile) -> Prepared:
    """Compile a deployed version for running (pure)."""
    content = dv.content
    input_schema = content["input_schema"]
    output_schema = content.get("output_schema") or {"type": "string"}
    base_settings = {k: v for k, v in (content.get("configuration") or {}).items()
                     if v is not None}
    chain = [(content["provider"], content["model"], base_settings)]
    for fb in content.get("fallbacks") or ():
        settings = {k: v for k, v in (fb.get("configuration") or {}).items() if v is not None}
        chain.append((fb["provider"], fb["model"], settings or base_settings))
    candidates = []
    for provider, model, settings in chain:
        pspec = providers.providers.get(provider)
        price = pspec.models.get(model) if pspec else None
        max_tokens = settings.get("max_tokens") or DEFAULT_MAX_TOKENS
        candidates.append(Candidate(provider=provider, model=model, settings=settings,
                                    price=price, max_tokens=max_tokens,
                                    budget_settings={**settings, "max_tokens": max_tokens}))
    limits = Limits.model_validate(dv.limits or {})
    filters = content.get("filters") or {}
    variables = tuple((input_schema.get("properties") or {}).keys())
    try:  # a version deployed before its patterns were held to the linear-time engines
        validators = CompiledSchema(input_schema), CompiledSchema(output_schema)
        chains = (FilterChain.from_rules(filters.get("input") or ()),
                  FilterChain.from_rules(filters.get("output") or ()))
    except ValueError as exc:
        raise ConfigError(f"{dv.name}@{dv.version} cannot run: {str(exc).splitlines()[0]}; "
                          "`aiops validate` locates it: fix it and apply a new version") from None
    request_schema = None if output_schema.get("type") == "string" else output_schema
    return Prepared(
        dv=dv, limits=limits, input_schema=input_schema,
        input_validator=validators[0], output_validator=validators[1],
        request_schema=request_schema,
        request_schema_chars=len(json.dumps(request_schema)) if request_schema else 0,
        prompt=compile_prompt(content["prompt"], variables),
        candidates=tuple(candidates), retry=Retry.model_validate(content.get("retry") or {}),
        input_filters=chains[0], output_filters=chains[1],
        scope=RateSpec(key=f"function:{dv.name}", rpm=limits.rpm, tpm=limits.tpm,
                       max_concurrency=limits.max_concurrency))


def matrix(p: Prepared) -> tuple[str, ...]:
    """The providers a deployed version runs on: its provider and its fallbacks', in order,
    each once."""
    return tuple(dict.fromkeys(c.provider for c in p.candidates))


def only_provider(p: Prepared, provider: str) -> Prepared:
    """`p` on `provider` alone (the first entry of its chain that names it: that entry's
    model and settings), without fallbacks. A provider outside its matrix is a FieldError at
    `/provider`."""
    chosen = next((c for c in p.candidates if c.provider == provider), None)
    if chosen is None:
        raise FieldError(f"provider `{provider}` is not in {p.dv.name}@{p.dv.version}'s "
                         f"matrix ({', '.join(matrix(p))}): its provider and its fallbacks'",
                         pointer="/provider")
    return replace(p, candidates=(chosen,))
