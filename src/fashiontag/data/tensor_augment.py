"""Per-batch preprocessing and augmentation of uint8 image batches on their device, in plain tensor ops.

The in-memory path's counterpart of data/loaders.py's fastai batch transforms: one callable turns a uint8
(B, C, H, W) batch into the normalised float (B, 3, size, size) channels_last batch the model takes. Every
random draw is a device tensor (torch's generator: seeded runs repeat, TTA's `seeded` views too), so a batch
costs no host synchronisation and no per-transform dispatch:

- lighting (augment.contrast, augment.brightness, with augment.p_lighting) on the 0..255 pixels;
- one affine resample (F.affine_grid + F.grid_sample, border padding like Keras' default 'nearest') that
  composes a random-resized crop (augment.random_resized_crop), rotation (augment.rotate degrees), zoom
  (augment.zoom), shift (augment.shift, a fraction of the side), each image transformed with probability
  augment.p_affine, and a horizontal flip (augment.flip, p 0.5); it also resizes to `size` (e.g. 28 -> 64
  for an ImageNet backbone) in the same resample;
- normalising with the model's mean/std, which also broadcasts one gray channel to three;
- random erasing (augment.erase: the probability per image; a rectangle of 2-25% of the image, aspect
  0.3-3.3, set to 0, i.e. the dataset mean after normalising), after normalising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

ERASE_AREA = (0.02, 0.25)
ERASE_ASPECT = (0.3, 1 / 0.3)
RRC_ASPECT = (3 / 4, 4 / 3)


class BatchTransform:
    """uint8 (B, C, H, W) -> normalised float (B, 3, size, size) channels_last; augmented when `aug` is given."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], aug: dict | None,
                 device: torch.device):
        self.size, self.device = int(size), device
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        mean_t = torch.tensor([float(m) for m in mean], device=device).view(1, -1, 1, 1)
        std_t = torch.tensor([float(s) for s in std], device=device).view(1, -1, 1, 1)
        # (x / 255 - mean) / std as one multiply-add on the 0..255 pixels.
        self.scale, self.bias = 1.0 / (255.0 * std_t), -mean_t / std_t
        self.aug = dict(aug) if aug else None

    def to(self, device: torch.device) -> BatchTransform:
        return BatchTransform(self.size, self.mean, self.std, self.aug, device)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(self.device, non_blocking=True).float()
        if self.aug is None:
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=x.shape[-1] > self.size)
            return self._normalise(x)
        x = self._lighting(x)
        x = self._affine(x)
        x = self._normalise(x)
        return self._erase(x)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, x, self.scale).contiguous(memory_format=torch.channels_last)

    def _rand(self, n: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return torch.rand(n, device=self.device) * (hi - lo) + lo

    def _chosen(self, n: int, p: float) -> torch.Tensor:
        return (torch.rand(n, device=self.device) < p).float()

    def _lighting(self, x: torch.Tensor) -> torch.Tensor:
        contrast, brightness = float(self.aug["contrast"]), float(self.aug["brightness"])
        if not contrast and not brightness:
            return x
        n, p = x.shape[0], float(self.aug["p_lighting"])
        if contrast:  # log-uniform factor in [1 - c, 1 / (1 - c)] around mid grey
            lo = math.log(1.0 - contrast)
            factor = torch.exp(self._rand(n, lo, -lo) * self._chosen(n, p)).view(-1, 1, 1, 1)
            x = (x - 127.5) * factor + 127.5
        if brightness:
            x = x + (self._rand(n, -brightness, brightness) * 255.0 * self._chosen(n, p)).view(-1, 1, 1, 1)
        return x.clamp_(0.0, 255.0)

    def affine_matrices(self, n: int) -> torch.Tensor:
        """(n, 2, 3) affine_grid matrices: output coordinates -> input coordinates, in [-1, 1] units."""
        aug, dev = self.aug, self.device
        p = float(aug["p_affine"])
        chosen = self._chosen(n, p)
        angle = self._rand(n, -1.0, 1.0) * math.radians(float(aug["rotate"])) * chosen
        lo, hi = (float(z) for z in aug["zoom"])
        zoom = 1.0 + (self._rand(n, lo, hi) - 1.0) * chosen  # > 1 shows a smaller region, enlarged
        shift = float(aug["shift"]) * 2.0  # a fraction of the side -> [-1, 1] units
        tx, ty = (self._rand(n, -shift, shift) * chosen for _ in range(2))
        fx = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0) if aug["flip"] else torch.ones(n, device=dev)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        m = torch.zeros(n, 3, 3, device=dev)
        m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = cos * fx, -sin, tx
        m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = sin * fx, cos, ty
        m[:, 2, 2] = 1.0
        rrc = aug["random_resized_crop"]
        if rrc:  # a crop of area fraction U(lo, hi), aspect 3/4..4/3, anywhere inside the image
            area = self._rand(n, float(rrc[0]), float(rrc[1]))
            ratio = torch.exp(self._rand(n, math.log(RRC_ASPECT[0]), math.log(RRC_ASPECT[1])))
            w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
            crop = torch.zeros(n, 3, 3, device=dev)
            crop[:, 0, 0], crop[:, 1, 1], crop[:, 2, 2] = w, h, 1.0
            crop[:, 0, 2] = self._rand(n, -1.0, 1.0) * (1.0 - w)
            crop[:, 1, 2] = self._rand(n, -1.0, 1.0) * (1.0 - h)
            m = crop @ m
        return m[:, :2]

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.affine_matrices(x.shape[0])
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _erase(self, x: torch.Tensor) -> torch.Tensor:
        p = float(self.aug["erase"])
        if not p:
            return x
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        area = self._rand(n, *ERASE_AREA)
        ratio = torch.exp(self._rand(n, math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])))
        eh, ew = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
        y0, x0 = self._rand(n) * (1.0 - eh), self._rand(n) * (1.0 - ew)
        ys = (torch.arange(h, device=self.device) + 0.5) / h
        xs = (torch.arange(w, device=self.device) + 0.5) / w
        inside_y = (ys[None] >= y0[:, None]) & (ys[None] < (y0 + eh)[:, None])  # (n, h)
        inside_x = (xs[None] >= x0[:, None]) & (xs[None] < (x0 + ew)[:, None])  # (n, w)
        mask = inside_y[:, :, None] & inside_x[:, None, :] & (torch.rand(n, device=self.device) < p)[:, None, None]
        return x.masked_fill(mask[:, None], 0.0)
