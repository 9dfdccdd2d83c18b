"""Builders of hostile-but-realistic inputs for the bad-input corpus (tests/cli/test_bad_input_corpus.py).

Everything is generated here (no binary fixtures): tiny datasets whose bytes a case then damages, images of
unusual modes, header-only decompression bombs, fake runs, and simulated file-system faults. Tests run as
root, where chmod cannot make a folder read-only, so `fs_fault` makes the OS calls under one folder fail
with EACCES / EROFS (any change) or ENOSPC (writes) in-process.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

KEY = "skirt_length_labels"  # official: no attributes.csv needed
N_VALUES = 6
CUSTOM_KEY = "garment_type_labels"


def label_of(v: int, n: int = N_VALUES) -> str:
    return "".join("y" if i == v else "n" for i in range(n))


# ---------------------------------------------------------------- images


def jpeg(path: Path, seed: int = 0, size: tuple[int, int] = (8, 8)) -> Path:
    """A small random RGB JPEG (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, "JPEG")
    return path


def png16(path: Path, level: int = 32768) -> Path:
    """16-bit grayscale PNG (mode I;16) at `level` of 65535: mid-grey, not white."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), level, dtype=np.uint16)).save(path)
    return path


def tiff(path: Path, array: np.ndarray) -> Path:
    """A float (F) or 32-bit integer (I) TIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, "TIFF")
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A PNG whose header claims width x height 1-bit pixels (a few hundred bytes on disk). PIL refuses it on
    open (DecompressionBombError beyond twice the pixel limit, a warning between once and twice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    """A 30x10 red JPEG whose EXIF orientation (6) says: rotate to 10x30 to view."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (30, 10), (255, 0, 0)).save(path, "JPEG", exif=exif)
    return path


def palette_png_transparent(path: Path) -> Path:
    """A palette PNG whose only colour (red) is the transparent one: it must come out white."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0] * 256)
    img.save(path, transparency=0)
    return path


def la_png(path: Path) -> Path:
    """Grayscale + alpha, fully transparent black: white after compositing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("LA", (8, 8), (0, 0)).save(path)
    return path


def cmyk_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, "JPEG")  # red in CMYK
    return path


# ---------------------------------------------------------------- datasets and runs


def train_root(root: Path, per_value: int = 2) -> Path:
    """root/Annotations/label.csv listing N_VALUES * per_value JPEGs of KEY (line i+1 = image s{i})."""
    lines = []
    for i in range(N_VALUES * per_value):
        jpeg(root / "Images" / KEY / f"s{i}.jpg", seed=i)
        lines.append(f"Images/{KEY}/s{i}.jpg,{KEY},{label_of(i % N_VALUES)}")
    write_text(root / "Annotations" / "label.csv", "\n".join(lines) + "\n")
    return root


def label_lines(root: Path) -> list[str]:
    return (root / "Annotations" / "label.csv").read_text(encoding="utf-8").splitlines()


def set_label_lines(root: Path, lines: list[str]) -> None:
    write_text(root / "Annotations" / "label.csv", "\n".join(lines) + "\n")


def question_root(root: Path, n: int = 4, seed: int = 100) -> Path:
    """root/Tests/question.csv with n questions of KEY."""
    lines = []
    for i in range(n):
        jpeg(root / "Images" / KEY / f"q{i}.jpg", seed=seed + i)
        lines.append(f"Images/{KEY}/q{i}.jpg,{KEY},?")
    write_text(root / "Tests" / "question.csv", "\n".join(lines) + "\n")
    return root


def custom_attributes(root: Path, extra_rows: str = "") -> Path:
    """attributes.csv declaring CUSTOM_KEY (coat, dress) plus `extra_rows` verbatim."""
    return write_text(root / "Annotations" / "attributes.csv",
                      f"key,index,value\n{CUSTOM_KEY},0,coat\n{CUSTOM_KEY},1,dress\n{extra_rows}")


def class_folders(src: Path, per_class: int = 2) -> Path:
    for c, cls in enumerate(("coat", "dress")):
        for i in range(per_class):
            jpeg(src / cls / f"{cls}{i}.jpg", seed=10 * c + i)
    return src


def probs_text(v: int, n: int = N_VALUES) -> str:
    p = [0.5 if i == v else 0.5 / (n - 1) for i in range(n)]
    units = [round(x * 10_000) for x in p]
    units[v] += 10_000 - sum(units)
    return ";".join(f"{u / 10_000:.4f}" for u in units)


def submission_for(label_csv: Path, out: Path) -> Path:
    """A valid submission answering every row of a label-format file (the true value gets 0.5)."""
    rows = []
    for line in label_csv.read_text(encoding="utf-8").splitlines():
        image, key, label = line.split(",")
        rows.append(f"{image},{key},{probs_text(label.index('y'))}")
    return write_text(out, "\n".join(rows) + "\n")


def fake_run(runs: Path, test: Path, predicted_for: str, name: str = "cnn") -> Path:
    """runs/<name>/KEY/{test.csv, predict.json}: predictions for `test`'s questions, recorded as made for
    `predicted_for` (what `fashiontag predict` writes)."""
    key_dir = runs / name / KEY
    key_dir.mkdir(parents=True, exist_ok=True)
    cols = ",".join(f"p_{i}" for i in range(N_VALUES))
    lines = [f"image,key,{cols}"]
    for line in (test / "Tests" / "question.csv").read_text(encoding="utf-8").splitlines():
        image, key, _ = line.split(",")
        lines.append(f"{image},{key},{probs_text(1).replace(';', ',')}")
    write_text(key_dir / "test.csv", "\n".join(lines) + "\n")
    write_text(key_dir / "predict.json", json.dumps({"key": KEY, "test_root": predicted_for, "folds": [0]}))
    return runs / name


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- checks


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> md5 of every file under root (folders are not files)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return out


@dataclass
class Case:
    """One bad input: the command line (run in the case's folder) and the exact outcome.

    rc 2: exactly one ERROR line matching `error`. rc 0/1: `out` matches stdout; `report` (path, rows) is the
    skip report. Files present before are byte-identical afterwards; the files that appear must match
    `creates` (fnmatch patterns) exactly. `fault` = (folder, errno) simulates a file-system fault there;
    `patch(monkeypatch)` adds other in-process patches; `check(folder)` asserts more.
    """

    argv: list[str]
    rc: int = 2
    error: str | None = None
    out: str | None = None
    report: tuple[str, int] | None = None
    creates: tuple[str, ...] = ()
    fault: tuple[str, int] | None = None
    patch: Callable | None = None
    check: Callable[[Path], None] | None = None
    slow_import: bool = field(default=False)  # needs torch (tag, predict, train): fewer of these


# ---------------------------------------------------------------- simulated file-system faults

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _under(path, folder: str) -> bool:
    if isinstance(path, int) or path is None:
        return False
    p = os.path.abspath(os.fsdecode(path))
    return p == folder or p.startswith(folder + os.sep)


class _FullDiskFile:
    """A file object whose writes fail as on a full disk (the file itself could be created)."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def writelines(self, lines):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __iter__(self):
        return iter(self._fh)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False


def fs_fault(monkeypatch, folder: Path, code: int) -> None:
    """Make file-system changes under `folder` fail with errno `code`, as the kernel would report them.

    EACCES / EROFS: creating, writing, renaming into, linking, removing and mkdir fail (a read-only or
    permission-denied folder). ENOSPC: files can be opened but every write fails (a full disk).
    """
    folder_s = os.path.abspath(folder)
    real = {name: getattr(os, name) for name in ("open", "mkdir", "link", "replace", "rename", "unlink",
                                                 "remove", "rmdir", "symlink", "chmod")}
    real_open = builtins.open

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    def writes(mode) -> bool:
        return any(c in str(mode) for c in "wax+")

    if code in (errno.EACCES, errno.EROFS, errno.EPERM):
        def fake_os_open(path, flags, *args, **kwargs):
            if flags & _WRITE_FLAGS and _under(path, folder_s):
                refuse(path)
            return real["open"](path, flags, *args, **kwargs)

        def fake_open(file, mode="r", *args, **kwargs):
            if writes(mode) and _under(file, folder_s):
                refuse(file)
            return real_open(file, mode, *args, **kwargs)

        def one_path(name):
            def fake(path, *args, **kwargs):
                if _under(path, folder_s):
                    if name in ("unlink", "remove") and not os.path.lexists(path):
                        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fsdecode(path))
                    if name == "mkdir" and os.path.lexists(path):
                        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
                    refuse(path)
                return real[name](path, *args, **kwargs)
            return fake

        def two_paths(name):
            def fake(src, dst, *args, **kwargs):
                if _under(src, folder_s) or _under(dst, folder_s):
                    refuse(dst if _under(dst, folder_s) else src)
                return real[name](src, dst, *args, **kwargs)
            return fake

        monkeypatch.setattr(os, "open", fake_os_open)
        for name in ("mkdir", "unlink", "remove", "rmdir", "chmod"):
            monkeypatch.setattr(os, name, one_path(name))
        for name in ("link", "replace", "rename", "symlink"):
            monkeypatch.setattr(os, name, two_paths(name))
    elif code == errno.ENOSPC:
        def fake_open(file, mode="r", *args, **kwargs):
            fh = real_open(file, mode, *args, **kwargs)
            return _FullDiskFile(fh) if writes(mode) and _under(file, folder_s) else fh
    else:
        raise ValueError(f"unsupported errno {code}")
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
