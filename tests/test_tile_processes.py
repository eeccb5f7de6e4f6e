"""Reader processes: the same tiles as the reader threads, errors and dead workers reach the caller."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import torch
from conftest import BROKEN, CMU_SVS

from pathview.analysis.encode import PROCESS_READERS_MIN_TILES, EncodeCancelled, encode_slide, use_reader_processes
from pathview.analysis.store import read_tile_store
from pathview.encoders import load_encoder
from pathview.errors import RegionReadError
from pathview.slide import open_slide, tile_grid
from pathview.slide.tile_processes import ProcessTileReader, TileBufferError, TileReaderDied, _shared_file
from pathview.slide.tile_reader import iter_tiles

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiles_by_index(batches) -> dict[int, np.ndarray]:
    return {i: p.copy() for b in batches for i, p in zip(b.indices.tolist(), b.pixels)}


def test_reader_processes_give_the_tiles_of_the_reader_threads_in_the_same_order():
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=0.5, size=224)
        threads = list(iter_tiles(slide, grid, workers=2, block_tiles=4))
    with ProcessTileReader(slide.path, grid, workers=2, block_tiles=4) as reader:
        batches = [(b.indices.copy(), b.pixels.copy()) for b in reader]
    assert [i.tolist() for i, _ in batches] == [b.indices.tolist() for b in threads]
    for (_, pixels), ref in zip(batches, threads):
        np.testing.assert_array_equal(pixels, ref.pixels)
    assert sum(len(i) for i, _ in batches) == len(grid) > 40


def test_threads_of_this_process_read_while_the_reader_processes_start():
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=0.5, size=224)
        threads = list(iter_tiles(slide, grid, workers=2, block_tiles=4))
        with ProcessTileReader(slide.path, grid, workers=2, block_tiles=4, bridge=slide) as reader:
            for worker in reader._workers:  # processes that take their time to start, held before they are ready
                os.kill(worker.proc.pid, signal.SIGSTOP)
            try:
                batches = [(b.indices.copy(), b.pixels.copy()) for b in reader]
            finally:
                for worker in reader._workers:
                    os.kill(worker.proc.pid, signal.SIGCONT)
            assert not any(worker.ready for worker in reader._workers)  # the bridge threads read every block
    assert [i.tolist() for i, _ in batches] == [b.indices.tolist() for b in threads]
    for (_, pixels), ref in zip(batches, threads):
        np.testing.assert_array_equal(pixels, ref.pixels)


ZEROED = BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs"


def test_a_damaged_tile_costs_that_tile_only_with_threads_and_processes():
    with open_slide(ZEROED) as slide:
        grid = tile_grid(slide, mpp=2, size=224)
        bad = []
        for i, (x, y) in enumerate(grid.coords.tolist()):
            try:
                slide.read_scaled((x, y, grid.patch_size_level0, grid.patch_size_level0), (224, 224))
            except RegionReadError:
                bad.append(i)
        assert 1 <= len(bad) < len(grid)  # the file has undecodable tiles at this scale (and good ones)
        threads = list(iter_tiles(slide, grid, workers=2, block_tiles=8))
    with ProcessTileReader(ZEROED, grid, workers=2, block_tiles=8) as reader:
        processes = [(b.indices.copy(), b.pixels.copy(), b.damaged) for b in reader]
    for batch, (indices, pixels, damaged) in zip(threads, processes, strict=True):
        np.testing.assert_array_equal(batch.indices, indices)
        np.testing.assert_array_equal(batch.pixels, pixels)
        np.testing.assert_array_equal(batch.damaged, damaged)
    flagged = [i for b in threads if b.damaged is not None for i in b.indices[b.damaged].tolist()]
    assert flagged == bad
    readable = [(i, p) for b in threads for i, p, d in zip(b.indices, b.pixels, b.damaged) if not d]
    assert len(readable) == len(grid) - len(bad) and all(p.std() > 5 for _, p in readable)  # real pixels, not black


def test_a_slide_that_cannot_be_opened_in_the_reader_process_is_an_error_not_a_hang(tmp_path):
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=2, size=224)
    gone = tmp_path / "moved-away.svs"
    with ProcessTileReader(gone, grid, workers=1) as reader, pytest.raises(TileReaderDied, match="died"):
        next(iter(reader))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_reader_process_is_an_error_not_a_hang(workers):
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=0.25, size=64)  # many small blocks: readers are still busy when killed
    with ProcessTileReader(CMU_SVS, grid, workers=workers, block_tiles=2) as reader:
        batches = iter(reader)
        next(batches)
        for worker in reader._workers:  # busy or idle: the next send or wait finds it dead
            os.kill(worker.proc.pid, signal.SIGKILL)
        with pytest.raises(TileReaderDied, match="died"):
            for _ in batches:
                pass


def reader_pids() -> list[int]:
    """This process's tile reader children, found in /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{entry}/cmdline", "rb").read()
            ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"pathview.slide.tile_worker" in cmd and ppid == os.getpid():
            pids.append(int(entry))
    return pids


