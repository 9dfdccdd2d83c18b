"""A tiny person detector trained from scratch on generated demo images, for offline demos and tests.

No pretrained weights can be downloaded here, so the demo and the tests get a real ultralytics YOLO
detector by training a scaled-down YOLOv8 (1/8 of yolov8n's width, one class `person`) for a few epochs
at 96 px on images from the demo generator (data/demo.py `render_sample`), whose person figures come
with exact boxes. The result is an ordinary `best.pt`, used through exactly the same code path as real
weights (`split.weights=tiny` or its path). Training takes a minute or two on a CPU and happens once:
the weights are cached under a folder keyed by the seed, the settings and the generator's source, and a
file lock keeps concurrent callers (tests, the demo) from training it twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..io_utils import atomic_write_json, read_json
from .env import import_ultralytics

log = logging.getLogger(__name__)

TINY_VERSION = 1
# yolov8.yaml's topology at 1/8 of the nano width (about 0.2 M parameters instead of 3.2 M).
TINY_YAML = """\
nc: 1
scales:
  t: [0.33, 0.125, 256]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 6, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 6, C2f, [512, True]]
  - [-1, 1, Conv, [1024, 3, 2]]
  - [-1, 3, C2f, [1024, True]]
  - [-1, 1, SPPF, [1024, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]]
  - [-1, 3, C2f, [512]]
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]]
  - [-1, 3, C2f, [256]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]]
  - [-1, 3, C2f, [512]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 9], 1, Concat, [1]]
  - [-1, 3, C2f, [1024]]
  - [[15, 18, 21], 1, Detect, [nc]]
"""
# Images are rendered at the demo data's 128 px and trained at imgsz 96 (faster; people are large).
DEFAULTS = {"n_train": 320, "n_val": 64, "render": 128, "size": 96, "epochs": 12, "batch": 16}


def generated_samples(n: int, seed: int, size: int) -> Iterator[tuple]:
    """(image, worn, person_box normalised xyxy or None) from the demo generator: every other image is
    worn, keys and values cycle over what the generator draws, hanger vs flat-lay is random."""
    from ..data.demo import DEMO_KEYS, demo_values, render_sample

    for i in range(n):
        rng = np.random.default_rng([seed, i])  # per image, like the demo data: order-independent
        key = DEMO_KEYS[(i // 2) % len(DEMO_KEYS)]
        values = demo_values(key)
        y = values[int(rng.integers(len(values)))]
        worn = i % 2 == 0
        img, info = render_sample(key, y, worn, rng, size)
        yield img, worn, _normalised(info.get("person_box") if worn else None, img.size)


def _normalised(box, wh: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Boxes may come in pixels or already normalised; return normalised xyxy clipped to the image."""
    if box is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    if max(x0, y0, x1, y1) > 1.0:
        w, h = wh
        x0, x1, y0, y1 = x0 / w, x1 / w, y0 / h, y1 / h
    return tuple(min(1.0, max(0.0, v)) for v in (x0, y0, x1, y1))


def write_yolo_dataset(root: Path, n_train: int, n_val: int, seed: int, render: int) -> Path:
    """Generated images + YOLO label files (class 0 = person; hanger images get an empty file)."""
    for split, n, split_seed in (("train", n_train, seed), ("val", n_val, seed + 1)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i, (img, _worn, box) in enumerate(generated_samples(n, split_seed, render)):
            img.save(root / "images" / split / f"{i:05d}.png")
            text = ""
            if box is not None:
                x0, y0, x1, y1 = box
                text = f"0 {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}\n"
            (root / "labels" / split / f"{i:05d}.txt").write_text(text)
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames:\n  0: person\n")
    return data_yaml


def _cache_key(seed: int, settings: dict) -> str:
    from ..data import demo

    payload = {"version": TINY_VERSION, "seed": seed, **settings, "yaml": TINY_YAML,
               "generator": hashlib.md5(inspect.getsource(demo).encode()).hexdigest()}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # a second caller waits here, then finds the cached weights
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def train_tiny_person_detector(out_dir: str | Path = "cache/tiny_person_detector", seed: int = 0,
                               device: str = "auto", **settings: int) -> Path:
    """Train (or reuse) the tiny detector; returns `<out_dir>/<key>/best.pt`."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown tiny detector settings: {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    settings = {**DEFAULTS, **settings}
    key = _cache_key(seed, settings)
    final = Path(out_dir) / key / "best.pt"
    with _locked(Path(out_dir) / f".{key}.lock"):
        if final.exists():
            log.info("tiny person detector reused: %s", final)
            return final
        _train(final, seed, settings, device)
    return final


def _train(final: Path, seed: int, s: dict, device: str) -> None:
    import_ultralytics()
    from ultralytics import YOLO

    from .detect import resolve_device

    final.parent.mkdir(parents=True, exist_ok=True)
    log.info("training the tiny person detector (%s) into %s: a minute or two on a CPU, once", s, final.parent)
    with tempfile.TemporaryDirectory(prefix="tinydet_", dir=final.parent) as tmp:
        tmp = Path(tmp)
        data_yaml = write_yolo_dataset(tmp / "data", s["n_train"], s["n_val"], seed, s["render"])
        model_yaml = tmp / "tiny-person-t.yaml"  # the scale letter comes from the file name's last char
        model_yaml.write_text(TINY_YAML)
        model = YOLO(str(model_yaml), task="detect")
        model.train(
            data=str(data_yaml), epochs=s["epochs"], imgsz=s["size"], batch=s["batch"],
            device=resolve_device(device), workers=0, seed=seed, deterministic=True, project=str(tmp),
            name="train", exist_ok=True, plots=False, amp=False, verbose=False, pretrained=False,
            warmup_epochs=1, close_mosaic=max(1, s["epochs"] // 4), patience=s["epochs"],
        )
        best = tmp / "train" / "weights" / "best.pt"
        staged = final.with_suffix(".pt.tmp")
        shutil.copyfile(best, staged)
        staged.replace(final)  # atomic: a reader never sees half a file
    atomic_write_json(final.parent / "meta.json", {"seed": seed, **s, "weights": str(final)})


def tiny_meta(weights: str | Path) -> dict:
    """The settings a cached tiny detector was trained with."""
    return read_json(Path(weights).parent / "meta.json")


def worn_agreement(weights: str | Path, n: int = 100, seed: int = 10_000, render: int = DEFAULTS["render"],
                   conf: float = 0.4, device: str = "auto") -> float:
    """Share of held-out generated images (half worn) whose worn/hanger call matches the generator."""
    from .detect import detect_people, load_detector

    det = load_detector(str(weights), device=device)  # imgsz: what it was trained at
    samples = list(generated_samples(n, seed, render))
    found = detect_people(det, [img for img, _, _ in samples], conf)
    return float(np.mean([(p.count > 0) == worn for p, (_, worn, _) in zip(found, samples, strict=True)]))
