"""`detect-train`: train an ultralytics clothing detector on a YOLO dataset and report its val mAP.

The run directory (`detect.out_dir/<exp>/`) holds the resolved config, ultralytics' own outputs
(weights/best.pt, results.csv, curves) and metrics.json with mAP50 and mAP50-95 from `model.val`.
Ultralytics is imported only through yolo/env.py (offline-safe: no network hangs, no auto-install).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from fashiontag.core.config import save_config
from fashiontag.core.errors import FashiontagError, WeightsUnavailableError
from fashiontag.core.files import atomic_write_json
from fashiontag.core.network import is_online
from fashiontag.yolo.env import import_ultralytics
from fashiontag.yolo.person_detector import resolve_device

log = logging.getLogger(__name__)

WEIGHTS_HINT = (
    "pass a local file: --set detect.weights=/path/to/best.pt, or train from scratch with "
    "--set detect.weights=yolo11n.yaml (any ultralytics model .yaml; no download needed)"
)


def resolve_detect_weights(spec: str, cache_dir: str | Path = "cache") -> str:
    """A model .yaml (ultralytics builds it untrained), a local file, or a name to download online."""
    spec = str(spec).strip()
    if not spec:
        raise FashiontagError("detect.weights is empty; " + WEIGHTS_HINT)
    path = Path(spec).expanduser()
    if path.exists():
        return str(path)
    if path.suffix in (".yaml", ".yml") and len(path.parts) == 1:
        return spec  # a bundled ultralytics model config, e.g. yolo11n.yaml
    if len(path.parts) > 1:
        raise FashiontagError(f"detect.weights: file not found: {path}")
    cached = Path(cache_dir) / "weights" / spec
    if cached.exists():
        return str(cached)
    if not is_online():
        raise WeightsUnavailableError(
            f"detect.weights={spec} is not a local file and cannot be downloaded (no network); " + WEIGHTS_HINT
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    return str(cached)  # ultralytics downloads release assets to the path it is given


def load_yolo(weights: str, cache_dir: str | Path = "cache") -> Any:
    """An ultralytics YOLO model; load failures become one clear FashiontagError."""
    import_ultralytics()
    from ultralytics import YOLO

    resolved = resolve_detect_weights(weights, cache_dir)
    try:
        return YOLO(resolved, task="detect")
    except ConnectionError as exc:
        raise WeightsUnavailableError(f"detect.weights={weights}: download failed ({exc}); " + WEIGHTS_HINT) from None
    except FileNotFoundError as exc:
        raise FashiontagError(f"detect.weights={weights}: {exc}") from None
    except Exception as exc:  # ultralytics raises many types for corrupt or unknown files
        raise FashiontagError(f"detect.weights={weights}: cannot load as an ultralytics detector: {exc}") from None


def check_data_yaml(path: str | Path) -> dict:
    """The dataset file must exist and name its classes and train/val folders."""
    path = Path(path)
    if not path.is_file():
        raise FashiontagError(f"dataset file not found: {path} (make one with `fashiontag detect-convert`)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in ("train", "val", "names") if k not in data]
    if missing:
        raise FashiontagError(f"{path}: missing {', '.join(missing)} (not a YOLO dataset file)")
    return data


def val_metrics(metrics: Any, names: dict[int, str]) -> dict:
    """mAP50 / mAP50-95 overall and per class from an ultralytics DetMetrics."""
    box = metrics.box
    per_class = {}
    for i, cls in enumerate(box.ap_class_index):
        per_class[names[int(cls)]] = {"mAP50": float(box.ap50[i]), "mAP50-95": float(box.ap[i])}
    return {
        "mAP50": float(box.map50), "mAP50-95": float(box.map),
        "precision": float(box.mp), "recall": float(box.mr), "per_class": per_class,
    }


def train_detector(data_yaml: str | Path, cfg: dict, exp: str | None = None, force: bool = False) -> dict:
    """Train per `cfg['detect']`, validate best.pt on the val split, write metrics.json; returns it."""
    data_yaml = Path(data_yaml).resolve()
    data = check_data_yaml(data_yaml)
    d = cfg["detect"]
    name = exp or cfg["exp"] or data_yaml.parent.name
    run_dir = Path(d["out_dir"]).resolve() / name
    if (run_dir / "metrics.json").exists() and not force:
        raise FashiontagError(f"{run_dir} is already trained (metrics.json); pass --force to retrain over it")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    model = load_yolo(d["weights"], cfg["cache"]["dir"])
    device = resolve_device(d["device"])
    log.info("training %s on %s (%s) for %d epochs into %s", d["weights"], data_yaml, device, d["epochs"], run_dir)
    # The run dir is ours: ultralytics writes weights/, results.csv and its plots inside it.
    model.train(
        data=str(data_yaml), epochs=d["epochs"], imgsz=d["imgsz"], batch=d["batch"], patience=d["patience"],
        workers=d["workers"], mosaic=d["mosaic"], warmup_epochs=d["warmup_epochs"], device=device,
        seed=cfg["seed"], deterministic=True, project=str(run_dir.parent), name=run_dir.name, exist_ok=True,
        plots=d["plots"], verbose=False,
    )
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise FashiontagError(f"ultralytics finished without {best}; see its log above")
    from ultralytics import YOLO

    names = {int(k): str(v) for k, v in dict(data["names"]).items()}
    metrics = YOLO(str(best)).val(data=str(data_yaml), split="val", imgsz=d["imgsz"], batch=d["batch"],
                                  device=device, project=str(run_dir), name="val", exist_ok=True, plots=d["plots"],
                                  verbose=False)
    result = {"data": str(data_yaml), "weights": str(best), "epochs": d["epochs"], **val_metrics(metrics, names)}
    atomic_write_json(run_dir / "metrics.json", result)
    log.info("val mAP50 %.3f  mAP50-95 %.3f  (%s)", result["mAP50"], result["mAP50-95"], run_dir / "metrics.json")
    return result
