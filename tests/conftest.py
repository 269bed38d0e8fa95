"""Shared test setup: one grader cache for the whole session (shared by xdist workers), and a
fake Anthropic Messages API with providers pointed at it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_messages_api import FakeMessagesAPI

from perfgym.agent.providers.anthropic_provider import AnthropicProvider

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def grader_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir shared by all workers, so each baseline is measured once per session."""
    shared = tmp_path_factory.getbasetemp().parent / "perfgym-cache"
    shared.mkdir(exist_ok=True)
    os.environ["PERFGYM_CACHE_DIR"] = str(shared)
    os.environ.setdefault("PERFGYM_SECRET", "test-secret")
    return shared


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMessagesAPI]:
    """A started fake Messages API on 127.0.0.1; script it with `push(...)`."""
    # A proxy configured on the machine must not see (or swallow) loopback traffic.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with FakeMessagesAPI() as api:
        yield api


@pytest.fixture
def make_provider(fake_api: FakeMessagesAPI) -> Callable[..., AnthropicProvider]:
    """Builds AnthropicProviders that talk to `fake_api` with millisecond backoffs."""

    def make(**overrides: Any) -> AnthropicProvider:
        options: dict[str, Any] = {
            "api_key": "sk-ant-test",
            "base_url": fake_api.url,
            "max_retries": 3,
            "backoff_s": 0.001,
            "max_backoff_s": 0.01,
            "timeout_s": 10.0,
        }
        options.update(overrides)
        return AnthropicProvider(**options)

    return make
