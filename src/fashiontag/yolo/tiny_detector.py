"""A tiny person detector trained from scratch on generated demo images, for offline demos and tests.

No pretrained weights are needed: the demo and the tests get a real ultralytics YOLO detector by
training a scaled-down YOLOv8 (0.35 M parameters, one class `person`) for 30 epochs at 64 px on generated
photos (synth/person_figures.py), whose person figures come with exact boxes; the detector only consumes
them, through the one YOLO dataset writer (yolo/dataset.py). The result is an ordinary `best.pt`, used
through exactly the same code path as real weights (`worn.weights=tiny` or its path). Training takes
about 100 s of CPU and happens once: the weights are cached under a folder keyed by the seed, the
settings and the generator's output, and a file lock keeps concurrent callers (tests, the demo) from
training it twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fashiontag.core.digest import cache_key
from fashiontag.core.files import atomic_write_json, read_json
from fashiontag.synth.person_figures import PERSON, person_samples, write_person_samples
from fashiontag.yolo.dataset import write_yolo_dataset
from fashiontag.yolo.env import import_ultralytics
from fashiontag.yolo.person_detector import TINY, Persons, detect_people, load_detector, resolve_device

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


def write_dataset(root: Path, n_train: int, n_val: int, seed: int, render: int) -> Path:
    """Generated figures (synth/person_figures.py) written by the one YOLO dataset writer (class 0 = person;
    hanger images are negatives with an empty label file); returns data.yaml."""
    train = write_person_samples(root / "generated" / "train", n_train, seed, render)
    val = write_person_samples(root / "generated" / "val", n_val, seed + 1, render)
    write_yolo_dataset(train + val, root / "yolo", [PERSON], splits=["train"] * len(train) + ["val"] * len(val),
                       keep_negatives=True)
    return root / "yolo" / "data.yaml"


def generator_fingerprint(render: int) -> str:
    """md5 of a few rendered samples: the weights are retrained when the generator's output changes,
    not when only its code or comments do."""
    h = hashlib.md5()
    for img, worn, box in person_samples(4, 12_345, render):
        h.update(img.tobytes())
        h.update(repr((worn, box)).encode())
    return h.hexdigest()


def _cache_key(seed: int, settings: dict) -> str:
    payload = {"version": TINY_VERSION, "seed": seed, **settings, **TRAIN_ARGS, "yaml": TINY_YAML,
               "generator": generator_fingerprint(settings["render"])}
    return cache_key(payload, length=12)


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
        data_yaml = write_dataset(tmp / "data", s["n_train"], s["n_val"], seed, s["render"])
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


def is_tiny_detector(weights: str | Path) -> bool:
    """Whether `weights` is a tiny detector trained here (its folder holds the meta.json written after
    training, with its held-out worn agreement). It learnt flat and hanger photos as negatives, so its
    person box is itself the worn call: the worn stage's rule `auto` trusts it without further evidence."""
    meta = Path(weights).parent / "meta.json"
    return Path(weights).name == "best.pt" and meta.is_file() and "heldout_worn_agreement" in read_json(meta)


def worn_agreement(weights: str | Path, n: int = 100, seed: int = 10_000, render: int = DEFAULTS["render"],
                   conf: float = 0.4, device: str = "auto",
                   call: Callable[[Image.Image, Persons], bool] | None = None) -> float:
    """Share of held-out generated images (half worn) whose worn/hanger call matches the generator.
    `call(image, persons)` makes the call (the worn stage passes its decision rule); by default any person
    box at or above `conf` is worn."""
    det = load_detector(str(weights), device=device)  # imgsz: what it was trained at
    samples = list(person_samples(n, seed, render))
    found = detect_people(det, [img for img, _, _ in samples], conf)
    calls = [call(img, p) if call else p.count > 0 for p, (img, _, _) in zip(found, samples, strict=True)]
    return float(np.mean([c == worn for c, (_, worn, _) in zip(calls, samples, strict=True)]))


def tiny_weights(spec: str, cache_dir: str | Path = "cache") -> tuple[str, str | None]:
    """(weights, detector name) for a worn.weights setting: `tiny` is the generated-figure detector
    (trained once into the cache, then reused); any other setting passes through unchanged."""
    if str(spec).strip() != TINY:
        return str(spec), None
    path = train_tiny_person_detector(Path(cache_dir) / "tiny_person_detector")
    return str(path), f"{TINY}:{path.parent.name}"
