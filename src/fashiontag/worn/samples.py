"""Contact sheets of the split: a random sample of worn and of hanger/flat photos, person boxes drawn.

`fashiontag worn` writes runs/worn/<dataset>.worn.jpg and <dataset>.hanger.jpg next to the split file,
so the detector's decisions can be checked by eye before a split mode is trained on them. Under each photo
a caption gives the call's reason and score and its evidence (person confidence c, box aspect a, face f,
head skin s); the box the call rests on is drawn red on a worn call, blue where the evidence overruled it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fashiontag.core.errors import DataError
from fashiontag.core.files import atomic_open
from fashiontag.data.images import open_rgb

log = logging.getLogger(__name__)

THUMB = 160
CAPTION = 24  # two lines of evidence under each thumbnail
WORN_BOX, OVERRULED_BOX = (255, 0, 0), (0, 90, 255)


def caption(row: pd.Series) -> list[str]:
    """The call and its evidence in two short lines (old split files have only the box: its confidence)."""
    def num(col: str, fmt: str = "{:.2f}") -> str:
        value = row.get(col)
        return "-" if value is None or pd.isna(value) else fmt.format(float(value)).lstrip("0")

    reason = row.get("reason")
    head = f"{reason} {num('score')}" if isinstance(reason, str) else ("worn" if bool(row.get("worn")) else "hanger")
    return [head, f"c{num('conf')} a{num('box_aspect')} f{num('face')} s{num('head_skin')}"]


def _thumb(path: Path, row: pd.Series) -> Image.Image:
    """A letterboxed THUMB x THUMB thumbnail with the person box (if any) drawn, and the caption below."""
    tile = Image.new("RGB", (THUMB, THUMB + CAPTION), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    for k, line in enumerate(caption(row)):
        draw.text((3, THUMB + 1 + 11 * k), line, fill=(0, 0, 0))
    try:
        img = open_rgb(path)
    except DataError:
        draw.rectangle([0, 0, THUMB - 1, THUMB - 1], fill=(255, 0, 255))  # unreadable: a magenta tile
        return tile
    scale = THUMB / max(img.size)
    small = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    ox, oy = (THUMB - small.width) // 2, (THUMB - small.height) // 2
    tile.paste(small, (ox, oy))
    if pd.notna(row.get("x0")) and (row.get("persons", 1) or 0) > 0:
        colour = WORN_BOX if bool(row.get("worn")) else OVERRULED_BOX
        box = [ox + row["x0"] * small.width, oy + row["y0"] * small.height,
               ox + row["x1"] * small.width, oy + row["y1"] * small.height]
        draw.rectangle(box, outline=colour, width=2)
        draw.text((box[0] + 3, box[1] + 2), f"{row['conf']:.2f}", fill=colour)
    return tile


def contact_sheet(root: str | Path, rows: pd.DataFrame, out: str | Path, cols: int = 8) -> Path | None:
    """A grid of the images in `rows` (image paths relative to `root`); None when `rows` is empty."""
    if rows.empty:
        return None
    n_rows = (len(rows) + cols - 1) // cols
    tile_h = THUMB + CAPTION
    sheet = Image.new("RGB", (cols * THUMB, n_rows * tile_h), (255, 255, 255))
    for i, (_, row) in enumerate(rows.iterrows()):
        sheet.paste(_thumb(Path(root) / str(row["image"]), row), ((i % cols) * THUMB, (i // cols) * tile_h))
    out = Path(out)
    with atomic_open(out, "wb") as fh:
        sheet.save(fh, format="JPEG", quality=85)
    return out


def write_samples(root: str | Path, split: pd.DataFrame, split_csv: str | Path, n: int = 24,
                  seed: int = 0) -> dict[str, Path | None]:
    """<split_csv stem>.worn.jpg and .hanger.jpg: n random images of each group (seeded)."""
    split_csv = Path(split_csv)
    rng = np.random.default_rng(seed)
    out = {}
    for group, mask in (("worn", split["worn"].astype(bool)), ("hanger", ~split["worn"].astype(bool))):
        part = split[mask.to_numpy()]
        pick = part.iloc[np.sort(rng.choice(len(part), size=min(n, len(part)), replace=False))] if len(part) else part
        out[group] = contact_sheet(root, pick, split_csv.with_suffix(f".{group}.jpg"))
        if out[group] is not None:
            log.info("split sample of %d %s images: %s", len(pick), group, out[group])
    return out
