"""Dataturks-style JSON lines -> YOLO dataset.

Each line: {"content": URL or path, "annotation": [{"label": [names], "points": [{"x","y"}, {"x","y"}],
"imageWidth": W, "imageHeight": H}, ...]}. Points are normalised (0..1) corners, in any order.
URLs cannot be fetched here: a URL is looked up in `images_dir` by its file name (a local cache the
user filled), and one that is not there is an error naming the line (or a counted skip).
A `label` list with several names makes one box per name (multi-tagged garment).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.data.boxes import Box, Sample
from fashiontag.yolo.dataset import image_size

log = logging.getLogger(__name__)


def resolve_content(content: str, json_path: Path, images_dir: Path | None, line: int) -> Path:
    """A local path (absolute, or relative to the JSON file or `images_dir`) or a locally cached URL."""
    if not isinstance(content, str) or not content.strip():
        raise DataError(json_path, "'content' must be an image URL or path", line)
    parsed = urlparse(content)
    if parsed.scheme in ("http", "https", "ftp"):
        name = Path(unquote(parsed.path)).name
        if images_dir is not None and name and (images_dir / name).is_file():
            return images_dir / name
        where = f"{images_dir}/{name}" if images_dir is not None else f"a folder passed as --images (as {name})"
        raise DataError(json_path, f"image URL {content} is not cached locally and cannot be downloaded here; "
                        f"save it to {where}", line)
    raw = Path(unquote(parsed.path) if parsed.scheme == "file" else content)
    candidates = [raw] if raw.is_absolute() else [json_path.parent / raw]
    if images_dir is not None:
        candidates += [images_dir / raw, images_dir / raw.name]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(json_path, f"image {content} not found (looked at {', '.join(map(str, candidates))})", line)


def _point(p: object, json_path: Path, line: int) -> tuple[float, float]:
    try:
        return float(p["x"]), float(p["y"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise DataError(json_path, f"a point must be {{'x': .., 'y': ..}}, got {p!r}", line) from None


def parse_record(record: dict, json_path: Path, images_dir: Path | None, line: int) -> Sample:
    """One JSON object -> Sample with pixel boxes on the real image size."""
    if not isinstance(record, dict):
        raise DataError(json_path, "each line must be a JSON object", line)
    image = resolve_content(record.get("content"), json_path, images_dir, line)
    width, height = image_size(image, str(json_path), line)
    annotations = record.get("annotation") or []
    if not isinstance(annotations, list):
        raise DataError(json_path, "'annotation' must be a list of boxes", line)
    boxes = []
    for ann in annotations:
        points = ann.get("points") if isinstance(ann, dict) else None
        if not isinstance(points, list) or len(points) < 2:
            raise DataError(json_path, f"an annotation needs 'points' with two corners, got {ann!r}", line)
        xs, ys = zip(*(_point(p, json_path, line) for p in points), strict=True)
        labels = ann.get("label") or []
        labels = [labels] if isinstance(labels, str) else list(labels)
        if not labels:
            labels = [""]  # an unlabelled box is a bad box (unknown label), reported like the others
        # Normalised by the annotation tool's own size: scale to the real file's size.
        for label in labels:
            boxes.append(Box(str(label), min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height))
    return Sample(image=image, width=width, height=height, boxes=boxes, source=f"{json_path}:{line}")


def _records(text: str, json_path: Path) -> list[tuple[int, object]]:
    """(line, record) pairs in file order; a line that is not JSON becomes its DataError (raised in order)."""
    if text.lstrip().startswith("["):  # a whole-file JSON list is accepted too
        try:
            return list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as exc:
            raise DataError(json_path, f"invalid JSON: {exc}") from None
    out: list[tuple[int, object]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            try:
                out.append((lineno, json.loads(raw)))
            except json.JSONDecodeError as exc:
                out.append((lineno, DataError(json_path, f"invalid JSON: {exc.msg}", lineno)))
    return out


def read_dataturks(
    json_path: str | Path, images_dir: str | Path | None = None, skips: SkipReport | None = None
) -> list[Sample]:
    """All records of a JSON-lines file; bad lines raise (naming the line) or are counted in `skips`."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise FashiontagError(f"Dataturks annotation file not found: {json_path}")
    images = Path(images_dir) if images_dir is not None else None
    skips = skips if skips is not None else SkipReport(skip=False)
    text = json_path.read_text(encoding="utf-8")
    samples = []
    for lineno, record in _records(text, json_path):
        try:
            if isinstance(record, DataError):
                raise record
            samples.append(parse_record(record, json_path, images, lineno))
        except DataError as err:
            skips.handle(err)
    log.info("read %d Dataturks records from %s (%d rejected)", len(samples), json_path, len(skips))
    return samples
