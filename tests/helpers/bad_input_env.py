"""The bad-input corpus, part 2: configs, paths, file-system faults, runs, races and the commands that need
a model (train up to the first fold, predict, tag). Registered in bad_input_cases.CASES.
"""

from __future__ import annotations

import errno
import shutil
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from helpers.bad_input_cases import IMG, case
from helpers.bad_inputs import (
    KEY,
    Case,
    bomb_png,
    class_folders,
    custom_attributes,
    fake_run,
    jpeg,
    question_root,
    train_root,
    write_text,
)

TINY = ["--set", "train.stages=[32]", "--set", "train.num_workers=0"]


def _no_training(monkeypatch) -> None:
    """Config cases must fail before training starts: `fashiontag train` reaching the training recipe fails
    the case (a stand-in module, so a refused config never imports the training stack)."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started: the bad value was not refused")

    monkeypatch.setitem(sys.modules, "fashiontag.recipes.separate", types.SimpleNamespace(train=refuse))


def _no_fold_training(monkeypatch) -> None:
    """The real training runner up to the first fold; a fold that starts training fails the case."""
    import fashiontag.train.runner as runner

    def refuse(*args, **kwargs):
        raise AssertionError("training started: the bad input was not refused")

    monkeypatch.setattr(runner, "train_fold", refuse)


# ------------------------------------------------------------------ configs


for _name, _sets, _msg in [
    ("config_stages_not_numbers", ["train.stages=abc"], r"train\.stages"),
    ("config_batch_size_zero", ["train.batch_size=0"], r"train\.batch_size"),
    ("config_cuda_without_gpu", ["train.device=cuda"], r"cuda"),
    ("config_unknown_key", ["train.epochz=3"], r"train\.epochz.*unknown"),
    ("config_not_key_value", ["train.epochs"], r"'train\.epochs' must look like"),
]:
    def _build(tmp: Path, sets=_sets, msg=_msg) -> Case:
        if "cuda" in sets[0]:
            import torch

            if torch.cuda.is_available():
                pytest.skip("train.device=cuda is a valid setting on a machine with CUDA")
        train_root(tmp / "shop")
        argv = ["train", "--data", "shop"] + [a for s in sets for a in ("--set", s)]
        return Case(argv, error=msg, patch=_no_training, slow_import=True)
    _build.__name__ = _name
    case("configs")(_build)


@case("configs")
def config_invalid_yaml(tmp: Path) -> Case:
    train_root(tmp / "shop")
    write_text(tmp / "bad.yaml", "train:\n  epochs: [1, 2\n")
    return Case(["folds", "--data", "shop", "--config", "bad.yaml"], error=r"bad\.yaml: invalid YAML")


@case("configs")
def config_exp_escapes_runs(tmp: Path) -> Case:
    train_root(tmp / "shop")
    return Case(["train", "--data", "shop", "--exp", "../evil"], error=r"--exp '\.\./evil' may only use letters")


for _name, _args, _msg in [
    ("folds_k_zero", ["--k", "0"], r"number of folds must be an integer of at least 2, got 0"),
    ("folds_k_one", ["--k", "1"], r"at least 2, got 1"),
    ("folds_n_folds_zero", ["--set", "data.n_folds=0"], r"(n_folds|at least 2)"),
]:
    def _build(tmp: Path, args=_args, msg=_msg) -> Case:
        train_root(tmp / "shop")
        return Case(["folds", "--data", "shop", *args], error=msg)
    _build.__name__ = _name
    case("configs")(_build)


# ------------------------------------------------------------------ paths


@case("paths")
def check_data_given_a_file(tmp: Path) -> Case:
    write_text(tmp / "notes.txt", "hello\n")
    return Case(["check-data", "notes.txt"], error=r"notes\.txt: is a file; check-data takes dataset root folders")


@case("paths")
def check_data_test_given_a_file(tmp: Path) -> Case:
    train_root(tmp / "shop")
    question_root(tmp / "test")
    return Case(["check-data", "shop", "--test", "test/Tests/question.csv"], error=r"question\.csv: is a file")


@case("paths")
def import_destination_is_a_file(tmp: Path) -> Case:
    class_folders(tmp / "src")
    write_text(tmp / "dst", "a file\n")
    return Case(["import-folders", "src", "dst", "--attr", "garment_type"], error=r"dst is a file")


@case("paths")
def import_source_is_a_file(tmp: Path) -> Case:
    jpeg(tmp / "one.jpg")
    return Case(["import-folders", "one.jpg", "dst", "--attr", "garment_type"], error=r"one\.jpg: source is not a folder")


@case("paths")
def import_unsafe_key(tmp: Path) -> Case:
    class_folders(tmp / "src")
    return Case(["import-folders", "src", "dst", "--attr", "../../evil"], error=r"attribute key '\.\./\.\./evil' may only")


@case("paths")
def folds_out_dir_is_a_file(tmp: Path) -> Case:
    train_root(tmp / "shop")
    write_text(tmp / "folds", "a file\n")
    return Case(["folds", "--data", "shop", "--out-dir", "folds"],
                error=r"cannot write folds/shop\.csv: a part of the path is a file, not a folder")


@case("paths")
def ensemble_exp_escapes_runs(tmp: Path) -> Case:
    return Case(["ensemble", "--runs", "a", "b", "--exp", "/tmp/elsewhere"],
                error=r"--exp '/tmp/elsewhere' may only use letters")


@case("paths")
def tag_out_exists(tmp: Path) -> Case:
    jpeg(tmp / "photo.jpg")
    write_text(tmp / "tags.json", "[]\n")
    return Case(["tag", "photo.jpg", "--run", "nowhere", "--out", "tags.json"],
                error=r"tags\.json already exists; pass --force")


@case("paths")
def tag_out_is_a_folder(tmp: Path) -> Case:
    jpeg(tmp / "photo.jpg")
    (tmp / "tags").mkdir()
    return Case(["tag", "photo.jpg", "--run", "nowhere", "--out", "tags"], error=r"tags is a folder; give a file name")


# ------------------------------------------------------------------ submit: runs, paths, stale predictions


def _submit_setup(tmp: Path, predicted_for: str = "test") -> None:
    question_root(tmp / "test")
    fake_run(tmp / "runs", tmp / "test", predicted_for)


SUBMIT = ["submit", "--run", "cnn", "--test", "test"]


@case("runs")
def submit_ok(tmp: Path) -> Case:
    _submit_setup(tmp)
    return Case(SUBMIT, rc=0, creates=("submissions/cnn.csv",))


@case("runs")
def submit_stale_test_root(tmp: Path) -> Case:
    """predict failed on a new test root with the same image names: test.csv still answers the old one."""
    _submit_setup(tmp, predicted_for="old_test")
    return Case(SUBMIT, error=r"runs/cnn/skirt_length_labels/test\.csv predicts old_test, not test .*fashiontag "
                              r"predict --test test")


@case("runs")
def submit_out_exists(tmp: Path) -> Case:
    _submit_setup(tmp)
    write_text(tmp / "submissions" / "cnn.csv", "someone's submission\n")
    return Case(SUBMIT, error=r"submissions/cnn\.csv already exists; pass --force")


@case("runs")
def submit_out_is_a_folder(tmp: Path) -> Case:
    _submit_setup(tmp)
    write_text(tmp / "out.csv" / "keep", "x\n")
    return Case([*SUBMIT, "--out", "out.csv", "--force"], error=r"out\.csv is a folder")


@case("runs")
def submit_test_is_a_file(tmp: Path) -> Case:
    _submit_setup(tmp)
    return Case(["submit", "--run", "cnn", "--test", "test/Tests/question.csv"], error=r"question\.csv is a file")


@case("runs")
def submit_run_missing(tmp: Path) -> Case:
    _submit_setup(tmp)
    return Case(["submit", "--run", "nope", "--test", "test"], error=r"run not found: nope")


# ------------------------------------------------------------------ folds: races and data


def _folds_race(monkeypatch) -> None:
    """Another `fashiontag folds` (seed 7) writes the file just after this one's last existence check."""
    import fashiontag.data.folds as folds

    real, calls = folds.check_overwrite, []

    def check_then_lose_the_race(path, force=False):
        real(path, force)
        calls.append(path)
        if len(calls) == 2:  # the check right before the write
            write_text(Path("folds") / "shop.csv", "image,key,y,fold\nother,seed,7,0\n")

    monkeypatch.setattr(folds, "check_overwrite", check_then_lose_the_race)


