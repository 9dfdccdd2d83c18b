"""Drawing primitives for generated clothing photos: a person figure, skirts, tops, hangers.

Geometry lives in *body units*: head top at v=0, floor at v=1, u=0 on the body's centre line. A `Frame`
(scale, rotation, translation) maps units to canvas pixels, so a whole scene rotates and scales exactly
and its extent can be planned before anything is drawn. A `Canvas` holds an RGBA foreground and a part
map (which part each pixel shows, later draws occluding earlier ones); boxes are read from the part map,
so they are tight around what was really drawn. Shapes are drawn without anti-aliasing: render at 2x and
average down (see `demo.render_sample`) for smooth edges.

    canvas = Canvas(256, 256)
    body = Body.random(rng).fit((40, 10, 200, 250))      # head top to floor inside this pixel box
    person_box = draw_person(canvas, body, rng)
    garment_box = draw_skirt(canvas, body, 0.4, rng)      # knee length
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

from fashiontag.synth.palette import Colour, Paint, make_paint, random_colour, shade, skin_colour

Point = tuple[float, float]
Box = tuple[int, int, int, int]  # canvas pixels, x0, y0 inclusive, x1, y1 exclusive

PART_PERSON, PART_GARMENT, PART_HANGER = 1, 2, 3
HANGER_COLOURS: list[Colour] = [(150, 100, 60), (30, 30, 30), (235, 235, 235), (170, 170, 180)]  # wood, black..

# Fixed body landmarks (v, body units); widths are per-body (see Body).
HEAD_CV, NECK_TOP, SHOULDER_V, WAIST_V, HIP_V, CROTCH_V, ANKLE_V = 0.068, 0.11, 0.175, 0.40, 0.50, 0.53, 0.955
ARM_LEN, HAND_R = 0.36, 0.024  # shoulder joint to wrist; hand radius


@dataclass(frozen=True)
class Frame:
    """Similarity transform: unit point `anchor` lands on canvas pixel `at`, scaled by `scale` px/unit."""

    scale: float = 1.0
    angle: float = 0.0  # degrees, clockwise on screen
    anchor: Point = (0.0, 0.0)
    at: Point = (0.0, 0.0)

    def apply(self, pts: Sequence[Point]) -> list[Point]:
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        out = []
        for u, v in pts:
            du, dv = u - self.anchor[0], v - self.anchor[1]
            out.append((self.at[0] + self.scale * (c * du - s * dv), self.at[1] + self.scale * (s * du + c * dv)))
        return out


@dataclass(frozen=True)
class Body:
    """Proportions of one figure (body units) and where it sits on the canvas (`frame`)."""

    shoulder: float = 0.105  # half widths
    waist: float = 0.082
    hips: float = 0.102
    head: float = 0.062  # head radius
    arm_angle: float = 15.0  # degrees outward from vertical
    frame: Frame = field(default_factory=Frame)

    @classmethod
    def random(cls, rng: np.random.Generator, arm_angle: tuple[float, float] = (8, 28)) -> Body:
        # The waist varies little: off the body it is the only scale a garment's length reads against.
        waist = rng.uniform(0.077, 0.086)
        return cls(rng.uniform(0.098, 0.112), waist, waist * rng.uniform(1.18, 1.3), rng.uniform(0.056, 0.066),
                   rng.uniform(*arm_angle))

    def placed(self, frame: Frame) -> Body:
        return replace(self, frame=frame)

    def fit(self, box: tuple[float, float, float, float], angle: float = 0.0) -> Body:
        """Placed so head top to floor spans the pixel box's height, centred in it (arms may overhang)."""
        x0, y0, x1, y1 = box
        return self.placed(Frame(y1 - y0, angle, (0.0, 0.5), ((x0 + x1) / 2, (y0 + y1) / 2)))

    def joint(self, side: int) -> Point:
        return side * (self.shoulder - 0.012), SHOULDER_V + 0.008

    def along_arm(self, side: int, g: float) -> Point:
        """The point a fraction `g` of the way from shoulder joint (0) to wrist (1)."""
        a = math.radians(self.arm_angle)
        ju, jv = self.joint(side)
        return ju + side * math.sin(a) * g * ARM_LEN, jv + math.cos(a) * g * ARM_LEN


