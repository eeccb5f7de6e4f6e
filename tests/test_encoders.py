"""The encoder registry and the offline loader, on tiny random models of every architecture family.

Each registered encoder is built tiny (depth and width shrunk, the rest of the
architecture as published), saved as its publisher ships it, and loaded back through
the real loader; wrong or missing weights must give one clear line naming the keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pathview.encoders import (
    DEFAULT_ENCODER,
    ModelNotInstalledError,
    ModelWeightsError,
    UnknownEncoderError,
    get_spec,
    list_specs,
    load_encoder,
    save_weights,
)
from pathview.encoders.loader import family_module
from pathview.encoders.registry import register
from pathview.encoders.spec import EncoderSpec

REQUIRED = {"uni", "uni2-h", "virchow2", "h-optimus-0", "h-optimus-1", "h0-mini", "prov-gigapath", "phikon-v2",
            "kaiko-vitb16", "conch", DEFAULT_ENCODER}
WEIGHTED = [s.name for s in list_specs() if s.needs_weights]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiles(n: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def tiny_folder(name: str, tmp_path, seed: int = 0):
    """Return (encoder, folder): a tiny random encoder and the folder its weights were saved to."""
    torch.manual_seed(seed)
    enc = load_encoder(name, random_weights=True, tiny=True)
    folder = tmp_path / name
    save_weights(enc, folder)
    return enc, folder


def test_registry_has_the_required_encoders_with_their_provenance():
    specs = {s.name: s for s in list_specs()}
    assert REQUIRED <= set(specs)
    assert list_specs()[0].name == DEFAULT_ENCODER
    for s in specs.values():
        assert s.card and s.licence and s.title and s.embed_dim > 0 and s.mpp > 0
        if s.needs_weights:
            assert s.card.startswith("https://") and s.files
    with pytest.raises(UnknownEncoderError, match="known encoders: .*uni"):
        get_spec("no-such-model")


def test_trident_names_select_the_same_encoders_and_outputs_record_ours():
    trident = {"uni_v1": "uni", "uni_v2": "uni2-h", "conch_v1": "conch", "gigapath": "prov-gigapath",
               "hoptimus0": "h-optimus-0", "hoptimus1": "h-optimus-1", "phikon_v2": "phikon-v2",
               "virchow2": "virchow2", "phikon": "phikon", "kaiko-vitl14": "kaiko-vitl14"}
    for theirs, ours in trident.items():
        assert get_spec(theirs).name == ours and get_spec(theirs.upper()).name == ours
    assert load_encoder("hoptimus0", random_weights=True, tiny=True).label == "h-optimus-0 (tiny)"
    with pytest.raises(ValueError, match="'uni_v1' is already registered"):
        register(EncoderSpec(name="another-uni", aliases=("uni_v1",), title="t", family="timm", arch="a",
                             embed_dim=8, card="https://example.org", licence="none"))
    assert "another-uni" not in {s.name for s in list_specs()}


def test_listing_the_registry_does_not_import_torch():
    code = "import sys, pathview.cli; from pathview.encoders import list_specs; list_specs(); " \
           "print(sorted(m for m in ('torch', 'timm', 'transformers') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stderr


@pytest.mark.parametrize("name", WEIGHTED)
def test_real_architecture_matches_the_spec(name):
    """Built at real size on the meta device: the embedding width and parameter count the card gives."""
    spec = get_spec(name)
    enc = family_module(spec).random_encoder(spec, False, "meta").to("meta")
    params = sum(p.numel() for p in enc.backbone.parameters()) / 1e6
    assert abs(params - spec.params_m) / spec.params_m < 0.02, params
    size = spec.resize_to or spec.input_size
    with torch.inference_mode():
        out = enc(torch.zeros(2, size, size, 3, dtype=torch.uint8, device="meta"))
    assert tuple(out.shape) == (2, spec.embed_dim) == (2, enc.embed_dim)


@pytest.mark.parametrize("name", WEIGHTED)
def test_tiny_model_saved_as_published_loads_back_identically(name, tmp_path):
    enc, folder = tiny_folder(name, tmp_path)
    loaded = load_encoder(name, folder, tiny=True)
    assert loaded.weights is not None and loaded.weights.parent == folder
    size = loaded.spec.resize_to or loaded.spec.input_size
    x = tiles(3, size)
    with torch.inference_mode():
        a, b, c = enc.module(x), loaded.module(x), loaded.module(x)
    assert a.shape == (3, loaded.embed_dim) and a.dtype == torch.float32
    assert torch.equal(b, c)  # deterministic
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_models_are_found_under_pathview_models_by_name_or_repo_name(tmp_path, monkeypatch):
    enc, _ = tiny_folder("uni", tmp_path / "a")
    save_weights(enc, tmp_path / "models" / "UNI")  # the repo's own folder name
    monkeypatch.setenv("PATHVIEW_MODELS", str(tmp_path / "models"))
    loaded = load_encoder("uni", tiny=True)
    assert loaded.weights.parent == tmp_path / "models" / "UNI"


def test_missing_weights_name_the_files_the_source_and_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIEW_MODELS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotInstalledError) as err:
        load_encoder("uni2-h")
    msg = str(err.value)
    assert "pytorch_model.bin" in msg and "huggingface.co/MahmoodLab/UNI2-h" in msg and str(tmp_path) in msg
    assert "\n" not in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelWeightsError, match="no weights file"):
        load_encoder("uni", empty)


def _resave(folder, edit):
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def test_wrong_keys_and_shapes_are_named(tmp_path):
    _, folder = tiny_folder("uni", tmp_path)

    def edit(state):
        del state["blocks.1.attn.qkv.weight"]
        state["head.weight"] = torch.zeros(2, 48)
        state["norm.weight"] = torch.zeros(7)

    _resave(folder, edit)
    with pytest.raises(ModelWeightsError) as err:
        load_encoder("uni", folder, tiny=True)
    e = err.value
    assert e.missing == ["blocks.1.attn.qkv.weight"] and e.unexpected == ["head.weight"]
    assert "norm.weight" in e.mismatched[0]
    assert "1 missing key (blocks.1.attn.qkv.weight)" in str(e) and str(folder) in str(e) and "\n" not in str(e)


def test_another_models_weights_are_refused(tmp_path):
    _, folder = tiny_folder("uni", tmp_path)
    with pytest.raises(ModelWeightsError, match="missing keys? .*reg_token"):
        load_encoder("virchow2", folder, tiny=True)


def test_unreadable_file_is_a_weights_error(tmp_path):
    folder = tmp_path / "uni"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelWeightsError, match="cannot be read"):
        load_encoder("uni", folder, tiny=True)


def test_transformers_missing_key_and_legacy_key_names(tmp_path):
    enc, folder = tiny_folder("phikon-v2", tmp_path)
    assert (folder / "config.json").is_file()
    legacy = {"attention.q_proj": "attention.attention.query", "attention.k_proj": "attention.attention.key",
              "attention.v_proj": "attention.attention.value", "attention.o_proj": "attention.output.dense"}

    def rename(state):  # as checkpoints saved by transformers 4 name them (the published Phikon-v2 file)
        for k in list(state):
            new = k
            for a, b in legacy.items():
                new = new.replace(a, b)
            state[new] = state.pop(k)

    _resave(folder, rename)
    loaded = load_encoder("phikon-v2", folder, tiny=True)
    x = tiles(2)
    with torch.inference_mode():
        torch.testing.assert_close(enc.module(x), loaded.module(x), rtol=0, atol=1e-6)
    _resave(folder, lambda s: s.pop("layernorm.weight"))
    with pytest.raises(ModelWeightsError, match="missing key \\(layernorm.weight\\)"):
        load_encoder("phikon-v2", folder, tiny=True)


def test_conch_ignores_the_text_tower_but_not_missing_image_keys(tmp_path):
    enc, folder = tiny_folder("conch", tmp_path)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert any(k.startswith("text.") for k in state)  # set aside on load
    del state["visual.ln_contrast.weight"]
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelWeightsError, match="ln_contrast.weight"):
        load_encoder("conch", folder, tiny=True)


def test_original_dinov2_checkpoint_is_converted(tmp_path):
    """Kaiko's L/14 ships in DINOv2's own format: register_tokens, a class position, mask_token."""
    from safetensors.torch import save_file

    enc, folder = tiny_folder("kaiko-vitl14", tmp_path)
    state = enc.module.backbone.model.state_dict()
    p0 = torch.randn(1, 1, 48) * state["cls_token"].abs().max()  # same scale: cls - p0 + p0 stays exact
    orig = {k: v for k, v in state.items() if k not in ("reg_token", "cls_token", "pos_embed")}
    orig.update(register_tokens=state["reg_token"], cls_token=state["cls_token"] - p0,
                pos_embed=torch.cat([p0, state["pos_embed"]], dim=1), mask_token=torch.zeros(1, 48))
    (folder / "model.safetensors").unlink()
    save_file({k: v.contiguous() for k, v in orig.items()}, str(folder / "teacher.safetensors"))
    loaded = load_encoder("kaiko-vitl14", folder, tiny=True)
    x = tiles(2)
    with torch.inference_mode():
        torch.testing.assert_close(enc.module(x), loaded.module(x), rtol=1e-5, atol=1e-5)


def test_timm_config_json_beside_the_weights_is_honoured(tmp_path):
    """A publisher's timm config.json states model_args; they take part in the build as with hf-hub."""
    torch.manual_seed(0)
    spec = get_spec("h0-mini")
    from pathview.encoders.timm_family import build_vit, wrap

    model = build_vit(spec, tiny=True, device="cpu", folder_args={"mlp_ratio": 4.0})
    folder = tmp_path / "h0"
    family_module(spec).save_weights(wrap(spec, model), folder)
    with pytest.raises(ModelWeightsError, match="wrong shape"):
        load_encoder("h0-mini", folder, tiny=True)
    (folder / "config.json").write_text(json.dumps({"architecture": spec.arch, "model_args": {"mlp_ratio": 4.0}}))
    assert load_encoder("h0-mini", folder, tiny=True).embed_dim == 48


