"""Fixtures of the assistant tests (a pytest plugin named in conftest.py): tiny models, their search path, a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_assistant_models import tiny_models

from pathview.assistant import create_backend
from pathview.assistant.server import ModelServer


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tiny_models(tmp_path_factory.mktemp("assistant"))


@pytest.fixture
def models_env(tiny, monkeypatch, tmp_path):
    """Point the model search at the tiny models only."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATHVIEW_MODELS", str(next(iter(tiny.values())).parent))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tiny


@pytest.fixture
def served(models_env):
    local = create_backend("transformers", model="tiny-gemma3")
    local.load()
    server = ModelServer(local, port=0)
    server.start()
    yield local, server
    server.shutdown()
    server.server_close()
