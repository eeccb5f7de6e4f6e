"""The batched encoding pipeline and tiles.h5: equal to encoding tile by tile, atomic, cancellable."""

from __future__ import annotations

import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest
import torch
from conftest import BROKEN, CMU_SVS, TCGA_NO_MPP

from pathview import __version__
from pathview.analysis.encode import EncodeCancelled, encode_slide
from pathview.analysis.runner import BatchRunner, DeviceError, embed_tiles, resolve_device
from pathview.analysis.store import read_tile_store
from pathview.encoders import LoadedEncoder, get_spec, load_encoder
from pathview.errors import PathviewError, RegionReadError
from pathview.slide import open_slide, tile_grid
from pathview.slide.tile_reader import read_tile_naive


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cmu():
    with open_slide(CMU_SVS) as slide:
        yield slide, tile_grid(slide, mpp=0.5, size=224)


def by_coords(store, grid) -> np.ndarray:
    """Return, for each row of the store, its index in the grid."""
    index = {tuple(c): i for i, c in enumerate(grid.coords.tolist())}
    return np.array([index[tuple(c)] for c in store.coords.tolist()])


def test_tiles_h5_from_a_real_slide_reads_back_per_the_contract(cmu, tmp_path):
    slide, grid = cmu
    enc = load_encoder()
    events = []
    result = encode_slide(slide, grid, enc, tmp_path / "out", device="cpu", batch_size=16, workers=2,
                          progress=events.append)
    assert result.path == tmp_path / "out" / "tiles.h5" and result.tiles == len(grid) > 40
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tiles.h5"]  # no temporary left
    with h5py.File(result.path, "r") as f:
        assert f["coords"].dtype == np.int64 and f["coords"].shape == (len(grid), 2)
        assert f["features"].dtype == np.float32 and f["features"].shape == (len(grid), enc.embed_dim)
        assert f["tissue"].dtype == np.float32 and f["tissue"].shape == (len(grid),)
        attrs = dict(f.attrs)
        trident = dict(f["coords"].attrs)  # TRIDENT's readers look on the dataset: coords.attrs[...]
        assert f["unreadable_coords"].shape == (0, 2)
    assert trident["patch_size"] == 224 and trident["patch_size_level0"] == grid.patch_size_level0
    assert trident["level0_magnification"] == 20 and trident["target_magnification"] == pytest.approx(20, abs=0.1)
    assert trident["overlap"] == 0 and trident["name"] == CMU_SVS.stem
    assert attrs["patch_size"] == 224 and attrs["patch_size_level0"] == grid.patch_size_level0
    assert attrs["mpp"] == 0.5 and attrs["level0_mpp"] == pytest.approx(0.499) and attrs["mpp_source"] == "slide"
    assert attrs["encoder"] == "pathview-he" and attrs["pathview_version"] == __version__
    assert attrs["slide_quickhash"] == slide.info.quickhash
    store = read_tile_store(tmp_path / "out")
    rows = by_coords(store, grid)
    assert sorted(rows.tolist()) == list(range(len(grid)))  # every tile exactly once
    np.testing.assert_array_equal(store.tissue, grid.tissue[rows])
    # the batched pipeline equals reading and encoding the same tiles one by one, the naive way
    one_by_one = np.stack([embed_tiles(enc, read_tile_naive(slide, grid, i)[None])[0] for i in rows])
    np.testing.assert_allclose(store.features, one_by_one, rtol=1e-4, atol=1e-4)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and set(kinds[1:-1]) == {"batch"}
    done = [e.done for e in events if e.kind == "batch"]
    assert done == sorted(done) and done[-1] == len(grid)


def test_tiny_vit_pipeline_equals_one_by_one(cmu, tmp_path):
    slide, grid = cmu
    torch.manual_seed(0)
    enc = load_encoder("virchow2", random_weights=True, tiny=True)
    sub = grid.subset(np.arange(24))
    result = encode_slide(slide, sub, enc, tmp_path, device="cpu", batch_size=8, workers=2)
    store = read_tile_store(result.path)
    assert store.attrs["encoder"] == "virchow2 (tiny)" and store.features.shape == (24, enc.embed_dim)
    rows = by_coords(store, sub)
    one_by_one = np.stack([embed_tiles(enc, read_tile_naive(slide, sub, i)[None])[0] for i in rows])
    np.testing.assert_allclose(store.features, one_by_one, rtol=1e-4, atol=1e-4)


