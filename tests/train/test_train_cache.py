"""The uint8 image cache: decoded once, reused by key, letterboxed, crops, unreadable images reported."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import fashiontag.data.cache as cache_mod
from fashiontag.core.errors import DataError
from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import build_cache, fit_image
from helpers.training import write_images


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = cache_mod.open_rgb

    def counting(path, line=None):
        calls.append(str(path))
        return real(path, line)

    monkeypatch.setattr(cache_mod, "open_rgb", counting)
    return calls


def test_each_image_is_decoded_once_and_the_cache_reused(tmp_path, count_decodes):
    paths = write_images(tmp_path / "imgs", 5)
    first = build_cache(paths, 24, tmp_path / "cache", workers=2)
    assert sorted(count_decodes) == sorted(map(str, paths))
    assert first.array.shape == (5, 24, 24, 3) and first.array.dtype == np.uint8
    assert first.ok.all()
    second = build_cache(paths, 24, tmp_path / "cache", workers=2)
    assert len(count_decodes) == 5, "a matching cache must not decode again"
    assert second.path == first.path
    np.testing.assert_array_equal(second.array, first.array)
    # A different size is a different cache; a changed file invalidates its entry.
    build_cache(paths, 16, tmp_path / "cache")
    assert len(count_decodes) == 10
    Image.new("RGB", (20, 12), (255, 0, 0)).save(paths[0])
    third = build_cache(paths, 24, tmp_path / "cache")
    assert third.path != first.path
    r, g, b = third.array[0, 12, 12].tolist()  # JPEG: close to pure red
    assert r > 240 and g < 15 and b < 15


def test_letterbox_keeps_the_whole_image_and_pads():
    img = Image.new("RGB", (40, 20), (255, 255, 255))  # wide: padded above and below
    out = fit_image(img, 20, "pad", [0, 0, 0])
    assert out.shape == (20, 20, 3)
    assert out[0, 10].tolist() == [0, 0, 0] and out[-1, 10].tolist() == [0, 0, 0]   # padding
    assert out[10, 0].tolist() == [255, 255, 255] and out[10, -1].tolist() == [255, 255, 255]  # full width kept
    squished = fit_image(img, 20, "squish")
    assert (squished == 255).all()


def test_crop_box_selects_the_region():
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, 20:] = 200  # right half bright
    out = fit_image(Image.fromarray(arr), 10, "squish", crop=(0.5, 0.0, 1.0, 1.0))
    assert (out > 150).all()


def test_crops_are_part_of_the_cache_key(tmp_path, count_decodes):
    paths = write_images(tmp_path / "imgs", 2)
    a = build_cache(paths, 16, tmp_path / "cache")
    b = build_cache(paths, 16, tmp_path / "cache", crops=[(0.0, 0.0, 0.5, 0.5), None])
    assert a.path != b.path and len(count_decodes) == 4
    np.testing.assert_array_equal(a.array[1], b.array[1])
    assert not np.array_equal(a.array[0], b.array[0])


def test_unreadable_images_are_reported_or_fatal(tmp_path, count_decodes):
    paths = write_images(tmp_path / "imgs", 3)
    paths[1].write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"img1\.jpg:7: not a readable image"):
        build_cache(paths, 16, tmp_path / "cache", lines=[6, 7, 8])
    assert not list((tmp_path / "cache").glob("*.npy")), "a failed build leaves no cache file"

    skips = SkipReport(skip=True)
    cache = build_cache(paths, 16, tmp_path / "cache", skips=skips, lines=[6, 7, 8])
    assert cache.ok.tolist() == [True, False, True]
    assert len(skips) == 1 and skips.rows[0]["file"].endswith("img1.jpg") and skips.rows[0]["line"] == 7
    assert "readable" in skips.rows[0]["reason"]
    # Reuse re-reports the bad image without decoding anything again.
    n = len(count_decodes)
    again = SkipReport(skip=True)
    build_cache(paths, 16, tmp_path / "cache", skips=again, lines=[6, 7, 8])
    assert len(count_decodes) == n and len(again) == 1
    report = again.write(tmp_path / "skips.csv")
    assert report is not None and "img1.jpg" in report.read_text()
    with pytest.raises(DataError, match="img1.jpg"):  # strict mode refuses the cached bad image too
        build_cache(paths, 16, tmp_path / "cache")


def test_cache_pickles_without_pixels(tmp_path):
    import pickle

    paths = write_images(tmp_path / "imgs", 2)
    cache = build_cache(paths, 16, tmp_path / "cache")
    _ = cache.array
    clone = pickle.loads(pickle.dumps(cache))
    assert clone._array is None
    np.testing.assert_array_equal(clone.array, cache.array)


def test_a_subset_of_a_cache_reads_its_rows_instead_of_decoding(tmp_path, count_decodes):
    """predict's out-of-fold photos of one fold are already in the training cache: no second decode."""
    paths = write_images(tmp_path / "imgs", 6)
    paths[3].write_bytes(b"not a jpeg")
    full = build_cache(paths, 24, tmp_path / "cache" / "dataset", skips=SkipReport(skip=True))
    n = len(count_decodes)
    skips = SkipReport(skip=True)
    sub_paths = [paths[4], paths[3], paths[1]]
    sub = build_cache(sub_paths, 24, tmp_path / "cache", name="predict", skips=skips, lines=[9, 8, 7])
    assert len(count_decodes) == n, "a subset of an existing cache must not be decoded again"
    assert sub.path == full.path and sub.rows.tolist() == [4, 3, 1]
    assert sub.ok.tolist() == [True, False, True] and len(sub) == 3
    np.testing.assert_array_equal(sub.row(0), full.row(4))
    np.testing.assert_array_equal(sub.row(2), full.row(1))
    assert len(skips) == 1 and skips.rows[0]["file"].endswith("img3.jpg") and skips.rows[0]["line"] == 8
    assert not list((tmp_path / "cache").glob("predict_*")), "no new cache file for a subset"
    # Another size, or a file changed since the cache was built, is decoded afresh.
    build_cache(sub_paths[::2], 16, tmp_path / "cache", name="predict")
    assert len(count_decodes) == n + 2
    Image.new("RGB", (20, 12), (255, 0, 0)).save(paths[4])
    fresh = build_cache([paths[4], paths[1]], 24, tmp_path / "cache", name="predict")
    assert fresh.rows is None and len(count_decodes) == n + 4
    r, g, b = fresh.row(0)[12, 12].tolist()
    assert r > 240 and g < 15 and b < 15


def test_a_cache_view_feeds_the_loaders_and_pickles(tmp_path):
    import pickle

    import torch

    from fashiontag.data.loaders import CachedImage

    paths = write_images(tmp_path / "imgs", 4)
    full = build_cache(paths, 16, tmp_path / "cache")
    view = build_cache(paths[2:], 16, tmp_path / "cache", name="predict")
    assert view.rows.tolist() == [2, 3]
    clone = pickle.loads(pickle.dumps(view))  # as DataLoader workers receive it
    item = CachedImage(clone)(1)
    assert torch.equal(item, torch.from_numpy(np.array(full.row(3))).permute(2, 0, 1))
