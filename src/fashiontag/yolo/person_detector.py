"""Person detection with ultralytics YOLO: weight resolution, loading, and batched prediction.

Any weights ultralytics can load work: a name it downloads online (`yolo11n.pt`), a local `.pt`, or an
exported `.onnx`/`.tflite`/... file. Offline, a name that is not a local file fails at once with a
message that says what to pass instead. `tiny` names the small detector trained on generated demo
images (tiny_detector.py), so the demo and tests need no download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from fashiontag.core.errors import FashiontagError, WeightsUnavailableError
from fashiontag.core.files import file_md5
from fashiontag.core.network import is_online
from fashiontag.yolo.env import import_ultralytics

log = logging.getLogger(__name__)

TINY = "tiny"
WEIGHTS_SUBDIR = "weights"  # under the cache dir: where named weights are downloaded (not the cwd)
OFFLINE_HINT = (
    "pass a local detector file instead: --set worn.weights=/path/to/best.pt (or .onnx / .tflite, e.g. "
    "../shared/models/yolov8n_int8.tflite after `pip install ai-edge-litert`), "
    "or --set worn.weights=tiny for the generated demo data"
)


@dataclass
class Detector:
    """A loaded person detector and what identifies its results (name + weights md5)."""

    model: Any  # ultralytics.YOLO
    name: str
    path: str
    md5: str
    person_class: int
    imgsz: int
    device: str


@dataclass
class Persons:
    """People found in one image: every box as (score, normalised xyxy), most confident first (the worn
    decision looks past the first one)."""

    boxes: tuple[tuple[float, tuple[float, float, float, float]], ...] = ()

    @property
    def count(self) -> int:
        return len(self.boxes)

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """The most confident box, None when nobody was found."""
        return self.boxes[0][1] if self.boxes else None

    @property
    def conf(self) -> float:
        return self.boxes[0][0] if self.boxes else 0.0


def resolve_device(device: str = "auto") -> str:
    """The device as ultralytics names it: `auto` -> `cuda:0` with a GPU, else `cpu`."""
    from fashiontag.core.devices import resolve_device as torch_device

    dev = torch_device(device)
    return f"cuda:{dev.index or 0}" if dev.type == "cuda" else str(dev)


def resolve_weights(spec: str, cache_dir: str | Path = "cache") -> str:
    """A local path for `spec`, or the name itself when ultralytics can download it (online only)."""
    spec = str(spec).strip()
    if not spec:
        raise FashiontagError("worn.weights is empty; " + OFFLINE_HINT)
    if spec == TINY:
        # The tiny detector is trained by its own module (yolo.tiny_detector.tiny_weights), never here.
        raise FashiontagError("worn.weights=tiny names the generated-figure detector: resolve it with "
                              "yolo.tiny_detector.tiny_weights (what `fashiontag worn` does)")
    path = Path(spec).expanduser()
    if path.exists():
        return str(path)
    if len(path.parts) > 1 or spec.startswith(("~", ".")):
        # A path the user typed, not a model name: never try to download it.
        raise FashiontagError(f"worn.weights: detector file not found: {path}")
    for candidate in _local_candidates(spec, cache_dir):
        if candidate.exists():
            return str(candidate)
    if not is_online():
        raise WeightsUnavailableError(
            f"worn.weights={spec} is not a local file and ultralytics cannot download it (no network); "
            + OFFLINE_HINT
        )
    # Online: ultralytics downloads release assets to the path it is given, so name our cache.
    target = Path(cache_dir) / WEIGHTS_SUBDIR / spec
    target.parent.mkdir(parents=True, exist_ok=True)
    return str(target)


def _local_candidates(name: str, cache_dir: str | Path) -> list[Path]:
    """Places a named weight file may already be: our cache, then ultralytics' own weights_dir."""
    out = [Path(cache_dir) / WEIGHTS_SUBDIR / name]
    try:
        import_ultralytics()
        from ultralytics.utils import SETTINGS

        out.append(Path(SETTINGS["weights_dir"]) / name)
    except Exception:  # a broken settings file must not stop us from trying the other places
        log.debug("ultralytics settings unreadable", exc_info=True)
    return out


