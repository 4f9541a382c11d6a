"""What every drawing is made of: things standing on the ground, their sprite frames, colours.

A ``_Thing`` is drawn into its own supersampled RGBA sprite through a ``_Frame``, which maps
fractions of the object's box to sprite pixels (mirrored for objects facing the other way).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import ImageDraw


RGB = tuple[int, int, int]


@dataclass
class _Thing:
    """Something standing on the ground at depth z, drawn as a sprite."""

    z: float
    category: int  # 0: scenery (occludes, not annotated)
    box: tuple[float, float, float, float]  # object box in image coordinates
    draw: Callable[[ImageDraw.ImageDraw, "_Frame"], None]
    margin: tuple[float, float] = (0.0, 0.0)  # extra sprite room (x, bottom) as fractions of box w, h
    flip: bool = False
    poles: list = field(default_factory=list)  # [(x0, y0, x1, y1, rgb)] drawn before the sprite


class _Frame:
    """Maps fractions of an object box to sprite pixels, optionally mirrored left-right."""

    __slots__ = ("x0", "y0", "w", "h", "flip")

    def __init__(self, x0: float, y0: float, w: float, h: float, flip: bool):
        self.x0, self.y0, self.w, self.h, self.flip = x0, y0, w, h, flip

    def p(self, fx: float, fy: float) -> tuple[float, float]:
        return (self.x0 + (1.0 - fx if self.flip else fx) * self.w, self.y0 + fy * self.h)

    def pts(self, seq) -> list[tuple[float, float]]:
        return [self.p(fx, fy) for fx, fy in seq]

    def r(self, fx0: float, fy0: float, fx1: float, fy1: float) -> list[float]:
        (xa, ya), (xb, yb) = self.p(fx0, fy0), self.p(fx1, fy1)
        return [min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)]

    def circle(self, fx: float, fy: float, rh: float) -> list[float]:
        """Circle centred at (fx, fy) with radius ``rh`` box heights."""
        x, y = self.p(fx, fy)
        r = rh * self.h
        return [x - r, y - r, x + r, y + r]

    def lw(self, fh: float) -> int:
        return max(1, int(round(fh * self.h)))


@dataclass
class _Spot:
    """A free place found for one object, and how to draw it (see ``_place_object``)."""

    x: float  # lateral position (metres)
    z: float  # depth (metres)
    w_m: float  # box width and height (metres)
    h_m: float
    hw: float  # half width and half length of its footprint on the ground (metres)
    hl: float
    draw: Callable[[ImageDraw.ImageDraw, _Frame], None]
    margin: tuple[float, float] = (0.0, 0.0)  # as ``_Thing.margin``
    y0: float = 0.0  # box bottom above the ground (metres)
    poles: list = field(default_factory=list)  # as ``_Thing.poles``
    mirror: bool = True  # may be drawn mirrored left-right


def _rgba(c: Sequence[float], a: int = 255) -> tuple[int, int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]), a)


def _clip(c) -> RGB:
    return tuple(int(min(255, max(0, round(v)))) for v in c)


def _jitter(rng: np.random.Generator, c: Sequence[float], amount: float) -> RGB:
    return _clip(np.asarray(c, dtype=float) + rng.uniform(-amount, amount, 3))


def _shade(c: Sequence[float], k: float) -> RGB:
    return _clip(np.asarray(c, dtype=float) * k)


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    return _clip(np.asarray(a, dtype=float) * (1 - t) + np.asarray(b, dtype=float) * t)


TYRE = (22, 22, 24)

SHADOW = (8, 8, 12, 105)


def _draw_shadow(d: ImageDraw.ImageDraw, f: _Frame, x0: float, x1: float, y0: float, y1: float) -> None:
    d.ellipse(f.r(x0, y0, x1, y1), fill=SHADOW)
