"""Keys are names, never values: `api_key_env`, `secret_env` and `token_env` hold the NAME
of an environment variable. A key there (a known prefix, or a long random-looking value) or
any other text that is no variable name is refused when providers.yaml is read, showing at
most its first 4 characters and its length."""

from __future__ import annotations

import base64
import random
import string
from typing import Any

import pytest

from aiops.keyscrub import looks_like_key, masked
from aiops.loader import load_sources
from tests.factories import dump

NAMES = ["OPENAI_API_KEY", "GROQ_API_KEY", "AZURE_OPENAI_API_KEY_PRODUCTION_EASTUS2",
         "MY_COMPANY_INTERNAL_LLM_GATEWAY_TOKEN_V2", "GROQ_API_KEY_2024_12", "HF_TOKEN",
         "INTERNAL_AIOPS_SECRET", "AWS_SECRET_ACCESS_KEY", "HUGGINGFACEHUB_API_TOKEN",
         "MyServiceApiKey2024", "MyServiceApiKeyForProd2024Region", "OPENAIAPIKEYFORPRODUCTION2",
         "LLM_GATEWAY_SHARED_SECRET_2025Q1", "OpenAiApiKeyForTheProductionCluster", "hf_token",
         "AZURE_OPENAI_API_KEY_2024_05_01_PREVIEW", "MIXTRAL_8X7B_32768_API_KEY", "sk_live_mode",
         "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDFLARE_AI_GATEWAY_TOKEN_ACCOUNT_7", "X", "_",
         "TF_VAR_openai_api_key", "DATABRICKS_TOKEN_WORKSPACE_3141", "GPT4O_MINI_KEY"]
PREFIXED = ["sk-proj-" + "a" * 40, "sk-ant-api03-" + "b" * 40, "gsk_" + "c" * 52,
            "xai-" + "d" * 80, "AIza" + "e" * 35, "ghp_" + "f" * 36, "github_pat_" + "g" * 82,
            "hf_" + "h" * 34, "r8_" + "i" * 37, "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9"]


@pytest.mark.parametrize("name", NAMES)
def test_names_are_not_keys(name: str) -> None:
    assert not looks_like_key(name)


@pytest.mark.parametrize("key", PREFIXED)
def test_keys_with_a_known_prefix_are_keys(key: str) -> None:
    assert looks_like_key(key)


