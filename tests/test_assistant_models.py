"""Finding and loading assistant models like real ones, with the tiny random models of ``tiny_assistant_models``."""

from __future__ import annotations

import json

import pytest

from pathview.assistant import NoAssistantModelError, find_models, resolve_model
from pathview.assistant.errors import NotAVisionModelError, UnknownAssistantModelError

def test_installed_models_are_found_by_architecture_name_and_path(models_env, tmp_path):
    found = {m.name: m for m in find_models()}
    assert set(found) == {"tiny-gemma3", "tiny-qwen25vl"}
    assert found["tiny-gemma3"].architecture == "Gemma3ForConditionalGeneration"
    assert "MedGemma" in found["tiny-gemma3"].family and "Lingshu" in found["tiny-qwen25vl"].family
    assert resolve_model("TINY-QWEN25VL").path == models_env["tiny-qwen25vl"]
    assert resolve_model(str(models_env["tiny-gemma3"])).name == "tiny-gemma3"
    assert resolve_model().name == "tiny-gemma3"  # the first installed one

    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["Dinov2Model"]}))
    with pytest.raises(NotAVisionModelError, match="Dinov2Model, not a vision-language model"):
        resolve_model(encoder)
    with pytest.raises(UnknownAssistantModelError, match="tiny-gemma3, tiny-qwen25vl"):
        resolve_model("medgemma-27b")


def test_with_no_model_installed_the_message_says_what_to_install_where(tmp_path, monkeypatch):
    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATHVIEW_MODELS", str(empty))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert find_models([empty]) == []
    with pytest.raises(NoAssistantModelError) as err:
        resolve_model()
    message = str(err.value)
    assert f"into {empty}/NAME/" in message and "google/medgemma-4b-it" in message and "--server" in message


def test_pathview_models_lists_assistant_models_installed_and_suggested(models_env, capsys):
    from pathview.cli import main

    assert main(["models", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out) if r.get("kind") == "assistant"}
    assert records["tiny-gemma3"]["installed"] and records["tiny-gemma3"]["path"] == str(models_env["tiny-gemma3"])
    suggested = records["medgemma-4b-it"]
    assert not suggested["installed"] and suggested["source"] == "google/medgemma-4b-it"
    assert suggested["install_to"] == str(models_env["tiny-gemma3"].parent / "medgemma-4b-it")
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "assistant models" in text and "installed: " + str(models_env["tiny-qwen25vl"]) in text