def test_cancel_ends_encoding_even_while_the_readers_hang(tmp_path):
    enc = load_encoder()
    cancel = threading.Event()
    outcome: list[object] = []
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=0.25, size=64)

        def run() -> None:
            try:
                encode_slide(slide, grid, enc, tmp_path, device="cpu", batch_size=8, workers=2, readers="processes",
                             cancel=cancel)
                outcome.append("finished")
            except EncodeCancelled as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        while len(reader_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        hung = reader_pids()
        for pid in hung:  # a reader stuck on a dead network share, say
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        cancel.set()
        thread.join(timeout=30)
        took = time.monotonic() - t0
    assert not thread.is_alive() and len(hung) == 2
    assert isinstance(outcome[0], EncodeCancelled) and took < 6, f"cancel took {took:.1f} s"
    assert not reader_pids() and not (tmp_path / "tiles.h5").exists()  # hung readers killed, nothing half-written


def test_no_room_for_the_tile_buffer_is_one_clear_error():
    with pytest.raises(TileBufferError, match="no room for the .* tile buffer .* use --readers threads"):
        _shared_file(1 << 60)  # an exbibyte: no /dev/shm or disk has it


def test_encoding_with_reader_processes_writes_the_same_store_as_with_threads(tmp_path):
    enc = load_encoder()
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=0.5, size=224)
        stores = [read_tile_store(encode_slide(slide, grid, enc, tmp_path / kind, device="cpu", batch_size=16,
                                               workers=2, readers=kind).path) for kind in ("threads", "processes")]
    np.testing.assert_array_equal(stores[0].coords, stores[1].coords)
    np.testing.assert_array_equal(stores[0].features, stores[1].features)


def test_unreadable_tiles_get_no_row_and_are_listed_in_the_store(tmp_path):
    enc = load_encoder()
    with open_slide(ZEROED) as slide:
        grid = tile_grid(slide, mpp=2, size=224)
        results = [encode_slide(slide, grid, enc, tmp_path / kind, device="cpu", batch_size=2, workers=2,
                                readers=kind) for kind in ("threads", "processes")]
    for result in results:
        store = read_tile_store(result.path)
        assert len(result.unreadable) >= 1 and result.tiles == len(store) == len(grid) - len(result.unreadable)
        np.testing.assert_array_equal(store.unreadable_coords, grid.coords[result.unreadable])
        assert not any((c == store.unreadable_coords[0]).all() for c in store.coords)
    np.testing.assert_array_equal(read_tile_store(results[0].path).features, read_tile_store(results[1].path).features)


def test_reader_processes_are_chosen_for_large_grids_on_a_gpu_only():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert use_reader_processes("auto", cuda, PROCESS_READERS_MIN_TILES, workers=12)
    assert not use_reader_processes("auto", cuda, PROCESS_READERS_MIN_TILES - 1, workers=12)
    assert not use_reader_processes("auto", cpu, 10**6, workers=4)
    assert use_reader_processes("processes", cpu, 10, workers=2) and not use_reader_processes("threads", cuda, 10**6, 12)
    with pytest.raises(ValueError, match="readers must be one of"):
        use_reader_processes("fibres", cpu, 10, 2)
