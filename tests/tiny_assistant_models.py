"""Tiny random Gemma 3 and Qwen2.5-VL models built offline, for the assistant tests.

The models have the real architectures, processors, tokenizers and chat templates, saved
as local folders in the layout publishers ship, with random weights a few hundred KB big.
"""

from __future__ import annotations

from pathlib import Path

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