def test_gigapath_resizes_then_centre_crops():
    """Resize to 256 then crop 224 (the card's transform) happens inside the module, on the device."""
    torch.manual_seed(0)
    enc = load_encoder("prov-gigapath", random_weights=True, tiny=True).module
    x = tiles(2, 256)
    pre = enc.preprocess(x)
    assert pre.shape == (2, 3, 224, 224) and pre.is_contiguous(memory_format=torch.channels_last)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    manual = (x.permute(0, 3, 1, 2).float()[..., 16:240, 16:240] / 255 - mean) / std
    torch.testing.assert_close(pre, manual, rtol=1e-5, atol=1e-5)


def test_builtin_encoder_is_deterministic_batch_invariant_and_meaningful():
    from pathview.encoders.builtin_he import FEATURE_NAMES
    from pathview.slide.demo import render_demo_tissue

    enc = load_encoder()
    assert enc.embed_dim == len(FEATURE_NAMES) == enc.spec.embed_dim and enc.weights is None
    img = render_demo_tissue(896, 448, seed=1)
    glass = np.full((224, 224, 3), 240, np.uint8)
    x = torch.from_numpy(np.stack([img[:224, :224], img[224:, 448:672], glass, img[:224, 672:]]))
    with torch.inference_mode():
        batch = enc.module(x)
        one = torch.cat([enc.module(x[i:i + 1]) for i in range(len(x))])
        again = enc.module(x)
    assert torch.isfinite(batch).all() and torch.equal(batch, again)
    torch.testing.assert_close(batch, one, rtol=1e-5, atol=1e-5)
    f = dict(zip(FEATURE_NAMES, batch[2].tolist()))
    assert f["tissue_fraction"] == 0 and f["glass_fraction"] == 1 and f["nuc_density_0.45"] == 0
    tissue = batch[:, FEATURE_NAMES.index("tissue_fraction")]
    assert (tissue[[0, 1, 3]] > tissue[2]).all()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pathview", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_cli_lists_and_checks_models(tmp_path):
    import os

    res = run_cli("models", "--json", env={**os.environ, "PATHVIEW_MODELS": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    records = {r["name"]: r for r in json.loads(res.stdout)}
    assert REQUIRED <= set(records)
    assert records[DEFAULT_ENCODER]["installed"] and not records["uni"]["installed"]
    assert records["uni"]["install_to"] == str(tmp_path / "uni") and records["uni"]["expected_files"]
    assert records["uni"]["aliases"] == ["uni_v1"]
    res = run_cli("models", env={**os.environ, "PATHVIEW_MODELS": str(tmp_path)})
    assert "(also: uni_v1)" in res.stdout
    assert f"  1. {tmp_path}\n  2. {Path.cwd() / 'models'}\n" in res.stdout  # every place searched, in order
    res = run_cli("models", "check", DEFAULT_ENCODER)
    assert res.returncode == 0 and "73 values" in res.stdout and "all finite" in res.stdout, res.stderr
    res = run_cli("models", "check", "uni", env={**os.environ, "PATHVIEW_MODELS": str(tmp_path)})
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "not installed" in res.stderr