@case("races")
def folds_written_meanwhile(tmp: Path) -> Case:
    train_root(tmp / "shop")

    def check(work: Path) -> None:
        assert (work / "folds" / "shop.csv").read_text() == "image,key,y,fold\nother,seed,7,0\n"

    return Case(["folds", "--data", "shop", "--k", "2"], patch=_folds_race, creates=("folds/shop.csv",), check=check,
                error=r"folds/shop\.csv was written by another command while these folds were computed")


@case("races")
def folds_ok(tmp: Path) -> Case:
    train_root(tmp / "shop")
    return Case(["folds", "--data", "shop", "--k", "2", "--seed", "3"], rc=0,
                out=r"folds/shop\.csv: 12 rows, 1 keys, 2 folds \(seed 3\)", creates=("folds/shop.csv",))


@case("races")
def folds_exist(tmp: Path) -> Case:
    train_root(tmp / "shop")
    write_text(tmp / "folds" / "shop.csv", "image,key,y,fold\n")
    return Case(["folds", "--data", "shop"], error=r"folds/shop\.csv already exists")


@case("races")
def folds_missing_image(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "shop" / IMG / "s2.jpg").unlink()
    return Case(["folds", "--data", "shop", "--k", "2"], error=rf"shop/{IMG}/s2\.jpg: image file is missing "
                                                              r"\(label\.csv line 3\)")


