"""Opening images safely: every bad file becomes a DataError naming it, never a deep PIL traceback."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError

from fashiontag.core.errors import DataError
from fashiontag.core.skips import SkipReport

# Truncated JPEGs must fail loudly, not decode to grey padding.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def to_rgb(img: Image.Image) -> Image.Image:
    """CMYK, grayscale, palette and alpha images become plain RGB; alpha is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def open_rgb(path: str | Path, line: int | None = None) -> Image.Image:
    """Fully decode `path` as RGB or raise DataError(path, reason, line)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "image file is missing", line)
    if path.stat().st_size == 0:
        raise DataError(path, "image file is empty (0 bytes)", line)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return to_rgb(img)
    except UnidentifiedImageError:
        raise DataError(path, "not a readable image (unknown or corrupt format)", line) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise DataError(path, f"corrupt or truncated image: {exc}", line) from None


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def verify_images(
    root: str | Path, table: pd.DataFrame, skips: SkipReport, source: str | Path | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Decode every image of a label/question table (image, line); returns the rows that decoded.

    With `source` (the CSV listing the images) errors name that file and line plus the image, so
    `label.csv:12: Images/k/a.jpg: image file is missing` says where the bad entry is. Bad files go
    to `skips`: it raises at the first one in file order (strict) or records each one.
    Decoding runs in threads (PIL releases the GIL while decoding).
    """
    root = Path(root)
    lines = table["line"].tolist() if "line" in table.columns else [None] * len(table)

    def check(args: tuple[str, int | None]) -> DataError | None:
        image, line = args
        try:
            open_rgb(root / image, line)
        except DataError as err:
            return DataError(source, f"{image}: {err.reason}", line) if source is not None else err
        return None

    ok = []
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        for error in pool.map(check, zip(table["image"].tolist(), lines, strict=True)):
            if error is not None:
                skips.handle(error)
            ok.append(error is None)
    return table.loc[np.asarray(ok, dtype=bool)]