def segment(p0: Point, p1: Point, w0: float, w1: float, mid: Sequence[tuple[Point, float]] = ()) -> list[Point]:
    """A band along the straight line p0 -> p1, w0 wide at p0 and w1 at p1 (and w at each (point, w) of
    `mid`, points on the line in order)."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    n = math.hypot(du, dv) or 1.0
    nu, nv = -dv / n, du / n
    spine = [(p0, w0), *mid, (p1, w1)]
    return ([(p[0] + nu * w / 2, p[1] + nv * w / 2) for p, w in spine]
            + [(p[0] - nu * w / 2, p[1] - nv * w / 2) for p, w in reversed(spine)])


def ellipse(c: Point, ru: float, rv: float, n: int = 20, t0: float = 0.0, t1: float = 2 * math.pi) -> list[Point]:
    """Polygon points on an ellipse (a polygon, so it rotates with the frame like everything else)."""
    return [(c[0] + ru * math.cos(t), c[1] + rv * math.sin(t)) for t in np.linspace(t0, t1, n)]


# ---- shapes in body units -------------------------------------------------------------------------


def person_shapes(body: Body) -> list[list[Point]]:
    """Legs, feet, torso, neck, arms, hands, head: polygons in drawing order."""
    shapes = []
    for side in (-1, 1):
        shapes.append(segment((side * 0.05, HIP_V - 0.02), (side * 0.058, ANKLE_V), 0.075, 0.032))
        shapes.append(ellipse((side * 0.072, 0.975), 0.036, 0.02))
    sh, w, h = body.shoulder, body.waist, body.hips
    shapes.append([(-sh, 0.168), (sh, 0.168), (w, WAIST_V), (h, HIP_V), (h * 0.9, CROTCH_V),
                   (-h * 0.9, CROTCH_V), (-h, HIP_V), (-w, WAIST_V)])
    shapes.append([(-0.024, NECK_TOP), (0.024, NECK_TOP), (0.024, 0.18), (-0.024, 0.18)])
    for side in (-1, 1):
        shapes.append(segment(body.along_arm(side, -0.03), body.along_arm(side, 1.0), 0.046, 0.032))
        shapes.append(ellipse(body.along_arm(side, 1.0 + HAND_R / ARM_LEN), HAND_R, HAND_R * 1.15))
    shapes.append(ellipse((0.0, HEAD_CV), body.head, body.head * 1.08))
    return shapes


def skirt_shape(body: Body, length: float, flare: float) -> list[Point]:
    """A-line skirt from the waist; the hem sits `length` of the way from hips (0) to floor (1)."""
    hem_v = HIP_V + length * (1.0 - HIP_V)
    top, hip = body.waist + 0.01, body.hips + 0.012
    # Side seams get a vertex at v=0.6 on long skirts: rasterising rounds vertices, so a crop that hides
    # the hem must see fixed vertices only, or the seam's pixels would depend on the length.
    right = [(hip + flare * (v - HIP_V), v) for v in (HIP_V, *([0.6] if hem_v > 0.6 else []), hem_v)]
    return ([(-top, WAIST_V - 0.005), (top, WAIST_V - 0.005), *right, (0.0, hem_v + 0.004)]
            + [(-u, v) for u, v in reversed(right)])


def top_shapes(body: Body, sleeve: float, hem_v: float = 0.5, neck_depth: float = 0.04) -> list[list[Point]]:
    """Top body plus sleeves; `sleeve` is the fraction of shoulder-to-wrist covered (0 = sleeveless)."""
    sh = body.shoulder + 0.01 if sleeve > 0 else body.shoulder - 0.035
    arm = body.shoulder - (0.005 if sleeve > 0 else 0.03)
    neck = [(-0.036, 0.155)] + ellipse((0.0, 0.155), 0.036, neck_depth, 9, math.pi, 0.0)[1:-1][::-1]
    neck += [(0.036, 0.155)]
    right = [(sh, 0.165), (arm, 0.26), (body.waist + 0.012, WAIST_V), (body.hips + 0.015, hem_v)]
    left = [(-u, v) for u, v in reversed(right)]
    shapes = [[(-sh, 0.165)] + neck + right + left[:-1]]
    if sleeve > 0:
        # Fixed taper near the shoulder: a sleeve's top part is the same whatever its length, so a crop
        # that hides the sleeve end leaves nothing that depends on it.
        def width(g: float) -> float:
            return 0.075 - 0.01 * (g + 0.06) / 0.26

        for side in (-1, 1):
            start, end = body.along_arm(side, -0.06), body.along_arm(side, sleeve)
            if sleeve <= 0.2:
                shapes.append(segment(start, end, 0.075, width(sleeve)))
            else:  # extra-long sleeves flare past the hand
                end_w = 0.058 if sleeve <= 1 else 0.07
                shapes.append(segment(start, end, 0.075, end_w, [(body.along_arm(side, 0.2), width(0.2))]))
    return shapes


def hanger_lines(body: Body, at: str) -> list[list[Point]]:
    """Polylines of a hanger: a bar at the waist (skirts, with clips) or shoulders (tops), and a hook."""
    if at == "waist":
        bar_v, half = WAIST_V - 0.012, body.waist + 0.045
        lines = [[(-half, bar_v), (half, bar_v)], [(-half, bar_v), (-half, bar_v + 0.03)],
                 [(half, bar_v), (half, bar_v + 0.03)]]
        stem = bar_v
    else:
        half = body.shoulder + 0.02
        lines = [[(-half, SHOULDER_V), (0.0, SHOULDER_V - 0.05), (half, SHOULDER_V)]]
        stem = SHOULDER_V - 0.05
    centre = (0.0, stem - 0.058)
    lines.append([(0.0, stem), (0.0, stem - 0.034)] + ellipse(centre, 0.024, 0.024, 14, math.pi / 2, -1.15 * math.pi))
    return lines


def extent(shapes: Sequence[Sequence[Point]], frame: Frame | None = None) -> tuple[float, float, float, float]:
    """Bounding box (u0, v0, u1, v1) of shape points, optionally after a frame's rotation/scale."""
    pts = np.array([p for s in shapes for p in (frame.apply(s) if frame else s)], dtype=np.float64)
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


