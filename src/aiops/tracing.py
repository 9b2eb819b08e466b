"""OpenTelemetry traces of executions (DESIGN §8), an optional extra: `pip install
'aiops-kit[otel]'`, switched on by `AIOPS_OTEL=on` in the runner's environment.

    run {function}    one span per execution (INTERNAL), a child of the caller's current span
      chat {model}    one CLIENT span per provider call (attempt): retries, repairs, fallbacks

Named and attributed by the OpenTelemetry GenAI semantic conventions: gen_ai.operation.name
(`chat`), gen_ai.provider.name (the provider's type: openai, groq; an `http` provider's name),
gen_ai.request.model, gen_ai.response.model, gen_ai.response.id, gen_ai.usage.input_tokens /
output_tokens, gen_ai.response.finish_reasons, error.type, and gen_ai.prompt.name /
gen_ai.prompt.version set to the function's name and version; aiops.log_id names the log row.

Content (the prompt's messages on each call span, the output on the execution span) is
recorded only with `AIOPS_OTEL_CONTENT=on`, with provider keys scrubbed; the output is what
the log row holds, after the output filters. A provider's raw answer is never recorded: it
has not been through the output filters.

Spans go to the global tracer provider (the application's, or `opentelemetry-instrument`'s).
Switched off (the default) this module imports nothing; switched on without the package
installed, the runner refuses to start with the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiops import __version__
from aiops.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from aiops.observe import Observer
    from aiops.providers import Completion, CompletionRequest
    from aiops.runner import Attempt, Execution
    from aiops.spec import ProvidersFile

SWITCH = "AIOPS_OTEL"
CONTENT = "AIOPS_OTEL_CONTENT"
MAX_CONTENT_CHARS = 65536  # of each message's text recorded in a span
_ON = frozenset({"1", "true", "on", "yes"})
_OFF = frozenset({"", "0", "false", "off", "no"})


def switched(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(f"{name}={env.get(name)!r}: use on or off")


def from_env(env: Mapping[str, str], providers: ProvidersFile,
             scrub: Callable[[str], str],
             tracer_provider: TracerProvider | None = None) -> tuple[Observer, ...]:
    """The tracer of a runner whose environment is `env`: none unless AIOPS_OTEL is on."""
    if not switched(env, SWITCH):
        return ()
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigError(f"{SWITCH} is on but OpenTelemetry is not installed: "
                          "pip install 'aiops-kit[otel]' (or set it off)") from None
    provider = tracer_provider or trace.get_tracer_provider()
    kinds = {name: (p.type if p.type != "http" else name)
             for name, p in providers.providers.items()}
    return (Tracing(provider.get_tracer("aiops", __version__), kinds,
                    content=switched(env, CONTENT), scrub=scrub),)


class Tracing:
    """The observer (`aiops.observe.Observer`) that traces executions."""

    def __init__(self, tracer: Tracer, kinds: Mapping[str, str], *, content: bool,
                 scrub: Callable[[str], str]) -> None:
        from opentelemetry import trace

        self.tracer, self.kinds, self.content, self.scrub = tracer, kinds, content, scrub
        self.trace = trace  # imported once, not in every span

    def execution(self, function: str, version: str, log_id: str) -> _Run:
        return _Run(self, function, version, log_id)


class _Run:
    """One execution's span and the spans of its calls."""

    def __init__(self, tracing: Tracing, function: str, version: str, log_id: str) -> None:
        self.tracing = tracing
        self.common = {"gen_ai.prompt.name": function, "gen_ai.prompt.version": version,
                       "aiops.log_id": log_id}
        self.span = tracing.tracer.start_span(f"run {function}",
                                              kind=tracing.trace.SpanKind.INTERNAL,
                                              attributes=self.common)
        self.open: list[_Chat] = []
        self.response_model: str | None = None

    def attempt(self, provider: str, model: str, request: CompletionRequest) -> _Chat:
        tracing = self.tracing
        attributes: dict[str, Any] = {
            **self.common, "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": tracing.kinds.get(provider, provider),
            "gen_ai.request.model": model, "aiops.provider": provider}
        if tracing.content:
            attributes["gen_ai.input.messages"] = json.dumps([
                {"role": m.get("role", "user"),
                 "parts": [{"type": "text", "content": tracing.scrub(
                     str(m.get("content", ""))[:MAX_CONTENT_CHARS])}]}
                for m in request.messages], ensure_ascii=False)
        span = tracing.tracer.start_span(
            f"chat {model}", kind=tracing.trace.SpanKind.CLIENT, attributes=attributes,
            context=tracing.trace.set_span_in_context(self.span))
        chat = _Chat(self, span)
        self.open.append(chat)
        return chat

    def done(self, execution: Execution) -> None:
        trace = self.tracing.trace
        for chat in self.open:  # cancelled mid-call: the call ends with the execution
            _failed(trace, chat.span, type(execution.error).__name__ if execution.error
                    else "Cancelled")
            chat.span.end()
        self.open.clear()
        attempted = [a for a in execution.attempts if a.status != "skipped"]
        last = attempted[-1] if attempted else None
        provider = execution.provider or (last.provider if last else None)
        model = execution.model or (last.model if last else None)
        attributes: dict[str, Any] = {
            "gen_ai.usage.input_tokens": execution.input_tokens,
            "gen_ai.usage.output_tokens": execution.output_tokens,
            "aiops.cost_usd": execution.cost_usd, "aiops.attempts": len(execution.attempts)}
        if provider:
            attributes["gen_ai.provider.name"] = self.tracing.kinds.get(provider, provider)
            attributes["aiops.provider"] = provider
        if model:
            attributes["gen_ai.request.model"] = model
        if self.response_model and execution.ok:
            attributes["gen_ai.response.model"] = self.response_model
        if execution.error is None and self.tracing.content:
            text = (execution.output if isinstance(execution.output, str)
                    else json.dumps(execution.output, ensure_ascii=False))
            attributes["gen_ai.output.messages"] = json.dumps(
                [{"role": "assistant", "parts": [
                    {"type": "text", "content": text[:MAX_CONTENT_CHARS]}]}],
                ensure_ascii=False)
        self.span.set_attributes(attributes)
        if execution.error is not None:
            _failed(trace, self.span, type(execution.error).__name__,
                    execution.error.message[:300])
        self.span.end()


class _Chat:
    def __init__(self, run: _Run, span: Span) -> None:
        self.run, self.span = run, span

    def done(self, attempt: Attempt, completion: Completion | None) -> None:
        attributes: dict[str, Any] = {"gen_ai.usage.input_tokens": attempt.input_tokens,
                                      "gen_ai.usage.output_tokens": attempt.output_tokens}
        if completion is not None:
            if completion.model:
                attributes["gen_ai.response.model"] = completion.model
                if attempt.status == "ok":
                    self.run.response_model = completion.model
            if completion.request_id:
                attributes["gen_ai.response.id"] = completion.request_id
            if completion.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = (completion.finish_reason,)
        if attempt.repair:
            attributes["aiops.repair"] = True
        self.span.set_attributes(attributes)
        if attempt.status != "ok":
            _failed(self.run.tracing.trace, self.span, attempt.kind or attempt.error or "error",
                    attempt.message)
        self.span.end()
        self.run.open.remove(self)


def _failed(trace: Any, span: Span, kind: str, message: str | None = None) -> None:
    span.set_attribute("error.type", kind)
    span.set_status(trace.Status(trace.StatusCode.ERROR, message))
