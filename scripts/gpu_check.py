"""The GPU acceptance check (`make gpu-check`): one command, one report, for the day a GPU is there.

On a CUDA machine (budget: < 8 min on one H100/H200):
  1. the GPU test tier: `pytest -m gpu tests/gpu` (bf16 + channels_last fold, SIGKILL + resume, feature
     cache, predict with TTA, stack features, tag, one-process NCCL DDP, no tensor crossing devices);
  2. scripts/bench.py on the real configs: resnext101_32x8d at 224 and 512 px (configs/fashionai_resnext101.yaml)
     and efficientnet_lite0 at 224 px (configs/clothing_lite0.yaml), 200 timed batches each, the columns the
     targets use (bare and project training, loader, bare inference, TTA);
  3. a short real-photo fine-tune: ../shared/data/clothing-small/train imported, configs/clothing_lite0.yaml,
     fold 0, 1 frozen + 2 unfrozen epochs (skipped, with a message, when ../shared is absent).
Then reports/gpu_check.json and reports/gpu_check.md (a Markdown table ready for docs/BENCHMARKS.md) with each
target's verdict: training >= 90% of the bare model's rate for resnext101_32x8d at 224 and 512 px, >= 60% for
efficientnet_lite0 at 224 px; TTA >= 80% of bare inference. Exit status 1 when a test fails or a target is
missed on a GPU.

Without CUDA it runs the reduced form (< 2 min on a CPU; tests/scripts/test_gpu_check.py runs it): the tier
is collected and skips, the bench times clothing_lite0's setup at 32 px for one batch, the fine-tune trains
one frozen epoch on 8 photos per class at 64 px. The report says which form ran.

    .venv/bin/python scripts/gpu_check.py                 # reports/gpu_check.{json,md}
    .venv/bin/python scripts/gpu_check.py --out-dir /tmp/check --skip-finetune
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

import torch  # noqa: E402

from fashiontag.core.files import atomic_write_json, atomic_write_text  # noqa: E402
from fashiontag.core.logs import setup_logging  # noqa: E402

log = logging.getLogger("gpu_check")
SHARED = REPO.parent / "shared" / "data" / "clothing-small"
# Trained img/s as a share of the bare model's (same device, batch, precision); TTA view-images/s as a share
# of bare inference.
TRAIN_TARGETS = {"resnext101_32x8d@224": 0.90, "resnext101_32x8d@512": 0.90, "efficientnet_lite0@224": 0.60}
TTA_TARGET = 0.80
GPU_SPECS = ["configs/fashionai_resnext101.yaml:224", "configs/fashionai_resnext101.yaml:512",
             "configs/clothing_lite0.yaml:224"]
CPU_SPECS = ["configs/clothing_lite0.yaml:32:4"]
COLUMNS = ["bare", "loader", "project", "bare_inf", "tta_inf"]


def run_tier(out_dir: Path, timeout: int) -> dict:
    """pytest -m gpu tests/gpu in a child process; counts from its JUnit XML."""
    junit = out_dir / "gpu_tests.xml"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/gpu", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                           "-rs", f"--junitxml={junit}"], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    res = {"seconds": round(time.perf_counter() - t0, 1), "exit": proc.returncode, "tail": proc.stdout[-2000:]}
    if junit.exists():
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        res.update(n, passed=n["tests"] - n["failures"] - n["errors"] - n["skipped"])
        res["cases"] = [{"name": c.get("name"), "seconds": float(c.get("time", 0)),
                         "outcome": "failed" if c.find("failure") is not None or c.find("error") is not None
                         else "skipped" if c.find("skipped") is not None else "passed"} for c in suite.iter("testcase")]
    return res


def run_bench(out_dir: Path, gpu: bool) -> dict:
    import bench

    argv = ["--models", *(GPU_SPECS if gpu else CPU_SPECS), "--columns", *COLUMNS, "--out",
            str(out_dir / "bench.json")]
    if not gpu:
        argv += ["--batches", "1", "--n-images", "8", "--workers", "0"]
    t0 = time.perf_counter()
    result = bench.run(bench.parse_args(argv))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for row in result["rows"]:
        key = row["model"].split(" ")[0]
        ratio = row.get("project", float("nan")) / row.get("bare", float("nan"))
        tta = row.get("tta_inf", float("nan")) / row.get("bare_inf", float("nan"))
        row["train_ratio"], row["tta_ratio"] = round(ratio, 3), round(tta, 3)
        target = TRAIN_TARGETS.get(key)
        row["train_target"], row["tta_target"] = target, TTA_TARGET
        row["train_ok"] = None if not gpu or target is None else bool(ratio >= target)
        row["tta_ok"] = None if not gpu else bool(tta >= TTA_TARGET)
    return result


def run_finetune(gpu: bool, shared: Path, tmp: Path) -> dict:
    """Fold 0 of configs/clothing_lite0.yaml on clothing-small's training photos (a few epochs)."""
    from fashiontag.core.config import load_config
    from fashiontag.data.images import is_image_file
    from fashiontag.data.import_folders import import_folders
    from fashiontag.train.runner import train_run

    photos = shared / "train"
    if not photos.is_dir():
        return {"skipped": f"{photos} is absent (the clothing-small photos live in ../shared)"}
    key = "garment_type_labels"
    per_class = None if gpu else 8
    src = tmp / "src"
    for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if is_image_file(p))[:per_class]
        (src / folder.name).mkdir(parents=True, exist_ok=True)
        for f in files:
            (src / folder.name / f.name).symlink_to(f.resolve())
    import_folders([src], tmp / "data", key)
    sets = [f"runs_dir={tmp / 'runs'}", f"cache.dir={tmp / 'cache'}", f"data.folds_dir={tmp / 'folds'}",
            "exp=finetune", "train.lr_find=false", "train.progress=log"]
    sets += (["train.frozen_epochs=1", "train.unfrozen_epochs=2"] if gpu else
             ["train.device=cpu", "train.stages=[64]", "cache.size=64", "train.frozen_epochs=1",
              "train.unfrozen_epochs=0", "train.batch_size=16", "train.num_workers=0"])
    cfg = load_config(str(REPO / "configs" / "clothing_lite0.yaml"), sets)
    t0 = time.perf_counter()
    train_run(tmp / "data", key, "0", cfg)
    import json

    done = json.loads((tmp / "runs" / "finetune" / key / "fold_0" / "done.json").read_text())
    return {"photos": sum(1 for _ in src.rglob("*") if _.is_file() or _.is_symlink()), "device": done["device"],
            "precision": done["precision"], "epochs": done["epochs"], "n_train": done["n_train"],
            "n_valid": done["n_valid"], "accuracy": done["metrics"]["accuracy"], "mAP": done["metrics"]["mAP"],
            "train_seconds": done["seconds"], "seconds": round(time.perf_counter() - t0, 1)}


