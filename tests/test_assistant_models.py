"""Tiny random Gemma 3 and Qwen2.5-VL models built offline, and finding/loading them like real ones.

The builders here are shared by the other assistant tests (``tiny_models``): the models
have the real architectures, processors, tokenizers and chat templates, saved as
local folders in the layout publishers ship, with random weights a few hundred KB big.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pathview.assistant import NoAssistantModelError, find_models, resolve_model
from pathview.assistant.errors import NotAVisionModelError, UnknownAssistantModelError

_BUILT: dict[str, Path] = {}

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<start_of_image>{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif p['type'] == 'text' %}"
    "{{ p['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = ["the tissue shows glands, stroma and nuclei with mitoses", "necrosis, lymphocytes and fibrous stroma"] * 10


def _tokenizer(specials: list[str], **named):
    """A byte-level BPE tokenizer trained in memory: any text encodes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **named)


def build_gemma3(folder: Path) -> Path:
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor

    tk = _tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                     "<end_of_image>", "<image_soft_token>"],
                    bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
                    extra_special_tokens={"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                                          "eoi_token": "<end_of_image>"})
    processor = Gemma3Processor(image_processor=Gemma3ImageProcessor(size={"height": 32, "width": 32}), tokenizer=tk,
                                chat_template=GEMMA_TEMPLATE, image_seq_length=4)
    ids = tk.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=dict(vocab_size=len(tk), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=64,
                         max_position_embeddings=2048),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        mm_tokens_per_image=4, image_token_index=ids("<image_soft_token>"), boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"), bos_token_id=tk.bos_token_id, eos_token_id=ids("<end_of_turn>"),
        pad_token_id=tk.pad_token_id)
    torch.manual_seed(0)
    Gemma3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_qwen25vl(folder: Path) -> Path:
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tk = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                     "<|image_pad|>", "<|video_pad|>"], eos_token="<|im_end|>", pad_token="<|endoftext|>")
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56 * 4, patch_size=14, merge_size=2),
        video_processor=Qwen2VLVideoProcessor(patch_size=14, merge_size=2), tokenizer=tk, chat_template=QWEN_TEMPLATE)
    ids = tk.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tk), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         bos_token_id=None, eos_token_id=tk.eos_token_id, pad_token_id=tk.pad_token_id),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, out_hidden_size=64, fullatt_block_indexes=[1], window_size=28),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), bos_token_id=None, eos_token_id=tk.eos_token_id,
        pad_token_id=tk.pad_token_id)
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_models(root: Path) -> dict[str, Path]:
    """Build both tiny models once per test process under ``root/models`` (a model root)."""
    if not _BUILT:
        import torch
        import transformers

        torch.set_num_threads(1)
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        models = root / "models"
        _BUILT["tiny-gemma3"] = build_gemma3(models / "tiny-gemma3")
        _BUILT["tiny-qwen25vl"] = build_qwen25vl(models / "tiny-qwen25vl")
    return dict(_BUILT)


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


def test_pathview_models_lists_assistant_models_installed_and_suggested(models_env, capsys):  # noqa: F811
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
