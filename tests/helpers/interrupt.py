"""Interrupting a training run at an exact point: Ctrl-C (KeyboardInterrupt) in-process, or a real SIGKILL.

`python -c "...; from helpers.interrupt import main; main()" ROOT TMP PHASE EPOCH BATCH SET...` trains fold
0 of every key of ROOT with helpers.training's tiny config plus the SET overrides, and SIGKILLs itself there.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from fastai.callback.core import Callback

from fashiontag.train.checkpoints import Checkpointer
from helpers.training import tiny_config


class KillAt(Callback):
    """Stop training at (phase index, epoch in the phase, training batch); batch None: at the end of that
    epoch, after its checkpoint was handed to the writer (order 80 > the Checkpointer's 62)."""

    order = 80

    def __init__(self, phase: int, epoch: int, batch: int | None = None, sigkill: bool = False):
        self.at, self.sigkill, self.phase = (phase, epoch, batch), sigkill, -1

    def before_fit(self):
        self.phase += 1  # one fit per phase; the LR finder's fit does not get this callback

    def after_batch(self):
        if self.training and (self.phase, self.epoch, self.iter) == self.at:
            self._stop()

    def after_epoch(self):
        if (self.phase, self.epoch, None) == self.at:
            self._stop()

    def _stop(self):
        if self.sigkill:
            # The epoch checkpoints are written by a background thread; on a fast CPU the kill point can come
            # before the last one reaches the disk. The tests kill at a position whose checkpoint they name, so
            # the kill waits for that write (what a kill lands on while a write is pending is not what they test).
            for cb in self.learn.cbs:
                if isinstance(cb, Checkpointer):
                    cb.writer.wait()
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt(f"simulated interrupt at phase {self.at[0]} epoch {self.at[1]} batch {self.at[2]}")


def main(argv: list[str] | None = None) -> None:
    from fashiontag.train.runner import train_run

    root, tmp, phase, epoch, batch, *sets = sys.argv[1:] if argv is None else argv
    cfg = tiny_config(Path(tmp), *sets)
    at = KillAt(int(phase), int(epoch), None if batch == "end" else int(batch), sigkill=True)
    train_run(Path(root), "all", "0", cfg, extra_cbs=(at,))
    raise SystemExit("training finished before it was killed")