def test_random_keys_are_keys() -> None:
    rng = random.Random(7)

    def draw(alphabet: str, low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    kinds = {
        "base62": lambda: draw(string.ascii_letters + string.digits, 24, 64),
        "hex": lambda: draw("0123456789abcdef", 24, 64),
        "base64": lambda: base64.b64encode(rng.randbytes(rng.randint(18, 48))).decode(),
        "urlsafe": lambda: base64.urlsafe_b64encode(rng.randbytes(rng.randint(18, 48)))
        .decode().rstrip("="),
    }
    for kind, make in kinds.items():
        found = sum(looks_like_key(make()) for _ in range(500))
        assert found >= 495, kind  # 99% at least (measured: 99.6% or more)


def test_masked_shows_at_most_four_characters_and_the_length() -> None:
    assert masked("gsk_" + "x" * 52) == '"gsk_…", 56 characters'
    assert masked("abcdefg") == '"a…", 7 characters'  # a short value shows less
    assert masked("ab") == '"…", 2 characters'


def _providers(**auth_or_key: Any) -> dict[str, Any]:
    http: dict[str, Any] = {"type": "http", "base_url": "http://x"}
    if "auth" in auth_or_key:
        http["auth"] = auth_or_key["auth"]
    groq: dict[str, Any] = {"type": "groq"}
    if "key" in auth_or_key:
        groq["api_key_env"] = auth_or_key["key"]
    return {"providers": {"groq": groq, "backend": http}}


GROQ_KEY = "gsk_" + "Qx7bN2pLk9ZrT4vW" * 3 + "a1B2"  # a valid variable name in shape


@pytest.mark.parametrize(("providers", "path", "message", "example"), [
    (_providers(key=GROQ_KEY), "providers.groq.api_key_env",
     'holds a key-like value ("gsk_…", 56 characters)', "GROQ_API_KEY"),
    (_providers(auth={"type": "hmac", "secret_env": "Hm4cS3crQ9wE8rT7yU6iO5pA4sD3fG2hJ1kL"}),
     "providers.backend.auth.secret_env", 'holds a key-like value ("Hm4c…", 36 characters)',
     "BACKEND_SECRET"),
    (_providers(auth={"type": "bearer", "token_env": "f61d9c0b7a5e43f2a8b1c9d0e7f6a5b4c3d2"}),
     "providers.backend.auth.token_env", 'holds a key-like value ("f61d…", 36 characters)',
     "BACKEND_TOKEN"),
    (_providers(key="groq key"), "providers.groq.api_key_env",
     'holds a value that is not an environment variable name ("gr…", 8 characters): a name '
     "is letters, digits and _, not starting with a digit", "GROQ_API_KEY"),
])
def test_a_key_where_a_name_belongs_is_refused_and_masked(providers: dict[str, Any], path: str,
                                                          message: str, example: str) -> None:
    project = load_sources({"providers.yaml": dump(providers)})
    (diag,) = project.diagnostics
    assert (diag.path, diag.message) == (path, message)
    assert diag.fix.startswith(f"put the variable's NAME here, e.g. {example}")
    assert diag.line is not None and project.providers is None


def test_the_names_of_the_examples_load() -> None:
    project = load_sources({"providers.yaml": dump(_providers(
        key="GROQ_API_KEY", auth={"type": "bearer", "token_env": "BACKEND_TOKEN"}))})
    assert project.ok and project.providers is not None


# A key or a password is no more welcome in a URL of a file than in an `*_env` value: the
# provider's `base_url` and aiops.yaml's `database_url` refuse one, and never show it.
@pytest.mark.parametrize(("url", "held"), [
    (f"https://user:{GROQ_KEY}@proxy.example/v1", "a password in its user part"),
    (f"https://{GROQ_KEY}@proxy.example/v1", "credentials in its user part"),
    ("https://proxy.example/v1?api-key=3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
     "a key-like value in its `api-key` query parameter"),
])
def test_a_secret_in_a_base_url_is_refused_and_not_shown(url: str, held: str) -> None:
    providers = {"providers": {"groq": {"type": "groq", "base_url": url}}}
    project = load_sources({"providers.yaml": dump(providers)})
    (diag,) = project.diagnostics
    assert (diag.path, diag.message) == (
        "providers.groq.base_url", f"holds {held}; secrets are never kept in files")
    assert "api_key_env" in diag.fix and diag.line is not None
    assert GROQ_KEY not in diag.render() and "3f9a8b7c" not in diag.render()


@pytest.mark.parametrize("url", ["https://proxy.example/v1?api-version=2024-05-01-preview",
                                 "http://127.0.0.1:8080/aiops", "https://proxy.example/"])
def test_a_base_url_without_secrets_loads(url: str) -> None:
    providers = {"providers": {"groq": {"type": "groq", "base_url": url}}}
    assert load_sources({"providers.yaml": dump(providers)}).ok


@pytest.mark.parametrize(("url", "ok"), [
    ("postgresql+psycopg://aiops:hunter2hunter2@db.example/aiops", False),
    ("postgresql://aiops@db.example/aiops?password=hunter2", False),
    ("postgresql://aiops@db.example/aiops?sslmode=require", True),
    ("sqlite:///state/aiops.db", True),
])
def test_a_password_in_aiops_yaml_is_refused_and_not_shown(url: str, ok: bool) -> None:
    project = load_sources({"aiops.yaml": dump({"database_url": url})})
    assert project.ok is ok
    if not ok:
        (diag,) = project.diagnostics
        assert diag.path == "database_url" and "password" in diag.message
        assert "AIOPS_DATABASE_URL" in diag.fix and "hunter2" not in diag.render()
