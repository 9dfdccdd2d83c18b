"""Image caches: the size is logged and a disk that cannot hold it is refused before anything is written;
keys that label the same images share one cache (each reads its rows from it)."""

from __future__ import annotations

import logging
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashiontag.core.config import load_config
from fashiontag.core.errors import FashiontagError
from fashiontag.data import cache as cache_mod
from fashiontag.data.cache import build_cache, cache_bytes
from fashiontag.data.shared_cache import build_shared_cache, share_images
from helpers.training import write_images

Usage = namedtuple("Usage", "total used free")


def test_cache_size_is_logged_and_a_full_disk_is_refused(tmp_path, monkeypatch, caplog):
    paths = write_images(tmp_path / "imgs", 3)
    assert cache_bytes(3, 16) == 3 * 16 * 16 * 3 + 128
    with caplog.at_level(logging.INFO, logger="fashiontag.data.cache"):
        build_cache(paths, 16, tmp_path / "ok", workers=1)
    assert any("3 images x 16 x 16 x 3 bytes = 0.00 GiB" in r.getMessage() for r in caplog.records)

    monkeypatch.setattr(cache_mod.shutil, "disk_usage", lambda path: Usage(2**40, 2**40 - 2**20, 2**20))
    target = tmp_path / "new" / "cache"  # not there yet: the check looks at the disk of its first parent
    with pytest.raises(FashiontagError) as err:
        build_cache(paths, 512, target, workers=1)
    message = str(err.value)
    assert "\n" not in message and str(target) in message
    assert "needs 0.00 GiB (3 images x 512 x 512 x 3 bytes) plus a 0.25 GiB margin" in message
    assert "set cache.dir to a larger disk, or lower cache.size" in message
    assert not target.exists()
    # A cache that already exists is reused whatever the free space.
    assert build_cache(paths, 16, tmp_path / "ok", workers=1).path.exists()


def test_keys_sharing_images_read_one_shared_cache(tmp_path):
    paths = [str(p) for p in write_images(tmp_path / "imgs", 6)]
    a, b = paths[:4], paths[2:]  # images 2 and 3 are labelled for both keys
    cache_dir = tmp_path / "cache"
    shared = build_shared_cache({"a": a, "b": b}, 16, cache_dir, workers=1)
    assert shared is not None and len(shared) == 6
    files = sorted(cache_dir.glob("*.npy"))
    view_b = build_cache(b, 16, cache_dir, name="b", workers=1)
    assert sorted(cache_dir.glob("*.npy")) == files, "no per-key cache was built"
    assert view_b.path == shared.path and list(view_b.rows) == [2, 3, 4, 5]
    own = build_cache(b, 16, tmp_path / "own", name="b", workers=1)
    for i in range(len(b)):
        np.testing.assert_array_equal(view_b.row(i), own.row(i))
    # Keys without a common image keep their own caches.
    assert build_shared_cache({"a": paths[:3], "b": paths[3:]}, 16, tmp_path / "none", workers=1) is None
    assert not (tmp_path / "none").exists()


def test_share_images_over_a_label_table(tmp_path):
    root = tmp_path / "root"
    names = [p.name for p in write_images(root / "Images", 4)]
    table = pd.DataFrame({"image": [f"Images/{n}" for n in names[:3]] + [f"Images/{n}" for n in names[1:]],
                          "key": ["k1"] * 3 + ["k2"] * 3})

    class Data:
        def image_path(self, image: str) -> Path:
            return root / image

    Data.root = root
    cfg = load_config(None, [f"cache.dir={tmp_path / 'cache'}", "train.stages=[16]"])
    shared = share_images(Data(), table, cfg)
    assert shared is not None and len(shared) == 4 and shared.path.name.startswith("shared_16px_")
    assert shared.path.parent == tmp_path / "cache" / "root"
