"""A tiny person detector trained from scratch on generated demo images, for offline demos and tests.

No pretrained weights can be downloaded here, so the demo and the tests get a real ultralytics YOLO
detector by training a scaled-down YOLOv8 (0.35 M parameters, one class `person`) for 30 epochs at 64 px
on images from the demo generator (data/demo.py `render_sample`), whose person figures come with exact
boxes. The result is an ordinary `best.pt`, used through exactly the same code path as real weights
(`split.weights=tiny` or its path). Training takes about 100 s of CPU and happens once: the weights are
cached under a folder keyed by the seed, the settings and the generator's output, and a file lock keeps
concurrent callers (tests, the demo) from training it twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fashiontag.core.files import atomic_write_json, read_json
from fashiontag.yolo.env import import_ultralytics
from fashiontag.yolo.person_detector import TINY, detect_people, load_detector, resolve_device

log = logging.getLogger(__name__)

TINY_VERSION = 3
# yolov8.yaml's topology at 1/8 of the nano width with channels capped at 32 (about 0.35 M parameters
# instead of 3.2 M); channels are written out so ultralytics needs no scale letter.
TINY_YAML = """\
nc: 1
depth_multiple: 0.33
width_multiple: 1.0
backbone:
  - [-1, 1, Conv, [8, 3, 2]]
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 3, C2f, [16, True]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 6, C2f, [32, True]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 6, C2f, [32, True]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 3, C2f, [32, True]]
  - [-1, 1, SPPF, [32, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]]
  - [-1, 3, C2f, [32]]
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]]
  - [-1, 3, C2f, [32]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [[-1, 12], 1, Concat, [1]]
  - [-1, 3, C2f, [32]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [[-1, 9], 1, Concat, [1]]
  - [-1, 3, C2f, [32]]
  - [[15, 18, 21], 1, Detect, [nc]]
"""
# Images are rendered at the demo data's 128 px (as JPEG, like the demo data) and trained at imgsz 64:
# people are large, and 64 px trains about twice as fast as 96.
DEFAULTS = {"n_train": 480, "n_val": 64, "render": 128, "size": 64, "epochs": 30, "batch": 16}
# Measured on 200 held-out generated images (worn agreement at conf 0.4): the stock recipe (SGD,
# mosaic) reached 0.52 after 12 epochs at 96 px; without mosaic (it shrinks the one large figure into
# a corner) 0.66; AdamW at lr 0.005, 64 px, 320 images x 25 epochs 0.86-0.92; 480 x 30 epochs 0.945
# (about 100 s of CPU).
TRAIN_ARGS = {"optimizer": "AdamW", "lr0": 0.005, "mosaic": 0.0, "warmup_epochs": 1}


def generated_samples(n: int, seed: int, size: int) -> Iterator[tuple]:
    """(image, worn, person_box normalised xyxy or None) from the demo generator: every other image is
    worn, keys and values cycle over what the generator draws, hanger vs flat-lay is random."""
    from fashiontag.synth.demo import DEMO_KEYS, demo_values, render_sample

    for i in range(n):
        rng = np.random.default_rng([seed, i])  # per image, like the demo data: order-independent
        key = DEMO_KEYS[(i // 2) % len(DEMO_KEYS)]
        values = demo_values(key)
        y = values[int(rng.integers(len(values)))]
        worn = i % 2 == 0
        img, info = render_sample(key, y, worn, rng, size)
        yield _as_jpeg(img), worn, _normalised(info.get("person_box") if worn else None, img.size)


def _as_jpeg(img: Image.Image, quality: int = 90) -> Image.Image:
    """The image as the demo data stores it (JPEG at quality 90), so training and checks see its artefacts."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


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
            img.save(root / "images" / split / f"{i:05d}.png")  # lossless: exactly the JPEG-decoded pixels
            text = ""
            if box is not None:
                x0, y0, x1, y1 = box
                text = f"0 {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}\n"
            (root / "labels" / split / f"{i:05d}.txt").write_text(text)
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames:\n  0: person\n")
    return data_yaml


def generator_fingerprint(render: int) -> str:
    """md5 of a few rendered samples: the weights are retrained when the generator's output changes,
    not when only its code or comments do."""
    h = hashlib.md5()
    for img, worn, box in generated_samples(4, 12_345, render):
        h.update(img.tobytes())
        h.update(repr((worn, box)).encode())
    return h.hexdigest()


def _cache_key(seed: int, settings: dict) -> str:
    payload = {"version": TINY_VERSION, "seed": seed, **settings, **TRAIN_ARGS, "yaml": TINY_YAML,
               "generator": generator_fingerprint(settings["render"])}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """Hide ultralytics' per-batch progress bars (its tqdm is off above INFO) unless we log at DEBUG."""
    ulog = logging.getLogger("ultralytics")
    old = ulog.level
    if not log.isEnabledFor(logging.DEBUG):
        ulog.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ulog.setLevel(old)


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

    final.parent.mkdir(parents=True, exist_ok=True)
    log.info("training the tiny person detector (%s) into %s: a minute or two on a CPU, once", s, final.parent)
    with tempfile.TemporaryDirectory(prefix="tinydet_", dir=final.parent) as tmp:
        tmp = Path(tmp)
        data_yaml = write_yolo_dataset(tmp / "data", s["n_train"], s["n_val"], seed, s["render"])
        model_yaml = tmp / "tiny-person.yaml"
        model_yaml.write_text(TINY_YAML)
        model = YOLO(str(model_yaml), task="detect")
        with _quiet_ultralytics():
            model.train(
                data=str(data_yaml), epochs=s["epochs"], imgsz=s["size"], batch=s["batch"],
                device=resolve_device(device), workers=0, seed=seed, deterministic=True,
                # absolute: ultralytics puts a relative project under its global runs_dir setting
                project=str(tmp.resolve()), name="train", exist_ok=True, plots=False, amp=False,
                verbose=False, pretrained=False, patience=s["epochs"], **TRAIN_ARGS,
            )
        best = tmp / "train" / "weights" / "best.pt"
        agreement = worn_agreement(best, device=device)
        log.info("tiny person detector: worn/hanger agreement %.3f on 100 held-out generated images", agreement)
        atomic_write_json(final.parent / "meta.json", {"seed": seed, **s, **TRAIN_ARGS,
                                                       "heldout_worn_agreement": agreement})
        staged = final.with_suffix(".pt.tmp")
        shutil.copyfile(best, staged)
        staged.replace(final)  # last and atomic: the weights file marks a finished, usable cache entry


def tiny_meta(weights: str | Path) -> dict:
    """The settings a cached tiny detector was trained with."""
    return read_json(Path(weights).parent / "meta.json")


def worn_agreement(weights: str | Path, n: int = 100, seed: int = 10_000, render: int = DEFAULTS["render"],
                   conf: float = 0.4, device: str = "auto") -> float:
    """Share of held-out generated images (half worn) whose worn/hanger call matches the generator."""
    det = load_detector(str(weights), device=device)  # imgsz: what it was trained at
    samples = list(generated_samples(n, seed, render))
    found = detect_people(det, [img for img, _, _ in samples], conf)
    return float(np.mean([(p.count > 0) == worn for p, (_, worn, _) in zip(found, samples, strict=True)]))


def tiny_weights(spec: str, cache_dir: str | Path = "cache") -> tuple[str, str | None]:
    """(weights, detector name) for a split.weights setting: `tiny` is the generated-figure detector
    (trained once into the cache, then reused); any other setting passes through unchanged."""
    if str(spec).strip() != TINY:
        return str(spec), None
    path = train_tiny_person_detector(Path(cache_dir) / "tiny_person_detector")
    return str(path), f"{TINY}:{path.parent.name}"