def load_detector(
    weights: str, device: str = "auto", imgsz: int | str = "auto", cache_dir: str | Path = "cache",
    name: str | None = None,
) -> Detector:
    """Load `weights` through ultralytics; every failure becomes one clear FashiontagError."""
    import_ultralytics()
    from ultralytics import YOLO

    resolved = resolve_weights(weights, cache_dir)
    try:
        model = YOLO(resolved, task="detect")
    except (ImportError, ModuleNotFoundError) as exc:
        raise FashiontagError(
            f"worn.weights={weights}: ultralytics needs a package to run this format ({exc}); "
            "for .tflite: pip install ai-edge-litert, for .onnx: pip install onnxruntime"
        ) from None
    except ConnectionError as exc:
        raise WeightsUnavailableError(f"worn.weights={weights}: download failed ({exc}); " + OFFLINE_HINT) from None
    except FileNotFoundError as exc:
        raise FashiontagError(f"worn.weights={weights}: {exc}") from None
    except Exception as exc:  # ultralytics raises many types for a corrupt/unknown file
        raise FashiontagError(f"worn.weights={weights}: cannot load as an ultralytics detector: {exc}") from None
    path = Path(model.ckpt_path or resolved)
    if path.is_dir():  # exported saved_model / openvino folders have no single file to hash
        md5 = file_md5(next(p for p in sorted(path.rglob("*")) if p.is_file()))
    else:
        md5 = file_md5(path)
    device = resolve_device(device)
    return Detector(
        model=model,
        name=name or Path(weights).name,
        path=str(path),
        md5=md5,
        person_class=_person_class(model, weights),
        imgsz=_imgsz(model, imgsz),
        device=device,
    )


def _person_class(model: Any, weights: str) -> int:
    """COCO puts `person` at 0; a user's own detector may name it elsewhere."""
    try:
        names = _load_names(model)
    except Exception as exc:
        raise FashiontagError(f"worn.weights={weights}: cannot read the detector's class names: {exc}") from None
    for idx, name in names.items():
        if str(name).lower() == "person":
            return int(idx)
    log.warning("detector %s has no class named 'person' (classes: %s); using class 0", weights, names)
    return 0


def _load_names(model: Any) -> dict[int, str]:
    # YOLO.names sets up a predictor for exported formats; do it quietly.
    return dict(model.names)


def _imgsz(model: Any, imgsz: int | str) -> int:
    """`auto` -> the size the weights were trained or exported at (640 when unknown)."""
    if imgsz != "auto":
        return int(imgsz)
    size = (getattr(model, "overrides", None) or {}).get("imgsz")
    predictor = getattr(model, "predictor", None)
    if size is None and predictor is not None:  # exported formats carry it in their metadata
        size = getattr(getattr(predictor, "model", None), "imgsz", None)
    if isinstance(size, (list, tuple)):
        size = max(size)
    return int(size) if size else 640


def detect_people(detector: Detector, images: list[Image.Image], conf: float) -> list[Persons]:
    """One ultralytics predict call over `images` (RGB PIL); people above `conf` per image."""
    if not images:
        return []
    results = detector.model.predict(
        images,
        classes=[detector.person_class],
        conf=conf,
        imgsz=detector.imgsz,
        device=detector.device,
        verbose=False,
        save=False,
    )
    out = []
    for res in results:
        boxes = res.boxes
        if boxes is None or len(boxes) == 0:
            out.append(Persons())
            continue
        scores = boxes.conf.cpu().numpy()
        xyxyn = boxes.xyxyn.cpu().numpy()
        order = (-scores).argsort(kind="stable")
        out.append(Persons(tuple((float(scores[i]), tuple(float(v) for v in xyxyn[i])) for i in order)))
    return out
