"""The slide core on every real slide in ../shared/data: metadata, pixels, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import BROKEN, CMU_DICOM, CMU_SVS, SLIDES, TCGA_NO_MPP
from PIL import Image

from pathview.errors import (
    CorruptSlideError,
    MissingMppError,
    RegionReadError,
    SlideNotFoundError,
    UnsupportedFormatError,
)
from pathview.slide import open_slide

GOOD = {
    "CMU-1-Small-Region.svs": ("aperio", (2220, 2967), 0.499),
    "TCGA-CR-7395-01A-01-TS1.svs": ("aperio", (4443, 3567), None),
    "CMU-1-Small-Region-dicom": ("dicom", (2220, 2967), 0.499),
    "camelyon-lowres.dcm": ("dicom", (1152, 700), 28.9685),
    "bone-marrow-dicom-codecs/jpeg.dcm": ("dicom", (957, 715), 16.783),
    "bone-marrow-dicom-codecs/jpeg2000.dcm": ("dicom", (957, 715), 16.783),
    "bone-marrow-dicom-codecs/raw.dcm": ("dicom", (957, 715), 16.783),
    "he-patch-3level.tif": ("generic-tiff", (256, 256), None),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_metadata_and_pixels_of_every_good_slide(name):
    vendor, dims, mpp = GOOD[name]
    with open_slide(SLIDES / name) as slide:
        info = slide.info
        assert info.vendor == vendor
        assert info.dimensions == dims
        assert info.level_dimensions[0] == dims
        assert info.level_downsamples[0] == 1.0
        assert len(info.quickhash) == 64
        if mpp is None:
            assert info.mpp is None and info.mpp_source == "none"
        else:
            assert info.mpp == pytest.approx(mpp, rel=1e-3)
            assert info.objective_power is not None
        pixels = slide.read_region((0, 0), slide.level_count - 1, (64, 48))
        assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
        centre = slide.read_region((dims[0] // 2 - 32, dims[1] // 2 - 32), 0, (64, 64))
        assert centre.std() > 2, "the middle of a real slide is not a flat colour"


def test_objective_power_is_derived_from_mpp_when_absent():
    with open_slide(CMU_DICOM) as slide:
        assert slide.info.objective_power == 20
        assert slide.info.objective_source == "derived from mpp"


def test_associated_images_are_listed_and_readable():
    with open_slide(CMU_SVS) as slide:
        assert set(slide.info.associated_images) == {"label", "macro", "thumbnail"}
        label = slide.associated_image("label")
        assert label.mode == "RGB" and label.size[0] > 50


def test_icc_profile_is_exposed_where_the_slide_has_one():
    with open_slide(TCGA_NO_MPP) as slide:
        assert slide.info.has_icc_profile
        assert slide.icc_profile[36:40] == b"acsp"  # ICC signature
    with open_slide(CMU_SVS) as slide:
        assert slide.icc_profile is None


def test_svs_and_dicom_copies_of_the_same_tissue_agree_within_jpeg_tolerance():
    with open_slide(CMU_SVS) as svs, open_slide(CMU_DICOM) as dcm:
        a = svs.read_region((600, 900), 0, (512, 512)).astype(np.int16)
        b = dcm.read_region((600, 900), 0, (512, 512)).astype(np.int16)
        shifted = dcm.read_region((604, 900), 0, (512, 512)).astype(np.int16)
    aligned = np.abs(a - b).mean()
    assert aligned < 6.0  # both are lossy JPEG re-encodings of the same scan
    assert aligned < 0.5 * np.abs(a - shifted).mean(), "same place, not just similar tissue"


def test_jpeg2000_and_raw_dicom_decode_identically():
    folder = SLIDES / "bone-marrow-dicom-codecs"
    with open_slide(folder / "jpeg2000.dcm") as j2k, open_slide(folder / "raw.dcm") as raw:
        a = j2k.read_region((0, 0), 0, j2k.dimensions)
        b = raw.read_region((0, 0), 0, raw.dimensions)
    assert np.array_equal(a, b)


def test_same_slide_is_identified_by_quickhash_not_path(tmp_path):
    copy = tmp_path / "renamed.svs"
    copy.write_bytes(CMU_SVS.read_bytes())
    with open_slide(CMU_SVS) as a, open_slide(copy) as b:
        assert a.quickhash == b.quickhash


def test_region_at_target_mpp_reads_the_right_place_at_the_right_scale():
    with open_slide(CMU_SVS) as slide:
        out = slide.read_region_at_mpp((400, 600), (300, 200), mpp=0.998)
        assert out.shape == (200, 300, 3)
        # Reference: read level 0 (2x the size) and halve it with an area filter.
        ref = slide.read_region((400, 600), 0, (600, 400))
        ref = np.asarray(Image.fromarray(ref).resize((300, 200), Image.Resampling.BOX))
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    assert diff.mean() < 6.0


def test_target_mpp_picks_the_pyramid_level_closest_above(demo_slide):
    with open_slide(demo_slide) as slide:  # levels at 0.5, 2.0 and 8.0 µm/px
        assert slide.best_level_for_downsample(1.0) == 0
        assert slide.best_level_for_downsample(4.0) == 1
        assert slide.best_level_for_downsample(7.9) == 1
        assert slide.best_level_for_downsample(100) == 2
        level1 = slide.read_region((1024, 1024), 1, (128, 128))
        at_mpp = slide.read_region_at_mpp((1024, 1024), (128, 128), mpp=2.0)
    assert np.array_equal(level1, at_mpp), "an exact level match must not resample"


def test_missing_mpp_gives_a_clear_error_and_a_user_value_is_used_and_recorded():
    with open_slide(TCGA_NO_MPP) as slide:
        with pytest.raises(MissingMppError, match="--slide-mpp"):
            slide.read_region_at_mpp((0, 0), (64, 64), mpp=0.5)
    with open_slide(TCGA_NO_MPP, mpp=0.25) as slide:
        assert slide.mpp == 0.25 and slide.info.mpp_source == "user"
        assert slide.info.objective_power == 40
        assert slide.read_region_at_mpp((0, 0), (64, 64), mpp=0.5).shape == (64, 64, 3)


def test_plain_png_opens_as_a_one_level_slide(tmp_path):
    with open_slide(CMU_SVS) as slide:
        pixels = slide.read_region((500, 500), 0, (300, 200))
    png = tmp_path / "crop.png"
    Image.fromarray(pixels).save(png)
    with open_slide(png) as image:
        assert image.info.vendor == "image"
        assert image.dimensions == (300, 200)
        assert np.array_equal(image.read_region((0, 0), 0, (300, 200)), pixels)


def test_many_threads_read_the_same_pixels_as_one_thread():
    rng = np.random.default_rng(0)
    boxes = [(int(rng.integers(0, 1900)), int(rng.integers(0, 2600)), int(rng.integers(16, 300))) for _ in range(64)]
    with open_slide(CMU_SVS) as slide:
        expected = [slide.read_region((x, y), 0, (s, s)) for x, y, s in boxes]
        results: dict[int, np.ndarray] = {}

        def worker(k: int) -> None:
            for i in range(k, len(boxes), 8):
                x, y, s = boxes[i]
                results[i] = slide.read_region((x, y), 0, (s, s))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(np.array_equal(results[i], expected[i]) for i in range(len(boxes)))


# -- broken slides ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("CMU-1-Small-Region-truncated.svs", CorruptSlideError, "truncated"),
        ("dicom-no-imagetype.dcm", CorruptSlideError, "image flavor"),
        ("vectra-unsupported.qptiff", UnsupportedFormatError, "does not support"),
    ],
)
def test_each_unopenable_broken_slide_gives_its_specific_error(name, error, words):
    with pytest.raises(error) as info:
        open_slide(BROKEN / name)
    message = str(info.value)
    assert name in message and words in message
    assert "\n" not in message


def test_missing_file_and_non_slide_file(tmp_path):
    with pytest.raises(SlideNotFoundError, match="no such file"):
        open_slide(tmp_path / "nope.svs")
    text = tmp_path / "notes.txt"
    text.write_text("not a slide")
    with pytest.raises(UnsupportedFormatError, match="not a slide format"):
        open_slide(text)
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    with pytest.raises(CorruptSlideError, match="empty"):
        open_slide(empty)


def test_a_damaged_tile_does_not_poison_later_reads():
    with open_slide(BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs") as slide:
        w, h = slide.dimensions
        bad = None
        for y in range(0, h - 240, 240):  # find a damaged tile row by row
            try:
                slide.read_region((0, y), 0, (w, 240))
            except RegionReadError as exc:
                bad = (0, y)
                assert "zeroed-tiles.svs" in str(exc)
                break
        assert bad is not None, "the zeroed file should have an undecodable tile"
        good = slide.read_region((0, 0), 0, (240, 240))  # OpenSlide alone would fail here too
        assert good.std() > 1
    with open_slide(CMU_SVS) as clean:
        assert np.array_equal(good, clean.read_region((0, 0), 0, (240, 240)))


def test_damaged_areas_are_drawn_grey_in_the_overview():
    with open_slide(BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs") as slide:
        thumb = np.asarray(slide.thumbnail(512))
    grey = np.all(thumb == (215, 215, 215), axis=-1)
    assert 0 < grey.mean() < 0.9


def test_mirax_with_missing_data_files_reads_coarse_levels_and_reports_fine_ones():
    with open_slide(BROKEN / "Mirax2-Fluorescence-2.mrxs") as slide:
        assert slide.info.vendor == "mirax" and slide.level_count == 10
        coarse = slide.read_region((0, 0), 6, (256, 256))
        assert coarse.shape == (256, 256, 3)
        with pytest.raises(RegionReadError, match=r"Data000\d\.dat"):
            slide.read_region((8192, 102400), 1, (2048, 2048))  # lies in a missing data file
        assert slide.read_region((0, 0), 6, (256, 256)).shape == (256, 256, 3)


def test_a_folder_of_several_slides_is_not_taken_for_one_dicom_slide():
    with pytest.raises(UnsupportedFormatError, match="folder of several slides"):
        open_slide(SLIDES)
    with open_slide(CMU_DICOM) as slide:  # a DICOM series folder still opens
        assert slide.info.vendor == "dicom"