# ---- canvas -----------------------------------------------------------------------------------------


class Canvas:
    """An RGBA foreground plus a part map; every draw writes the same pixels to both."""

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self.image = Image.new("RGBA", self.size, (0, 0, 0, 0))
        self.parts = Image.new("L", self.size, 0)

    def _mask(self, polygons: Sequence[Sequence[Point]], lines: Sequence[Sequence[Point]], width: int) -> Image.Image:
        img = Image.new("L", self.size, 0)
        draw = ImageDraw.Draw(img)
        for poly in polygons:
            draw.polygon([tuple(p) for p in poly], fill=255)
        for line in lines:
            draw.line([tuple(p) for p in line], fill=255, width=max(1, width), joint="curve")
        return img

    def mask(self, polygons: Sequence[Sequence[Point]], lines: Sequence[Sequence[Point]] = (),
             width: int = 1) -> np.ndarray:
        """Boolean mask of canvas-pixel polygons and polylines (`width` px wide), as `fill` would paint."""
        return np.asarray(self._mask(polygons, lines, width)) > 0

    def fill(self, polygons: Sequence[Sequence[Point]], paint: Paint, part: int,
             lines: Sequence[Sequence[Point]] = (), width: int = 1, within: int | np.ndarray | None = None) -> None:
        """Paint canvas-pixel polygons and polylines as `part`; `within`: clip to a part id or a bool mask."""
        mask = self._mask(polygons, lines, width)
        if within is not None:
            inside = (np.asarray(self.parts) == within) if isinstance(within, int) else within
            mask = Image.fromarray(np.where(inside, np.asarray(mask), 0).astype(np.uint8))
        box = mask.getbbox()
        if box is None:
            return
        mask = mask.crop(box)  # paste only the touched region: most shapes are small
        if isinstance(paint, Image.Image):
            self.image.paste(paint.crop(box).convert("RGBA"), box, mask)
        else:
            self.image.paste((*paint, 255), box, mask)
        self.parts.paste(part, box, mask)

    def bbox(self, *parts: int) -> Box | None:
        """Tight pixel box of the given parts as currently visible, or None if none is."""
        arr = np.asarray(self.parts)
        hit = np.logical_or.reduce([arr == p for p in parts]) if parts else np.zeros(arr.shape, bool)
        rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
        if rows.size == 0:
            return None
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# ---- drawing a scene part: each returns the tight canvas-pixel box of what it drew -----------------


def _px(body: Body, width_units: float) -> int:
    return max(1, round(width_units * body.frame.scale))


def draw_person(canvas: Canvas, body: Body, rng: np.random.Generator, skin: Colour | None = None,
                hair: Colour | None = None) -> Box | None:
    """A simple figure (legs, torso, arms, head, optional hair) in one skin tone at `body.frame`."""
    skin = skin if skin is not None else skin_colour(rng)
    canvas.fill([body.frame.apply(s) for s in person_shapes(body)], skin, PART_PERSON)
    if hair is not None or rng.random() < 0.7:
        hair = hair if hair is not None else shade(random_colour(rng, [skin], 60, val=(0.05, 0.5)), 1.0)
        cap = ellipse((0.0, HEAD_CV), body.head * 1.06, body.head * 1.12, 14, math.pi, 2 * math.pi)
        canvas.fill([body.frame.apply(cap)], hair, PART_PERSON)
    return canvas.bbox(PART_PERSON)


