"""core.files: the writer policy (atomic, exclusive, one-line OS errors) and the checked text/CSV readers;
core.names and core.paths: the one rule for names that become folders and paths that must stay inside a root."""

from __future__ import annotations

import errno
import os

import pytest

from fashiontag.core.errors import DataError, FashiontagError, os_error_message
from fashiontag.core.files import (
    OutputExistsError,
    atomic_open,
    atomic_write_text,
    decode_text,
    make_dirs,
    read_csv_rows,
    read_text_checked,
    refuse_overwrite,
)
from fashiontag.core.names import check_name, name_problem
from fashiontag.core.paths import inside_root, relative_problem
from helpers.bad_inputs import fs_fault


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32"])
def test_utf8_with_or_without_bom_and_utf16_32_with_bom_are_decoded(encoding):
    assert decode_text("image,k\u00e9y\n".encode(encoding), "f.csv") == "image,k\u00e9y\n"


def test_undecodable_bytes_name_their_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"ok,1\nok,2\ncaf\xe9,3\n")
    with pytest.raises(DataError, match=r"x\.csv:3: not UTF-8 text: byte 0xe9") as info:
        read_text_checked(path)
    assert info.value.line == 3


def test_csv_rows_nul_field_limit_folder_and_missing(tmp_path):
    (tmp_path / "nul.csv").write_bytes(b"a,b\nc\x00,d\n")
    with pytest.raises(DataError, match=r"nul\.csv:2: contains a NUL byte"):
        read_csv_rows(tmp_path / "nul.csv")
    (tmp_path / "big.csv").write_text("a,b\n" + "x" * 200_000 + ",c\n")
    with pytest.raises(DataError, match=r"big\.csv:2: malformed CSV: field larger than field limit"):
        read_csv_rows(tmp_path / "big.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"dir\.csv: is a folder, expected a file"):
        read_csv_rows(tmp_path / "dir.csv")
    with pytest.raises(DataError, match=r"none\.csv: no answers here"):
        read_csv_rows(tmp_path / "none.csv", not_found="no answers here")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfimage,key\n\nb,c\n")
    assert read_csv_rows(tmp_path / "bom.csv") == [(1, ["image", "key"]), (2, []), (3, ["b", "c"])]


def test_exclusive_write_never_replaces_a_file_created_meanwhile(tmp_path):
    out = tmp_path / "folds.csv"
    with pytest.raises(OutputExistsError, match="written meanwhile by another command"):
        with atomic_open(out, "w", exclusive=True) as fh:
            fh.write("mine\n")
            out.write_text("theirs\n")  # another process wins the race
    assert out.read_text() == "theirs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folds.csv"]  # no temporary file left
    atomic_write_text(tmp_path / "new.csv", "mine\n", exclusive=True)
    assert (tmp_path / "new.csv").read_text() == "mine\n"


@pytest.mark.parametrize("code, reason", [
    (errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"),
    (errno.ENOSPC, "no space left on device"),
])
def test_os_refusals_are_one_line_naming_the_output_and_keep_the_old_file(tmp_path, monkeypatch, code, reason):
    out = tmp_path / "out" / "report.csv"
    out.parent.mkdir()
    out.write_text("old\n")
    fs_fault(monkeypatch, out.parent, code)
    with pytest.raises(FashiontagError) as info:
        atomic_write_text(out, "new\n")
    monkeypatch.undo()
    assert str(info.value) == f"cannot write {out}: {reason}"
    assert out.read_text() == "old\n" and [p.name for p in out.parent.iterdir()] == ["report.csv"]


def test_a_file_where_a_folder_should_be(tmp_path):
    (tmp_path / "runs").write_text("a file\n")
    with pytest.raises(FashiontagError, match=r"cannot write .*runs/x/cv\.json: a part of the path is a file"):
        atomic_write_text(tmp_path / "runs" / "x" / "cv.json", "{}")
    with pytest.raises(FashiontagError, match=r"cannot create folder .*runs/x: a part of the path is a file"):
        make_dirs(tmp_path / "runs" / "x")
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(FashiontagError, match=r"out\.csv: is a folder"):
        atomic_write_text(tmp_path / "out.csv", "x")
    with pytest.raises(FashiontagError, match=r"out\.csv is a folder"):
        refuse_overwrite(tmp_path / "out.csv", force=True)
    (tmp_path / "done.csv").write_text("x")
    with pytest.raises(OutputExistsError, match=r"done\.csv already exists; pass --force"):
        refuse_overwrite(tmp_path / "done.csv")
    assert refuse_overwrite(tmp_path / "done.csv", force=True) == tmp_path / "done.csv"


def test_os_error_message_names_both_paths_of_a_rename():
    exc = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a/x", None, "/b/y")
    assert os_error_message(exc) == "/a/x: Invalid cross-device link (/b/y)"
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "/r/.x.tmp"), "/r/x", "write") \
        == "cannot write /r/x: permission denied"


@pytest.mark.parametrize("name, ok", [
    ("skirt_length_labels", True), ("a.b-c_1", True), ("..", False), (".", False), (".hidden", False),
    ("../x", False), ("/abs", False), ("a/b", False), ("a b", False), ("", False), ("k" * 200, False),
    ("caf\u00e9", False),
])
def test_names_that_become_folders(name, ok):
    assert (name_problem(name) is None) == ok
    if not ok:
        with pytest.raises(DataError, match=r"attributes\.csv:3: key"):
            check_name(name, "key", "attributes.csv", 3)


@pytest.mark.parametrize("rel, ok", [
    ("Images/k/a.jpg", True), ("a.jpg", True), ("Images/k/..a.jpg", True), ("/etc/passwd", False),
    ("../a.jpg", False), ("Images/../../a.jpg", False), ("Images\\..\\..\\a.jpg", False), ("C:\\a.jpg", False),
    ("", False), (".", False), ("a\nb.jpg", False),
])
def test_relative_paths_stay_inside_the_root(tmp_path, rel, ok):
    assert (relative_problem(rel) is None) == ok
    if ok:
        assert inside_root(tmp_path, rel) == tmp_path / rel
    else:
        with pytest.raises(DataError, match=r"label\.csv:9: image path"):
            inside_root(tmp_path, rel, "label.csv", 9)
