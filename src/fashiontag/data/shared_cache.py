"""One image cache for several keys whose label rows repeat images.

A cache is keyed by its image list, so each key normally gets its own. When keys label the same photos
(several attributes annotated on one image), per-key caches would decode and store those pixels once per
key. Here the union of the keys' images is decoded once into one cache; each key's `build_cache` call then
finds it (`_superset_view`: every image of the key, same identity, size, resize and fill) and reads its rows
from it instead of building its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import Crop, ImageCache, build_cache, identities

log = logging.getLogger(__name__)


def build_shared_cache(paths_by_key: Mapping[str, Sequence[str | Path]], size: int, cache_dir: str | Path,
                       crops_by_key: Mapping[str, Sequence[Crop | None] | None] | None = None, *,
                       resize: str = "pad", pad_value: Sequence[int] | int = (124, 116, 104),
                       workers: int = 2) -> ImageCache | None:
    """Build (or reuse) the cache of every key's images when some image (with the same crop) belongs to more
    than one key; None when no image repeats (each key keeps its own cache, as before).

    Unreadable images are recorded in the shared cache; each key's own `build_cache` call reports them with
    its label lines and its skip policy.
    """
    union: dict[str, tuple[str, Crop | None]] = {}
    owners: dict[str, int] = {}
    for key, paths in paths_by_key.items():
        crops = (crops_by_key or {}).get(key)
        mine: set[str] = set()
        for i, ident in enumerate(identities(paths, crops)):
            if ident in mine:  # a repeat within one key is that key's own business
                continue
            mine.add(ident)
            union.setdefault(ident, (str(paths[i]), None if crops is None else crops[i]))
            owners[ident] = owners.get(ident, 0) + 1
    repeated = sum(1 for n in owners.values() if n > 1)
    if not repeated:
        return None
    paths = [p for p, _ in union.values()]
    crops = [c for _, c in union.values()]
    log.info("%d images are labelled for more than one key: one shared image cache of %d images for %d keys",
             repeated, len(paths), len(paths_by_key))
    return build_cache(paths, size, cache_dir, None if all(c is None for c in crops) else crops, name="shared",
                       resize=resize, pad_value=pad_value, workers=workers, skips=SkipReport(skip=True))


def share_images(dataset, table, cfg: dict) -> ImageCache | None:
    """The shared cache for a run's label table (image, key, ...), at the size and in the folder each key's
    cache would use; None when no image belongs to two keys."""
    from fashiontag.data.folds import dataset_name
    from fashiontag.data.worn_modes import crops_for

    cache_cfg, train = cfg["cache"], cfg["train"]
    paths, crops = {}, {}
    for key, rows in table.groupby("key", sort=False):
        paths[key] = [dataset.image_path(p) for p in rows["image"]]
        crops[key] = crops_for(cfg, dataset.root, rows)
    if len(paths) < 2:
        return None
    return build_shared_cache(
        paths, int(cache_cfg["size"] or max(int(s) for s in train["stages"])),
        Path(cache_cfg["dir"]) / dataset_name(dataset.root), crops, resize=cache_cfg["resize"],
        pad_value=cache_cfg["pad_value"], workers=int(cache_cfg["workers"] or max(1, int(train["num_workers"]))))
