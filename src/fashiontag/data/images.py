"""Opening images safely: every bad file becomes a DataError naming it, never a deep PIL traceback.

`open_rgb` is the one image loader of the project (check-data, import, folds' caches, training, predict,
tag, split, detect): whatever the file holds, the pixels come back as 8-bit RGB the right way up, or the
file is named as bad. Handled: 16-bit and 32-bit grayscale and float images (scaled to 0-255, not clipped
to white), palette and bilevel images, alpha (composited on white), CMYK, EXIF orientation, and images
whose header claims more pixels than `Image.MAX_IMAGE_PIXELS` (decompression bombs: refused before any
pixel is decoded, so --skip-bad and --fallback treat them like any other bad image).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from fashiontag.core.errors import DataError, os_error_reason
from fashiontag.core.paths import relative_problem
from fashiontag.core.skips import SkipReport

log = logging.getLogger(__name__)

# Truncated JPEGs must fail loudly, not decode to grey padding.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# open_rgb checks the pixel count itself (below) and names the file; PIL's warning would only add noise.
# (warnings.catch_warnings is not thread-safe, and images are decoded in threads.)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
WHITE = (255, 255, 255)
TOO_LARGE = "image too large (a decompression bomb?)"
_HIGH_DEPTH = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float grayscale -> 8-bit L, scaled to its range (PIL's convert clips to 255).

    I;16* is 0-65535. Mode I holds 8-bit data (max <= 255, PIL's convention), 16-bit data (max <= 65535) or
    anything else (stretched min..max). Mode F is 0-1, 0-255, or stretched min..max.
    """
    arr = np.asarray(img).astype(np.float64)
    finite = np.isfinite(arr)
    arr = np.where(finite, arr, 0.0)
    lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        scaled = arr / 257.0
    elif img.mode == "I" and lo >= 0 and hi <= 255:
        scaled = arr
    elif img.mode == "I" and lo >= 0 and hi <= 65535:
        scaled = arr / 257.0
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        scaled = arr * 255.0
    elif img.mode == "F" and lo >= 0 and hi <= 255:
        scaled = arr
    else:
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: high bit depths scaled, palette/CMYK/bilevel converted, alpha (or a
    transparent colour) composited on `fill`."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in _HIGH_DEPTH:
        img = _to_8bit(img)
    if img.mode == "La":
        img = img.convert("RGBa")
    if img.mode in _ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, fill)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _upright(img: Image.Image, path: Path) -> Image.Image:
    """Apply the EXIF orientation (phone photos are stored sideways with a tag saying so)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block must not make the pixels unreadable
        log.debug("%s: EXIF orientation ignored (%s)", path, exc)
        return img


def _check_size(img: Image.Image, path: Path, line: int | None) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    w, h = img.size
    if limit and w * h > limit:
        raise DataError(path, f"{TOO_LARGE}: {w}x{h} = {w * h} pixels, over the limit of {limit}", line)


def open_rgb(path: str | Path, line: int | None = None, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """Fully decode `path` as upright 8-bit RGB or raise DataError(path, reason, line)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise DataError(path, "is a folder, not an image file", line)
        if not path.exists():
            raise DataError(path, "image file is missing", line)
        if path.stat().st_size == 0:
            raise DataError(path, "image file is empty (0 bytes)", line)
        with Image.open(path) as img:
            _check_size(img, path, line)
            img.load()
            return to_rgb(_upright(img, path), fill)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(path, "not a readable image (unknown or corrupt format)", line) from None
    except Image.DecompressionBombError as exc:  # PIL's own refusal at twice the limit, from the header
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise DataError(path, f"{TOO_LARGE}: {pixels.group(1) if pixels else 'too many'} pixels, over the "
                              f"limit of {Image.MAX_IMAGE_PIXELS}", line) from None
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise DataError(path, f"cannot read: {os_error_reason(exc)}", line) from None
    except (OSError, SyntaxError, ValueError, MemoryError, EOFError) as exc:
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
            problem = relative_problem(image)
            if problem is not None:  # the readers refuse these already; a hand-made table may not
                raise DataError(root / image, f"image path {problem}", line)
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
