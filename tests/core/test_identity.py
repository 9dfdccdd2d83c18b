"""The code identity a run records: git commit and dirty flag in a checkout, None elsewhere, versions."""

from __future__ import annotations

import platform
import re
import subprocess

import torch

from fashiontag.core import identity


def test_in_this_checkout_the_commit_and_versions_are_recorded():
    code = identity.code_identity()
    head = subprocess.run(["git", "-C", str(identity.SOURCE_ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", code["git_commit"]) and code["git_commit"] == head
    assert isinstance(code["git_dirty"], bool)
    assert code["python"] == platform.python_version()
    assert torch.__version__.startswith(code["versions"]["torch"])  # metadata may drop the local +tag
    assert set(code["versions"]) == {"torch", "timm", "fastai", "xgboost", "ultralytics"}
    code["versions"]["torch"] = "changed"  # each caller gets its own copy
    assert identity.code_identity()["versions"]["torch"] != "changed"


def test_outside_a_checkout_git_fields_are_none(tmp_path):
    assert identity.git_state(tmp_path) == (None, None)
    inner = tmp_path / "repo" / "inner"  # a folder inside some repository is not that repository's root
    inner.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    assert identity.git_state(inner) == (None, None)
    commit, dirty = identity.git_state(tmp_path / "repo")  # a root without commits: no HEAD yet
    assert commit is None


def test_no_git_never_fails(monkeypatch):
    def no_git(*_a, **_k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(identity.subprocess, "run", no_git)
    monkeypatch.setattr(identity, "_identity", identity._identity.__wrapped__)  # skip the per-process cache
    code = identity.code_identity()
    assert code["git_commit"] is None and code["git_dirty"] is None and code["versions"]["timm"]
    assert identity.package_version("no-such-package-here") is None
