"""Pascal VOC XML annotations -> YOLO dataset.

VOC boxes are 1-based inclusive pixel indices (xmin=1 is the first column), so the continuous box
edges are (xmin - 1, ymin - 1, xmax, ymax). The image is found beside the XML, in `images_dir`, or in
a sibling JPEGImages/ folder (the standard VOC layout); its real size comes from the file, and a
`<size>` that disagrees is reported because the boxes were drawn on a different image.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.data.boxes import Box, Sample
from fashiontag.yolo.dataset import image_size

log = logging.getLogger(__name__)


def _text(node: ET.Element, tag: str, path: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(path, f"<{node.tag}> has no <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    value = _text(node, tag, path)
    try:
        return float(value)
    except ValueError:
        raise DataError(path, f"<{tag}> is not a number: {value!r}") from None


def _find_image(xml_path: Path, filename: str, images_dir: Path | None) -> Path:
    candidates = [xml_path.parent / filename, xml_path.parent.parent / "JPEGImages" / filename]
    if images_dir is not None:
        candidates.insert(0, images_dir / filename)
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(xml_path, f"image {filename!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})")


def parse_voc(xml_path: str | Path, images_dir: str | Path | None = None) -> Sample:
    """One VOC XML file -> Sample (pixel boxes, the real image size); bad XML raises DataError."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DataError(xml_path, f"invalid XML: {exc}") from None
    if root.tag != "annotation":
        raise DataError(xml_path, f"not a VOC annotation (root element <{root.tag}>)")
    image = _find_image(xml_path, _text(root, "filename", xml_path), Path(images_dir) if images_dir else None)
    width, height = image_size(image, str(xml_path))
    size = root.find("size")
    if size is not None and size.find("width") is not None:
        declared = (int(_number(size, "width", xml_path)), int(_number(size, "height", xml_path)))
        if declared != (width, height):
            raise DataError(xml_path, f"<size> says {declared[0]}x{declared[1]} but {image.name} is {width}x{height}")
    boxes = []
    for obj in root.iter("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DataError(xml_path, f"<object> {_text(obj, 'name', xml_path)!r} has no <bndbox>")
        boxes.append(Box(
            label=_text(obj, "name", xml_path),
            x1=_number(bnd, "xmin", xml_path) - 1, y1=_number(bnd, "ymin", xml_path) - 1,
            x2=_number(bnd, "xmax", xml_path), y2=_number(bnd, "ymax", xml_path),
        ))
    return Sample(image=image, width=width, height=height, boxes=boxes, source=str(xml_path))


def read_voc_folder(
    xml_dir: str | Path, images_dir: str | Path | None = None, skips: SkipReport | None = None
) -> list[Sample]:
    """Every *.xml under `xml_dir` (recursively, sorted); bad files raise or are counted in `skips`."""
    xml_dir = Path(xml_dir)
    if not xml_dir.is_dir():
        raise FashiontagError(f"VOC annotation folder not found: {xml_dir}")
    files = sorted(xml_dir.rglob("*.xml"))
    if not files:
        raise FashiontagError(f"{xml_dir}: no .xml annotation files found")
    skips = skips if skips is not None else SkipReport(skip=False)
    samples = []
    for path in files:
        try:
            samples.append(parse_voc(path, images_dir))
        except DataError as err:
            skips.handle(err)
    log.info("read %d VOC annotation files from %s (%d rejected)", len(samples), xml_dir, len(skips))
    return samples
