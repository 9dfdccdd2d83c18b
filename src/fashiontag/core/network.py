"""Is the network there? Decided up front, quickly, and once per host, so no step hangs on a missing network.

One switch declares the machine offline without probing: `FASHIONTAG_OFFLINE=1` (Hugging Face's own
`HF_HUB_OFFLINE=1` is honoured too, since a user who set it means the same). `YOLO_OFFLINE` is not read:
yolo/env.py sets it for ultralytics from this module's answer.
Otherwise one HTTP HEAD request per host answers, within PROBE_TIMEOUT_S; the answer is remembered for
the rest of the process. Pretrained timm weights (models/weights.py) and ultralytics release assets
(yolo/) both ask here.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from urllib.parse import urlparse

log = logging.getLogger(__name__)

OFFLINE_VARS = ("FASHIONTAG_OFFLINE", "HF_HUB_OFFLINE")
PROBE_TIMEOUT_S = 3.0
# Ultralytics weights are GitHub release assets, so GitHub is the host that matters for them.
GITHUB = "https://github.com"
_TRUE = {"1", "true", "yes", "on"}

_lock = threading.Lock()
_answers: dict[str, bool] = {}


def offline_reason() -> str | None:
    """Which environment variable declares us offline (e.g. 'FASHIONTAG_OFFLINE=1'), or None."""
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}=1"
    return None


def _base(url: str) -> str:
    parts = urlparse(url if "://" in url else f"https://{url}")
    return f"{parts.scheme}://{parts.netloc}"


def reachable(url: str, timeout: float | None = None) -> bool:
    """Whether `url`'s host answers an HTTP request within `timeout` seconds; probed once per host.

    The probe runs in a daemon thread joined with a timeout, because DNS look-ups ignore socket timeouts
    and could otherwise stall a run for minutes. Any HTTP answer, even an error status, counts as reachable;
    a server that accepts the connection but never answers does not.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    base = _base(url)
    with _lock:
        if base in _answers:
            return _answers[base]
        answer: list[bool] = []

        def probe() -> None:
            try:
                urllib.request.urlopen(urllib.request.Request(base, method="HEAD"), timeout=timeout).close()
                answer.append(True)
            except urllib.error.HTTPError:
                answer.append(True)  # the server answered, even if with an error status
            except Exception:
                answer.append(False)

        thread = threading.Thread(target=probe, daemon=True, name="fashiontag-net-probe")
        thread.start()
        thread.join(timeout)
        _answers[base] = bool(answer and answer[0])
        log.debug("network probe %s -> %s", base, "reachable" if _answers[base] else "unreachable")
        return _answers[base]


def is_online(url: str = GITHUB) -> bool:
    """False when an offline variable is set (no probe), else whether `url`'s host is reachable."""
    return offline_reason() is None and reachable(url)