def _pct(x) -> str:
    return "-" if x is None or x != x else f"{x:.0%}"


def _verdict(ok) -> str:
    return "n/a (CPU)" if ok is None else ("PASS" if ok else "MISS")


def _against(ratio, target, ok) -> str:
    """`93% (>= 90%: PASS)`; setups without a target (other sizes, the CPU form's) show the ratio alone."""
    return f"{_pct(ratio)} (>= {_pct(target)}: {_verdict(ok)})" if target is not None else f"{_pct(ratio)} (no target)"


def markdown(report: dict) -> str:
    """The report as Markdown: the bench table (with the targets' verdicts), the tier, the fine-tune."""
    lines = [f"### `make gpu-check` on {report['device']} ({report['date']}, {report['form']} form, "
             f"{report['seconds']:.0f} s)", ""]
    bench = report.get("bench")
    if bench:
        lines += ["| setup | batch | workers | train bare img/s | project img/s | project / bare (target) | "
                  "loader img/s | infer bare img/s | TTA views/s | TTA / bare (target) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in bench["rows"]:
            lines.append(
                f"| {r['model']} | {r['batch']} | {r['workers']} | {r.get('bare', float('nan')):.1f} | "
                f"{r.get('project', float('nan')):.1f} | {_against(r['train_ratio'], r['train_target'], r['train_ok'])} | "
                f"{r.get('loader', float('nan')):.1f} | {r.get('bare_inf', float('nan')):.1f} | "
                f"{r.get('tta_inf', float('nan')):.1f} | {_against(r['tta_ratio'], r['tta_target'], r['tta_ok'])} |")
        lines.append("")
    tier = report.get("tier")
    if tier:
        lines.append(f"GPU tests (`pytest -m gpu tests/gpu`): {tier.get('passed', 0)} passed, "
                     f"{tier.get('failures', 0) + tier.get('errors', 0)} failed, {tier.get('skipped', 0)} skipped "
                     f"in {tier['seconds']:.0f} s.")
    ft = report.get("finetune")
    if ft:
        lines.append("Fine-tune (clothing-small, configs/clothing_lite0.yaml, fold 0): " + (
            ft["skipped"] if "skipped" in ft else
            f"{ft['n_train']} training / {ft['n_valid']} validation photos, {ft['epochs']} epochs on {ft['device']} "
            f"({ft['precision']}) in {ft['train_seconds']:.0f} s, accuracy {ft['accuracy']:.3f}, mAP {ft['mAP']:.3f}."))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=str(REPO / "reports"), help="where gpu_check.json/.md go")
    ap.add_argument("--shared", default=str(SHARED), help="the clothing-small folder (train/<class>/*.jpg)")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--skip-finetune", action="store_true")
    args = ap.parse_args(argv)
    setup_logging()
    gpu = torch.cuda.is_available()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    device = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    if not gpu:
        log.warning("no CUDA device: running the reduced CPU form (the GPU targets are not measured)")
    report: dict = {"device": device, "form": "GPU" if gpu else "reduced CPU", "torch": torch.__version__,
                    "date": datetime.date.today().isoformat()}
    if not args.skip_tests:
        report["tier"] = run_tier(out_dir, timeout=330 if gpu else 120)
        log.info("GPU tests: %s", {k: report["tier"].get(k) for k in ("passed", "failures", "errors", "skipped")})
    if not args.skip_bench:
        report["bench"] = run_bench(out_dir, gpu)
    if not args.skip_finetune:
        tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        try:
            report["finetune"] = run_finetune(gpu, Path(args.shared), tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("fine-tune: %s", report["finetune"])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out_dir / "gpu_check.json", report)
    text = markdown(report)
    atomic_write_text(out_dir / "gpu_check.md", text)
    print(text)
    tier = report.get("tier", {})
    failed = tier.get("exit", 0) not in (0, 5) or tier.get("failures", 0) or tier.get("errors", 0)
    missed = [r["model"] for r in report.get("bench", {}).get("rows", []) if r["train_ok"] is False or
              r["tta_ok"] is False]
    if missed:
        log.warning("targets missed: %s", ", ".join(missed))
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
