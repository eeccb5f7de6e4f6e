"""The transformers backend on tiny random Gemma 3 and Qwen2.5-VL models loaded through the real loader."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import CMU_SVS

from pathview.assistant import ChatSession, LoadEvent, create_backend, load_in_background
from pathview.assistant.messages import message, png_bytes
from pathview.slide import open_slide

MODELS = ["tiny-gemma3", "tiny-qwen25vl"]


@pytest.fixture(scope="module")
def slide():
    with open_slide(CMU_SVS) as s:
        yield s


@pytest.fixture(params=MODELS)
def backend(request, models_env):
    b = create_backend("transformers", model=request.param)
    b.load()
    yield b
    b.close()


def test_loading_in_the_background_reports_progress_to_ready(models_env):
    events: list[LoadEvent] = []
    b = create_backend("transformers", model="tiny-qwen25vl")
    assert not b.loaded
    load_in_background(b, events.append).join(30)
    assert b.loaded and events[-1].fraction == 1.0 and events[-1].error is None
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and len(events) >= 4
    assert str(b.device) == "cpu" and b.model.dtype.is_floating_point and str(b.model.dtype) == "torch.float32"


def test_streamed_answer_is_the_models_own_greedy_answer(backend):
    msgs = [message("user", "Describe the tissue.", [png_bytes(np.full((40, 56, 3), 180, np.uint8))])]
    pieces = list(backend.stream(msgs, max_new_tokens=12))
    assert len(pieces) >= 2, "the answer arrives in pieces, not at once"
    inputs = backend.encode(msgs)
    out = backend.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    direct = backend.processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "".join(pieces) == direct


def test_stop_ends_generation_within_a_second(backend):
    stop = threading.Event()
    msgs = [message("user", "Describe the tissue in detail.")]
    stream = backend.stream(msgs, stop, max_new_tokens=1500)
    first = next(stream)
    stop.set()
    t0 = time.perf_counter()
    rest = list(stream)
    elapsed = time.perf_counter() - t0
    assert first and elapsed < 1.0
    assert len(rest) < 10, f"{len(rest)} pieces after Stop"


def test_the_region_image_reaches_the_model(backend, slide):
    """Two regions of the same size, same question: different pixel values in, different logits out."""
    import torch

    def last_logits(box):
        session = ChatSession(backend, slide, max_images=1)
        turn = session.ask("What is in this region?", box)
        inputs = backend.encode(session.messages(turn))
        assert "pixel_values" in inputs
        with torch.inference_mode():
            return inputs["pixel_values"], backend.model(**inputs).logits[0, -1]

    blank_px, blank = last_logits((0, 0, 400, 400))  # the white corner of the slide
    tissue_px, tissue = last_logits((1000, 1400, 400, 400))  # dermis
    assert blank_px.shape == tissue_px.shape and not torch.equal(blank_px, tissue_px)
    assert not torch.allclose(blank, tissue, atol=1e-5)


def test_follow_up_questions_carry_the_conversation(backend, slide):
    session = ChatSession(backend, slide)
    box = (800, 1200, 600, 500)
    first = session.ask("Is there keratin here?", box)
    answer = "".join(session.answer(first, max_new_tokens=6))
    assert first.state == "done" and answer and first.answer == answer
    follow = session.ask("And any necrosis?", box)
    assert not follow.sends_images, "the same region's pictures are not sent twice"
    prompt = backend.processor.tokenizer.decode(backend.encode(session.messages(follow))["input_ids"][0])
    assert "Is there keratin here?" in prompt and "And any necrosis?" in prompt
    assert answer.strip()[:4] in prompt, "the first answer is in the prompt of the follow-up"
    assert prompt.index("keratin") < prompt.index("necrosis")
    list(session.answer(follow, max_new_tokens=4))
    other = session.ask("What about here?", (0, 0, 300, 300))
    assert other.sends_images and [t.box for t in session.turns] == [box, box, (0, 0, 300, 300)]
