"""Assistant answers kept as findings: filed under their annotation or region, carried by exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import CMU_SVS

from pathview.assistant import AssistantError, ChatSession, create_backend
from pathview.assistant.findings_link import REGION_NAME, annotation_context, save_answer
from pathview.cli import main
from pathview.findings import Annotation, FindingsStore, rectangle
from pathview.slide import open_slide


@pytest.fixture
def session(models_env):
    backend = create_backend("transformers", model="tiny-gemma3")
    with open_slide(CMU_SVS) as slide:
        yield ChatSession(backend, slide)


def test_an_answer_about_a_view_becomes_an_assistant_region_finding(session, store):
    qh = session.slide.quickhash
    turn = session.ask("Is there keratin?", (300, 400, 640, 480))
    with pytest.raises(AssistantError, match="no complete answer"):
        save_answer(store, qh, turn)
    "".join(session.answer(turn, max_new_tokens=5))
    ann_id = save_answer(store, qh, turn)
    assert save_answer(store, qh, turn) == ann_id, "saving twice files it once"
    ann = store.get(qh, ann_id)
    assert ann.name == REGION_NAME and ann.source == "assistant" and ann.kind == "rectangle"
    assert ann.bounds == (300, 400, 940, 880)
    (answer,) = store.answers(qh, ann_id)
    assert answer.question == "Is there keratin?" and answer.answer == turn.answer.strip()
    assert answer.model == "tiny-gemma3" and answer.image_png == turn.context.images[0].png


def test_an_answer_about_an_annotation_is_filed_under_it_with_its_class_and_note(session, store):
    qh = session.slide.quickhash
    ann = store.add(qh, Annotation(rectangle(1000, 1200, 1400, 1500), kind="rectangle", class_name="Tumor",
                                   note="deep margin"))
    box, about = annotation_context(store, qh, ann.id)
    assert box == (1000, 1200, 400, 300) and about.classification == "Tumor" and about.note == "deep margin"
    turn = session.ask("Is this tumour?", box, about)
    assert "class 'Tumor', note: deep margin" in turn.context.text
    list(session.answer(turn, max_new_tokens=4))
    assert save_answer(store, qh, turn) == ann.id and store.count(qh) == 1
    assert [a.question for a in store.answers(qh, ann.id)] == ["Is this tumour?"]


def test_cli_asks_about_an_annotation_and_saves_the_answer(served, tmp_path):
    _, server = served
    ws = tmp_path / "workspace"
    with open_slide(CMU_SVS) as slide, FindingsStore.open(ws) as store:
        qh = slide.quickhash
        ann = store.add(qh, Annotation(rectangle(600, 900, 1100, 1300), kind="rectangle", class_name="Stroma"))
    cmd = [sys.executable, "-m", "pathview", "ask", str(CMU_SVS), "What is this?", "--annotation", ann.id,
           "--server", server.url, "--max-tokens", "4", "--save", "--workspace", str(ws), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["region"] == [600, 900, 500, 400] and out["saved_to"] == ann.id
    assert out["facts"]["annotation"]["class"] == "Stroma"
    with FindingsStore.open(ws) as store:
        assert store.answers(qh, ann.id)[0].answer == out["answer"].strip()
    geojson = tmp_path / "out.geojson"
    res = subprocess.run([sys.executable, "-m", "pathview", "export", str(CMU_SVS), "-f", "geojson", "-o", str(geojson),
                          "--workspace", str(ws)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "What is this?" in geojson.read_text() and "not a diagnosis" in geojson.read_text()


def test_cli_names_a_missing_annotation_in_one_line(tmp_path, capsys):
    code = main(["ask", str(CMU_SVS), "What is this?", "--annotation", "nope", "--server", "http://127.0.0.1:9",
                 "--workspace", str(tmp_path / "workspace")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("pathview: error: ") and "nope" in err and err.count("\n") == 1
