"""Set ultralytics up for unattended runs: never hang on the network, never pip-install, never phone home.

Ultralytics decides at import time whether it is online (two DNS look-ups that can take seconds each
when there is no network), downloads fonts and AMP-check weights on demand, auto-installs missing
packages and sends usage events when online. A pipeline must instead fail fast with a clear message,
so this module asks core/network.py (FASHIONTAG_OFFLINE=1, else one short probe of GitHub, where the
weights are release assets) *before* ultralytics is imported and sets its documented environment
switches (`YOLO_OFFLINE`, `YOLO_AUTOINSTALL`). Import ultralytics only through `import_ultralytics()`.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

from fashiontag.core.network import is_online

log = logging.getLogger(__name__)


def configure_ultralytics() -> bool:
    """Set ultralytics' environment switches before it is imported; returns whether we are online."""
    online = is_online()
    # A pipeline run must not pip-install into the user's environment behind their back: a missing
    # backend (ai-edge-litert, onnxruntime) becomes a clear error instead (see detect.load_detector).
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    if not online:
        # Makes ultralytics skip its own slow DNS probe, font/AMP downloads and the pip update check.
        os.environ["YOLO_OFFLINE"] = "1"
        _patch_loaded_modules()
    return online


def _patch_loaded_modules() -> None:
    """If ultralytics was imported before us, its import-time ONLINE flags are stale: fix them."""
    for name in ("ultralytics.utils", "ultralytics.utils.checks", "ultralytics.utils.events"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ONLINE", False):
            module.ONLINE = False


def import_ultralytics() -> ModuleType:
    """The `ultralytics` module, configured for unattended use (usage events off, online or not)."""
    configure_ultralytics()
    import ultralytics
    from ultralytics.utils import events as events_module

    # Usage analytics are opt-out in ultralytics' settings (`sync`); switch them off for this process
    # only, without rewriting the user's global settings file.
    events_module.events.enabled = False
    _undo_pil_patch()
    return ultralytics


def _undo_pil_patch() -> None:
    """Give PIL its own `Image.open` back.

    Importing ultralytics replaces `PIL.Image.open` process-wide with a wrapper that, on any
    unidentifiable file, pip-installs `pi-heif` (or raises ModuleNotFoundError when auto-install is
    off). That would turn our clear "not a readable image" DataError (data/images.py) into an install
    attempt or a traceback everywhere in the process. HEIC input is not supported by this project.
    """
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original
