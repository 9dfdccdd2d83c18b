"""The split file: runs/worn/<dataset>.csv, one row per image of a dataset, cached and resumable.

Columns: image (as in label.csv/question.csv, or relative to a plain image folder), worn, persons,
x0 y0 x1 y1 (the person box the call rests on, normalised xyxy; empty when none), conf (its score),
detector (weights name), weights_md5, imgsz, threshold, then why it was called worn or not: reason,
score, the evidence of a body in that box and the rule (data/worn_file.py, worn/decision.py). Rows are
valid for one (weights_md5, imgsz, threshold, rule): a rerun reuses them, a run with other weights or
another rule refuses to replace them without --force.
Progress is written to a hidden partial file every few batches, so an interrupted run continues.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_write_csv
from fashiontag.core.progress import Progress
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import open_rgb
from fashiontag.data.worn_file import BOX_COLUMNS, WRITTEN_COLUMNS, list_images, read_split, split_path
from fashiontag.worn.decision import Rule, call_photo
from fashiontag.yolo.person_detector import Detector, Persons, detect_people, load_detector
from fashiontag.yolo.tiny_detector import is_tiny_detector, tiny_weights

log = logging.getLogger(__name__)


def _settings_match(df: pd.DataFrame, det: Detector, threshold: float, rule: Rule) -> pd.Series:
    return ((df["weights_md5"] == det.md5) & (df["imgsz"] == det.imgsz)
            & ((df["threshold"] - threshold).abs() < 1e-9) & (df["rule"] == rule.tag))


def _row(image: str, img: Image.Image, persons: Persons, det: Detector, threshold: float, rule: Rule) -> dict:
    """The split row of one photo: its call, the box the call rests on and that box's evidence."""
    call, i, ev = call_photo(img, persons, rule)
    conf, box = persons.boxes[i] if i >= 0 else (0.0, (float("nan"),) * 4)
    return {"image": image, "worn": call.worn, "persons": persons.count,
            **dict(zip(BOX_COLUMNS, (round(v, 5) for v in box), strict=True)),
            "conf": round(conf, 5), "detector": det.name, "weights_md5": det.md5,
            "imgsz": det.imgsz, "threshold": threshold, "reason": call.reason, "score": call.score,
            **ev.as_row(), "rule": rule.tag}


def _decode_batches(root: Path, batches: list[list[str]], skips: SkipReport
                    ) -> Iterator[tuple[list[str], list[Image.Image]]]:
    """Decode the next batch in a background thread while the detector runs on the current one."""

    def decode(batch: list[str]) -> tuple[list[str], list[Image.Image]]:
        names, images = [], []
        for name in batch:
            try:
                images.append(open_rgb(root / name))
                names.append(name)
            except DataError as err:
                skips.handle(err)
        return names, images

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, batches[0]) if batches else None
        for i in range(len(batches)):
            current = pending.result()
            pending = pool.submit(decode, batches[i + 1]) if i + 1 < len(batches) else None
            yield current


def run_split(root: str | Path, cfg: dict, force: bool = False, out: str | Path | None = None,
              skips: SkipReport | None = None, review: int = 0) -> tuple[pd.DataFrame, Path]:
    """Detect people in every image of `root` and call each photo worn or not; reuse and extend the
    cached split file; return it. `review` > 0 also writes sheets of the least certain calls (review.py)."""
    root = Path(root)
    skips = skips if skips is not None else SkipReport(skip=bool(cfg["data"]["skip_bad"]))
    out = Path(out) if out else split_path(root, cfg)
    images = list_images(root, skips)
    worn = cfg["worn"]
    threshold = float(worn["conf"])
    weights, name = tiny_weights(str(worn["weights"]), cfg["cache"]["dir"])
    det = load_detector(weights, device=str(worn["device"]), imgsz=worn["imgsz"], cache_dir=cfg["cache"]["dir"],
                        name=name)
    rule = Rule.from_config(cfg, trained_against_garments=is_tiny_detector(det.path))
    partial = out.parent / f".{out.stem}.{det.md5[:10]}-{det.imgsz}-{threshold:g}.partial.csv"
    done = _cached_rows(out, partial, det, threshold, rule, force)
    wanted = set(images)
    done = done[done["image"].isin(wanted)]
    cached = set(done["image"])
    todo = [im for im in images if im not in cached]
    log.info("split %s: %d images, %d cached, %d to detect with %s (md5 %s, imgsz %d, conf %g, %s), rule %s",
             root, len(images), len(done), len(todo), det.name, det.md5[:8], det.imgsz, threshold, det.device,
             rule.tag)
    rows = done.to_dict("records")
    batch, save_every = int(worn["batch"]), int(worn["save_every"])  # both >= 1 (core/schema.py)
    batches = [todo[i: i + batch] for i in range(0, len(todo), batch)]
    with Progress(len(todo), "worn split detection", unit="img") as bar:
        for b, (names, pics) in enumerate(_decode_batches(root, batches, skips), start=1):
            for name, pic, persons in zip(names, pics, detect_people(det, pics, threshold), strict=True):
                rows.append(_row(name, pic, persons, det, threshold, rule))
            bar.update(len(batches[b - 1]))
            if b % save_every == 0 and b < len(batches):
                atomic_write_csv(partial, pd.DataFrame(rows, columns=WRITTEN_COLUMNS))
    order = {im: i for i, im in enumerate(images)}
    df = pd.DataFrame(rows, columns=WRITTEN_COLUMNS)
    df = df.sort_values("image", key=lambda s: s.map(order)).reset_index(drop=True)
    atomic_write_csv(out, df)
    partial.unlink(missing_ok=True)
    skips.write(out.with_suffix(".skipped.csv"))
    log.info("split file %s: %d worn, %d hanger/flat (%s)", out, int(df["worn"].sum()), int((~df["worn"]).sum()),
             ", ".join(f"{k} {v}" for k, v in df["reason"].value_counts().items()))
    from fashiontag.worn.samples import write_samples  # contact sheets to check the detector by eye

    write_samples(root, df, out, seed=int(cfg["seed"]))
    if review > 0:
        from fashiontag.worn.review import write_review

        write_review(root, df, out, review)
    return df, out


def _cached_rows(out: Path, partial: Path, det: Detector, threshold: float, rule: Rule,
                 force: bool) -> pd.DataFrame:
    """Rows already computed with these exact settings (final file first, then the partial file)."""
    empty = pd.DataFrame(columns=WRITTEN_COLUMNS)
    if force:
        partial.unlink(missing_ok=True)
        return empty
    frames = []
    if out.exists():
        old = read_split(out)
        same = _settings_match(old, det, threshold, rule)
        if len(old) and not same.all():
            first = old[~same].iloc[0]
            raise FashiontagError(
                f"{out} was made with other detector settings ({first['detector']}, md5 {first['weights_md5'][:8]}, "
                f"imgsz {first['imgsz']}, conf {first['threshold']:g}, rule {first['rule']}); "
                "pass --force to replace it"
            )
        frames.append(old)
    if partial.exists():
        part = read_split(partial)
        frames.append(part[part["rule"] == rule.tag])  # the partial file is named by detector settings only
    if not frames:
        return empty
    return pd.concat(frames, ignore_index=True).drop_duplicates("image", keep="first")