@case("races")
def folds_unsafe_attribute_key(tmp: Path) -> Case:
    train_root(tmp / "shop")
    custom_attributes(tmp / "shop", "/etc/evil,0,a\n")
    return Case(["folds", "--data", "shop"], error=r"attributes\.csv:4: attribute key '/etc/evil' may only use")


# ------------------------------------------------------------------ file-system faults


def _bad_image(tmp: Path) -> None:
    train_root(tmp / "shop")
    (tmp / "shop" / IMG / "s2.jpg").write_bytes(b"")


@case("faults")
def check_data_report_permission_denied(tmp: Path) -> Case:
    _bad_image(tmp)
    return Case(["check-data", "shop", "--skip-bad"], fault=("shop", errno.EACCES),
                error=r"cannot write shop/check_skips\.csv: permission denied")


@case("faults")
def check_data_report_read_only(tmp: Path) -> Case:
    _bad_image(tmp)
    return Case(["check-data", "shop", "--skip-bad"], fault=("shop", errno.EROFS),
                error=r"cannot write shop/check_skips\.csv: read-only file system")


@case("faults")
def check_data_report_disk_full(tmp: Path) -> Case:
    _bad_image(tmp)
    write_text(tmp / "shop" / "check_skips.csv", "file,line,reason\nold,1,kept\n")  # must survive
    return Case(["check-data", "shop", "--skip-bad"], fault=("shop", errno.ENOSPC),
                error=r"cannot write shop/check_skips\.csv: no space left on device")


@case("faults")
def folds_permission_denied(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "folds").mkdir()
    return Case(["folds", "--data", "shop", "--k", "2"], fault=("folds", errno.EACCES),
                error=r"cannot write folds/shop\.csv: permission denied")


@case("faults")
def folds_disk_full(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "folds").mkdir()
    return Case(["folds", "--data", "shop", "--k", "2"], fault=("folds", errno.ENOSPC),
                error=r"cannot write folds/shop\.csv: no space left on device")


@case("faults")
def submit_permission_denied(tmp: Path) -> Case:
    _submit_setup(tmp)
    (tmp / "submissions").mkdir()
    return Case(SUBMIT, fault=("submissions", errno.EACCES), error=r"submissions/.*cnn\.csv.*: permission denied")


@case("faults")
def submit_disk_full_keeps_old(tmp: Path) -> Case:
    _submit_setup(tmp)
    write_text(tmp / "submissions" / "cnn.csv", "the previous, good submission\n")
    return Case([*SUBMIT, "--force"], fault=("submissions", errno.ENOSPC),
                error=r"submissions/.*cnn\.csv.*: no space left on device")


@case("faults")
def import_permission_denied(tmp: Path) -> Case:
    class_folders(tmp / "src")
    (tmp / "dst").mkdir()
    return Case(["import-folders", "src", "dst", "--attr", "garment_type"], fault=("dst", errno.EACCES),
                error=r"dst/Images/garment_type_labels.*: permission denied")


@case("faults")
def import_read_only(tmp: Path) -> Case:
    class_folders(tmp / "src")
    (tmp / "dst").mkdir()
    return Case(["import-folders", "src", "dst", "--attr", "garment_type"], fault=("dst", errno.EROFS),
                error=r"dst/Images/garment_type_labels.*: read-only file system")