class _OutOfMemoryAbove(torch.nn.Module):
    """Wraps an encoder module; raises CUDA-style out-of-memory for batches larger than ``limit``."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit
        self.embed_dim = inner.embed_dim
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def test_out_of_memory_halves_the_batch_and_loses_nothing(cmu, tmp_path):
    slide, grid = cmu
    base = load_encoder()
    flaky = _OutOfMemoryAbove(base.module, limit=5)
    enc = LoadedEncoder(spec=base.spec, module=flaky, embed_dim=base.embed_dim)
    events = []
    runner = BatchRunner(enc, torch.device("cpu"), batch_size=16)
    result = encode_slide(slide, grid, enc, tmp_path, runner=runner, progress=events.append, workers=2)
    assert [e.batch_size for e in events if e.kind == "oom"] == [8, 4]
    assert result.batch_size == 4 and max(s for s in flaky.sizes[2:]) <= 4
    reference = encode_slide(slide, grid, base, tmp_path / "ref", device="cpu", workers=2)
    a, b = read_tile_store(result.path), read_tile_store(reference.path)
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-5, atol=1e-5)
    always = LoadedEncoder(spec=base.spec, module=_OutOfMemoryAbove(base.module, limit=0), embed_dim=base.embed_dim)
    with pytest.raises(PathviewError, match="does not fit in the memory"):
        encode_slide(slide, grid, always, tmp_path / "never", device="cpu", workers=2)
    assert not (tmp_path / "never" / "tiles.h5").exists()


def test_cancel_leaves_no_finished_looking_file(cmu, tmp_path):
    slide, grid = cmu
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiles.h5").write_bytes(b"previous run")
    cancel = threading.Event()

    def on_progress(e) -> None:
        if e.kind == "batch":
            cancel.set()

    with pytest.raises(EncodeCancelled) as err:
        encode_slide(slide, grid, load_encoder(), out, device="cpu", batch_size=8, workers=2,
                     progress=on_progress, cancel=cancel)
    assert 0 < err.value.done < len(grid) and "tiles.h5 not written (an older one" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["tiles.h5"]
    assert (out / "tiles.h5").read_bytes() == b"previous run"
    assert not any(t.name == "tile-prefetch" for t in threading.enumerate())


def test_a_reader_error_reaches_the_caller_and_removes_the_partial_file(cmu, tmp_path, monkeypatch):
    slide, grid = cmu
    import pathview.analysis.prefetch as prefetch

    real = prefetch.iter_tiles

    def failing(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise RegionReadError(slide.path, (0, 0, 1, 1), 0, "damaged JPEG tile (simulated)")
            yield batch

    monkeypatch.setattr(prefetch, "iter_tiles", failing)
    with pytest.raises(RegionReadError, match="simulated"):
        encode_slide(slide, grid, load_encoder(), tmp_path, device="cpu", batch_size=8, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_empty_grid_writes_an_empty_store(cmu, tmp_path):
    slide, grid = cmu
    result = encode_slide(slide, grid.subset(np.zeros(0, dtype=np.int64)), load_encoder(), tmp_path, device="cpu")
    store = read_tile_store(result.path)
    assert len(store) == 0 and store.features.shape == (0, 73)


def test_unknown_or_absent_devices_are_clear_errors():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda:0")


def test_runner_uses_the_encoders_dtype_only_on_cuda():
    from pathview.analysis.runner import amp_dtype

    uni = LoadedEncoder(spec=get_spec("uni"), module=torch.nn.Identity(), embed_dim=1)
    assert amp_dtype(uni, torch.device("cpu")) is None
    assert amp_dtype(uni, torch.device("cuda")) == torch.bfloat16


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pathview", *args], capture_output=True, text=True, timeout=120)


def test_cli_encode_writes_tiles_h5(tmp_path):
    res = run_cli("encode", str(CMU_SVS), "-o", str(tmp_path / "o"), "--device", "cpu", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "tiles.h5" in res.stdout and "pathview-he" in res.stdout
    store = read_tile_store(tmp_path / "o")
    assert len(store) > 40 and store.attrs["encoder"] == "pathview-he"
    res = run_cli("encode", str(TCGA_NO_MPP), "-o", str(tmp_path / "x"))
    assert res.returncode == 2 and "--slide-mpp" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("encode", str(TCGA_NO_MPP), "-o", str(tmp_path / "y"), "--slide-mpp", "0.5", "--size", "112",
                  "--mpp", "1.0", "--device", "cpu", "--quiet")
    assert res.returncode == 0, res.stderr
    store = read_tile_store(tmp_path / "y")
    assert store.attrs["mpp_source"] == "user" and store.attrs["patch_size"] == 112
    assert store.attrs["patch_size_level0"] == 224


def test_cli_encode_refuses_what_would_write_nothing_useful_and_leaves_no_trace(tmp_path):
    older = tmp_path / "older"
    assert run_cli("encode", str(CMU_SVS), "-o", str(older), "--mpp", "8", "--device", "cpu", "-q").returncode == 0
    before = (older / "tiles.h5").read_bytes()
    zeroed = BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs"  # at 8 µm/px its one tissue tile is the damaged one
    for out in (older, tmp_path / "new"):
        res = run_cli("encode", str(zeroed), "-o", str(out), "--mpp", "8", "--device", "cpu", "-q")
        assert res.returncode == 2 and "no tile of 'CMU-1-Small-Region-zeroed-tiles.svs' could be read (1 tile tried)" \
            in res.stderr, res.stderr
    assert (older / "tiles.h5").read_bytes() == before and not (tmp_path / "new").exists()  # nothing lost, no litter
    (tmp_path / "a-file").write_text("mine")
    res = run_cli("encode", str(CMU_SVS), "-o", str(tmp_path / "a-file"))
    assert res.returncode == 2 and "is a file: -o names the folder that tiles.h5 goes into" in res.stderr
    assert (tmp_path / "a-file").read_text() == "mine"
    for bad in ("0", "-1"):
        res = run_cli("encode", str(CMU_SVS), "-o", str(tmp_path / "m"), "--tile-mpp", bad)
        assert res.returncode == 2 and "--tile-mpp" in res.stderr and not (tmp_path / "m").exists()
    res = run_cli("encode", str(CMU_SVS), "-o", str(tmp_path / "s"), "--slide-mpp", "-1")
    assert res.returncode == 2 and "a pixel size must be a positive number" in res.stderr
    res = run_cli("models", "check", "uni", "--weights", str(tmp_path / "not-there"))
    assert res.returncode == 2 and f"'{tmp_path / 'not-there'}', do not exist" in res.stderr


def test_ctrl_c_stops_an_encode_with_exit_130_and_one_line(tmp_path):
    import signal
    import time

    out = tmp_path / "i"
    proc = subprocess.Popen([sys.executable, "-m", "pathview", "encode", str(CMU_SVS), "-o", str(out), "--mpp", "0.25",
                             "--size", "64", "--device", "cpu", "--batch-size", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("i/*")) and time.monotonic() < deadline:  # encoding has begun writing
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "pathview: interrupted: encoding cancelled after" in err and "tiles.h5 not written" in err
    assert not out.exists()  # the folder this run made, empty again, is taken back


class _FakeEvent:
    """Stands in for a CUDA event: records when it was recorded and waited on."""

    log: list[str] = []

    def __init__(self, n: int) -> None:
        self.n = n
        _FakeEvent.log.append(f"record {n}")

    def synchronize(self) -> None:
        reuse = threading.current_thread().name == "tile-prefetch"  # the reader, before refilling a buffer
        _FakeEvent.log.append(f"{'reuse' if reuse else 'sync'} {self.n}")


class _CudaShapedRunner:
    """A runner that says it is on CUDA but computes on the CPU: drives the GPU branch of the pipeline."""

    def __init__(self, encoder: LoadedEncoder, batch_size: int) -> None:
        self.encoder, self.batch_size, self.on_oom = encoder, batch_size, None
        self.device = torch.device("cuda")
        self._cpu = BatchRunner(encoder, torch.device("cpu"), batch_size)

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        return self._cpu(tiles.clone())


def test_gpu_branch_writes_one_batch_behind_and_reuses_buffers_after_their_event(cmu, tmp_path, monkeypatch):
    """Without a GPU here: the CUDA branch's ordering (async copy, write the previous batch, buffer reuse)."""
    import pathview.analysis.encode as encode_mod

    slide, grid = cmu
    enc = load_encoder()
    _FakeEvent.log = []
    count = iter(range(10**6))
    monkeypatch.setattr(encode_mod, "_to_host_async", lambda feats, dev: (feats.clone(), _FakeEvent(next(count))))
    real = encode_mod.TilePrefetcher
    monkeypatch.setattr(encode_mod, "TilePrefetcher", lambda *a, pin, **k: real(*a, pin=False, **k))
    written = []
    result = encode_slide(slide, grid, enc, tmp_path, runner=_CudaShapedRunner(enc, 8), workers=2,
                          progress=lambda e: written.append(e.done) if e.kind == "batch" else None)
    n_batches = -(-len(grid) // 8)
    records = [x for x in _FakeEvent.log if x.startswith("record")]
    assert len(records) == n_batches and written[-1] == len(grid)
    log = _FakeEvent.log
    # batch k is written (its event waited on) only after batch k+1 was launched
    for k in range(n_batches - 1):
        assert log.index(f"record {k + 1}") < log.index(f"sync {k}")
    # a buffer is refilled only after the event behind its last use (5 buffers, more batches)
    assert n_batches > 5 and any(x.startswith("reuse") for x in log)
    reference = encode_slide(slide, grid, enc, tmp_path / "ref", device="cpu", workers=2)
    a, b = read_tile_store(result.path), read_tile_store(reference.path)
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-5, atol=1e-5)
