"""File I/O with one policy for every command.

Writing: outputs are written to a temporary file beside the target and renamed over it only when complete
(`atomic_open`), so a crash or a full disk never leaves half a file where a finished one is expected and never
damages the file that was there. An OS refusal (read-only folder, permission, full disk, a file where a folder
should be) becomes one FashiontagError line naming the output. `refuse_overwrite` is the check every command
makes before replacing another command's output (only --force replaces), and `exclusive=True` closes the
check-then-write race: the rename then fails if another process created the file meanwhile.

Reading: `read_text_checked` decodes UTF-8 (with or without a byte-order mark) and UTF-16/32 with a BOM;
anything else is a DataError naming the file and the line of the first undecodable byte. `read_csv_rows` and
`read_csv_checked` build on it, so a BOM never sticks to the first cell and a Latin-1 file never ends in a
UnicodeDecodeError traceback.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from fashiontag.core.errors import DataError, FashiontagError, os_error_message, os_error_reason


class OutputExistsError(FashiontagError):
    """An output is already there and the command was not told to replace it."""


def _write_error(exc: OSError, path: Path) -> FashiontagError:
    if isinstance(exc, FileExistsError) and exc.filename is not None and Path(exc.filename) != path:
        # mkdir(exist_ok=True) of a parent that is a file
        exc = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename)
    return FashiontagError(os_error_message(exc, path, "write"))


def make_dirs(path: str | Path) -> Path:
    """mkdir -p; an OS refusal is one line naming the folder."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            exc = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename)
        raise FashiontagError(os_error_message(exc, path, "create folder")) from None
    return path


def refuse_overwrite(path: str | Path, force: bool = False, hint: str = "pass --force to overwrite it") -> Path:
    """Every command's rule before writing an output: a folder is never a file; an existing file only with force."""
    path = Path(path)
    if path.is_dir():
        raise FashiontagError(f"{path} is a folder; give a file name to write")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; {hint}")
    return path


def _place(tmp: str, path: Path, exclusive: bool) -> None:
    """Move the finished temporary file to `path`; with `exclusive` never over an existing file."""
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and fails if `path` exists: no check-then-write window
    except FileExistsError:
        raise OutputExistsError(f"{path} already exists (written meanwhile by another command); "
                                "pass --force to replace it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # No hard links here (some network and FUSE file systems): reserve the name, then rename over it.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            raise OutputExistsError(f"{path} already exists (written meanwhile by another command); "
                                    "pass --force to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, exclusive: bool = False, **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds.

    A crash mid-write never leaves a half-written output where a finished one is expected, and the old file
    stays byte-identical until the rename. With `exclusive` an existing `path` is never replaced
    (OutputExistsError), even one created by another process while this one was writing.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        # mkstemp makes 0600 files; outputs should get the usual permissions (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except OSError as exc:
        raise _write_error(exc, path) from None
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, path, exclusive)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # Errors of the output (write, fsync, rename: no file name or ours) are named by the output; an
        # error of another file read inside the block keeps its own name.
        if exc.filename is None or str(exc.filename) in (tmp, str(path)):
            raise _write_error(exc, path) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, exclusive: bool = False) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="", exclusive=exclusive) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, obj: Any, exclusive: bool = False) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", exclusive)


def atomic_write_csv(path: str | Path, df: pd.DataFrame, exclusive: bool = False, **kwargs: Any) -> Path:
    kwargs.setdefault("index", False)
    with atomic_open(path, "w", encoding="utf-8", newline="", exclusive=exclusive) as fh:
        df.to_csv(fh, **kwargs)
    return Path(path)


def atomic_save_torch(path: str | Path, obj: Any) -> Path:
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def replace_file(src: str | Path, dst: str | Path, exclusive: bool = False) -> Path:
    """Move a finished file into place (never over an existing `dst` with `exclusive`); one-line errors."""
    try:
        _place(str(src), Path(dst), exclusive)
    except OSError as exc:
        raise _write_error(exc, Path(dst)) from None
    return Path(dst)


def remove_file(path: str | Path) -> None:
    """Remove `path` if it is there; an OS refusal is one line naming it."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        raise FashiontagError(os_error_message(exc, path, "remove")) from None


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
]


def decode_text(data: bytes, path: str | Path) -> str:
    """Bytes of a text file -> str: UTF-8 (a BOM is dropped) or UTF-16/32 with a BOM; else DataError + line."""
    encoding, body = "utf-8", data
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, body = name, data[len(bom):]
            break
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        bad = body[exc.start: exc.start + 1].hex()
        raise DataError(path, f"not {encoding.upper()} text: byte 0x{bad} cannot be decoded (save the file as "
                              "UTF-8)", line) from None


def read_bytes_checked(path: str | Path, not_found: str = "file not found") -> bytes:
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file")
    if not path.exists():
        raise DataError(path, not_found)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read: {os_error_reason(exc)}") from None


def read_text_checked(path: str | Path, not_found: str = "file not found") -> str:
    """A text file's content (see decode_text); a missing file, a folder or an unreadable one is a DataError."""
    return decode_text(read_bytes_checked(path, not_found), path)


def read_csv_rows(path: str | Path, not_found: str = "file not found") -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row of a header-less CSV (blank lines included as [])."""
    text = read_text_checked(path, not_found)
    if "\x00" in text:
        raise DataError(path, "contains a NUL byte (a binary file, or UTF-16 without a byte-order mark?)",
                        text.count("\n", 0, text.index("\x00")) + 1)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV: {exc}", reader.line_num) from None
    return rows


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_csv_checked(path: str | Path, dtype: dict | None = None, not_found: str = "file not found",
                     what: str = "CSV") -> pd.DataFrame:
    """pandas.read_csv whose failures are one DataError naming the file, not a parser traceback."""
    path = Path(path)
    text = read_text_checked(path, not_found)
    try:
        return pd.read_csv(io.StringIO(text), dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"unreadable {what}: {reason}") from None