@case("faults")
def import_disk_full(tmp: Path) -> Case:
    class_folders(tmp / "src")
    (tmp / "dst" / "Images" / "garment_type_labels").mkdir(parents=True)
    return Case(["import-folders", "src", "dst", "--attr", "garment_type"], fault=("dst", errno.ENOSPC),
                error=r"cannot write dst/Images/garment_type_labels/coat_coat0\.jpg: no space left on device")


@case("faults")
def score_json_read_only(tmp: Path) -> Case:
    train_root(tmp / "shop")
    shutil.copy(tmp / "shop" / "Annotations" / "label.csv", tmp / "answers.csv")
    from helpers.bad_inputs import submission_for

    submission_for(tmp / "answers.csv", tmp / "sub.csv")
    (tmp / "out").mkdir()
    return Case(["score", "sub.csv", "--answers", "answers.csv", "--json", "out/s.json"], fault=("out", errno.EROFS),
                error=r"cannot write out/s\.json: read-only file system")


# ------------------------------------------------------------------ commands that need the training stack


def _record_folds(monkeypatch) -> None:
    import fashiontag.train.runner as runner

    def record(kd, fold, cfg, extra_cbs=()):
        (kd.key_dir / f"fold_{fold}.seen").write_text(f"{int(kd.cache.ok.sum())} of {len(kd.cache.ok)}\n")

    monkeypatch.setattr(runner, "train_fold", record)


@case("train")
def train_skip_bad_skips_a_missing_image(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "shop" / IMG / "s2.jpg").unlink()

    def check(work: Path) -> None:
        key_dir = work / "runs" / "base" / KEY
        report = pd.read_csv(key_dir / "skipped_images.csv")
        assert report[["line", "reason"]].values.tolist() == [[3, "image file is missing"]]
        assert (key_dir / "fold_0.seen").read_text() == "11 of 12\n"

    return Case(["train", "--data", "shop", "--skip-bad", "--set", "data.n_folds=2", *TINY], rc=0,
                patch=_record_folds, creates=("runs/*", "cache/*", "folds/shop.csv"), check=check, slow_import=True)


@case("train")
def train_unsafe_attribute_key(tmp: Path) -> Case:
    train_root(tmp / "shop")
    custom_attributes(tmp / "shop", "../../../escaped,0,a\n")
    write_text(tmp / "shop" / "Annotations" / "label.csv",
               (tmp / "shop" / "Annotations" / "label.csv").read_text() + "Images/x/a.jpg,../../../escaped,y\n")
    return Case(["train", "--data", "shop", *TINY], patch=_no_fold_training, slow_import=True,
                error=r"shop/Annotations/attributes\.csv:4: attribute key '\.\./\.\./\.\./escaped' may only use")


@case("train")
def train_runs_permission_denied(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "runs").mkdir()
    return Case(["train", "--data", "shop", "--set", "data.n_folds=2", *TINY], fault=("runs", errno.EACCES),
                patch=_no_fold_training, slow_import=True, creates=("folds/shop.csv",),
                error=r"runs/base.*permission denied")


def _model_run(tmp: Path) -> dict:
    from helpers.models import make_trained_run

    info = make_trained_run(tmp, n_train=6, n_folds=2, n_test=3, overrides=("tta.on_oof=false",))
    bomb_png(info["test_root"] / "Images" / info["key"] / "te001.png")
    return info


@case("models")
def predict_bomb_fallback(tmp: Path) -> Case:
    _model_run(tmp)
    return Case(["predict", "--exp", "runs/cnn", "--test", "test", "--fallback", "uniform", "--set", "tta.enabled=false"],
                rc=0, report=(f"runs/cnn/{KEY}/bad_test_images.csv", 1), creates=("runs/cnn/*", "cache/*"),
                slow_import=True)


@case("models")
def predict_bomb_strict(tmp: Path) -> Case:
    _model_run(tmp)
    return Case(["predict", "--exp", "runs/cnn", "--test", "test", "--set", "tta.enabled=false"],
                error=r"1 test image\(s\) cannot be read .*te001\.png: image too large", slow_import=True,
                creates=(f"runs/cnn/{KEY}/bad_test_images.csv", "cache/*"))


@case("models")
def tag_bomb_skipped(tmp: Path) -> Case:
    info = _model_run(tmp)
    shutil.copytree(info["test_root"] / "Images", tmp / "photos")
    return Case(["tag", "photos", "--run", "runs/cnn", "--skip-bad", "--format", "csv", "--out", "tags.csv"], rc=0,
                report=("tags.csv.skipped.csv", 1), creates=("tags.csv", "tags.csv.skipped.csv", "cache/*"),
                slow_import=True)