def draw_skirt(canvas: Canvas, body: Body, length: float, rng: np.random.Generator, colour: Colour | None = None,
               flare: float | None = None, pattern: bool = True) -> Box | None:
    """A skirt whose hem is `length` of the way from hips (0) to floor (1), with waistband and folds."""
    colour = colour if colour is not None else random_colour(rng)
    flare = flare if flare is not None else rng.uniform(0.08, 0.32)
    shape = skirt_shape(body, length, flare)
    canvas.fill([body.frame.apply(shape)], make_paint(rng, colour, canvas.size) if pattern else colour, PART_GARMENT)
    dark = shade(colour, 0.7 if sum(colour) > 200 else 1.8)
    top, hem_v = shape[1][0], HIP_V + length * (1.0 - HIP_V)
    band = [(-top - 0.01, WAIST_V - 0.01), (top + 0.01, WAIST_V - 0.01), (top + 0.01, WAIST_V + 0.018),
            (-top - 0.01, WAIST_V + 0.018)]
    # Folds have a fixed slope and a joint at v=0.6 (below any crop that hides a hem, above any hidden
    # hem), so what a crop shows of them does not depend on the length.
    folds = []
    for k in rng.uniform(-1, 1, 3):
        stops = [v for v in (0.6, hem_v - 0.012) if v <= hem_v - 0.012]
        folds.append([(k * top * 0.7 + k * 0.6 * (flare + 0.2) * (v - WAIST_V - 0.03), v)
                      for v in (WAIST_V + 0.03, *stops)])
    canvas.fill([body.frame.apply(band)], dark, PART_GARMENT, [body.frame.apply(f) for f in folds],
                _px(body, 0.005), within=PART_GARMENT)
    return canvas.bbox(PART_GARMENT)


def draw_top(canvas: Canvas, body: Body, sleeve: float, rng: np.random.Generator, colour: Colour | None = None,
             hem_v: float | None = None, neck_depth: float | None = None, pattern: bool = True) -> Box | None:
    """A top covering `sleeve` of the shoulder-to-wrist span (0 = sleeveless), with cuffs and hem band."""
    colour = colour if colour is not None else random_colour(rng)
    hem_v = hem_v if hem_v is not None else rng.uniform(0.47, 0.53)
    neck_depth = neck_depth if neck_depth is not None else rng.uniform(0.015, 0.06)
    shapes = top_shapes(body, sleeve, hem_v, neck_depth)
    paint = make_paint(rng, colour, canvas.size) if pattern else colour
    dark = shade(colour, 0.7 if sum(colour) > 200 else 1.8)
    # The hem band goes on before the sleeves so a sleeve hanging past the hem is not striped by it.
    canvas.fill([body.frame.apply(shapes[0])], paint, PART_GARMENT)
    hem = [(-0.2, hem_v - 0.015), (0.2, hem_v - 0.015), (0.2, hem_v + 0.01), (-0.2, hem_v + 0.01)]
    canvas.fill([body.frame.apply(hem)], dark, PART_GARMENT, within=PART_GARMENT)
    if len(shapes) > 1:
        canvas.fill([body.frame.apply(s) for s in shapes[1:]], paint, PART_GARMENT)
        if sleeve >= 0.4:  # cuffs only on the sleeves themselves, not on the body they overlap
            cuffs = [segment(body.along_arm(side, sleeve - 0.05), body.along_arm(side, sleeve + 0.05), 0.09, 0.09)
                     for side in (-1, 1)]
            on_sleeve = canvas.mask([body.frame.apply(s) for s in shapes[1:]])
            canvas.fill([body.frame.apply(c) for c in cuffs], dark, PART_GARMENT, within=on_sleeve)
    return canvas.bbox(PART_GARMENT)


def draw_hanger(canvas: Canvas, body: Body, rng: np.random.Generator, at: str = "waist",
                colour: Colour | None = None) -> Box | None:
    """A hook and bar hanger, at the waist (skirts, with clips) or the shoulders (tops)."""
    if colour is None:
        colour = HANGER_COLOURS[rng.integers(len(HANGER_COLOURS))]
    lines = [body.frame.apply(line) for line in hanger_lines(body, at)]
    canvas.fill([], colour, PART_HANGER, lines, _px(body, 0.012))
    return canvas.bbox(PART_HANGER)
