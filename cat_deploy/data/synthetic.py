"""Synthetic autonomous-driving scenes with COCO boxes: the project's demo data.

A pinhole camera at height ~1.65 m looks down a straight road. A ground point at
lateral offset X and depth Z (metres) projects to ``u = u_vp + f X / Z``,
``v = v_horizon + f (h_cam - Y) / Z`` for a point Y metres above the ground, so
object sizes fall as 1/Z and every object stands on the ground row of its depth.
The focal length is ~0.58 x width as on KITTI, so 1242x375 and 640x192 show the
same scenes at two resolutions. Scene: sky gradient, distant tree line, road with
lanes (dashed/solid, sometimes a yellow centre line or a crosswalk), curbs,
sidewalks, building facades with windows or open ground, trees, street lamps.

Objects, ``CLASSES`` in order (COCO category ids 1..6): car, truck, pedestrian,
cyclist, traffic_light, traffic_sign. Vehicles are seen from behind (same-direction
lanes), the front (oncoming lanes) or the side (crossing traffic); pedestrians and
cyclists from the front/back or the side. Depths are drawn so that heights at
640x192 are log-uniform over ~8..150 px (so most are >= 10 px). Every object is drawn
as a supersampled RGBA sprite; sprites are pasted far to near, each also pasted into
an instance-id map, so near objects (and trees, poles) occlude far ones and each
object's visible pixels are known exactly.

Annotation policy:

- ``bbox`` is the tight box of the object's *visible* pixels (after occlusion and
  clipping to the image), ``[x, y, w, h]`` in pixels; ``area`` is ``w * h``.
- ``iscrowd = 1`` (COCO's ignore flag: evaluation neither rewards nor penalises
  detections on it; training should ignore anchors matched to it) when less than
  40 % of the object's pixels are visible (occluded or cut by the frame edge) or the
  visible box is under 8 px tall. A half-hidden pedestrian is still a pedestrian,
  but we do not want to demand or punish detecting it.
- Objects with fewer than 6 visible pixels, or a visible box under 2 px wide or
  tall, are not annotated at all.
- Traffic lights are annotated on the lamp housing and signs on the sign plate,
  not on their poles (as in BDD100K).

Photometric variety: lighting gain, contrast and colour temperature, soft shadows
under vehicles and people, optional Gaussian or motion blur, resolution loss,
sensor noise and JPEG degradation. Everything is drawn from one
``numpy.random.Generator``; ``generate_dataset`` seeds image ``i`` with
``(seed, i)`` so results do not depend on ``workers``.

CLI::

    python -m cat_deploy.data.synthetic --out data/synth/train --num 2000 --size 640x192 --seed 0
"""
from __future__ import annotations

import argparse
import io
import math
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from ..core.files import write_json

__all__ = ["CLASSES", "generate_dataset", "main", "parse_size", "render_scene"]

CLASSES = ("car", "truck", "pedestrian", "cyclist", "traffic_light", "traffic_sign")
CAR, TRUCK, PEDESTRIAN, CYCLIST, LIGHT, SIGN = range(1, 7)  # COCO category ids

CLASS_PROBS = (0.27, 0.13, 0.20, 0.14, 0.13, 0.13)
MIN_VISIBLE_FRACTION = 0.4
MIN_BOX_HEIGHT = 8
REF_FOCAL = 0.58 * 640  # depths are sampled so heights at this focal length span ~8..150 px

RGB = tuple[int, int, int]


# ----------------------------------------------------------------------------- camera & layout


@dataclass(frozen=True)
class _Camera:
    width: int
    height: int
    focal: float
    vp_u: float  # column of the vanishing point
    horizon: float  # row of the horizon
    cam_h: float  # metres above the ground

    def u(self, x, z):
        return self.vp_u + self.focal * np.asarray(x) / np.asarray(z)

    def v(self, y, z):
        return self.horizon + self.focal * (self.cam_h - np.asarray(y)) / np.asarray(z)

    def z_at_row(self, row: float) -> float:
        return self.focal * self.cam_h / max(row - self.horizon, 1e-3)

    def x_range(self, z: float) -> tuple[float, float]:
        """Lateral extent (metres) visible at depth z."""
        return (-self.vp_u * z / self.focal, (self.width - self.vp_u) * z / self.focal)


@dataclass(frozen=True)
class _Road:
    lane_w: float
    lanes: tuple[tuple[float, int], ...]  # (centre X, direction: +1 away from us, -1 towards us)
    left: float  # road edge X
    right: float
    walk_w: float  # sidewalk width
    center_line: Optional[float]  # X of the two-way centre line


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


# ----------------------------------------------------------------------------- colours


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


CAR_COLOURS = (
    (235, 235, 235), (190, 192, 196), (150, 150, 155), (40, 40, 44), (20, 22, 28), (170, 25, 30),
    (30, 60, 140), (20, 35, 80), (40, 90, 60), (200, 180, 140), (230, 190, 30), (110, 40, 30),
    (90, 110, 130), (215, 100, 30),
)
CARGO_COLOURS = ((240, 240, 238), (205, 205, 200), (150, 155, 160), (30, 70, 150), (180, 30, 30),
                 (40, 110, 60), (230, 180, 40), (90, 70, 50))
CLOTHES = ((25, 25, 30), (50, 55, 80), (30, 45, 90), (120, 30, 35), (200, 200, 200), (90, 90, 95),
           (140, 110, 70), (60, 90, 50), (210, 120, 40), (180, 60, 120), (40, 120, 160), (230, 215, 180))
SKIN = ((255, 220, 190), (230, 180, 140), (190, 140, 100), (140, 95, 60), (95, 60, 40))
HAIR = ((20, 15, 10), (60, 40, 25), (120, 85, 50), (200, 170, 110), (150, 150, 150))
GLASS = (45, 55, 70)
TYRE = (22, 22, 24)
SHADOW = (8, 8, 12, 105)


# ----------------------------------------------------------------------------- object drawings


def _draw_shadow(d: ImageDraw.ImageDraw, f: _Frame, x0: float, x1: float, y0: float, y1: float) -> None:
    d.ellipse(f.r(x0, y0, x1, y1), fill=SHADOW)


def _draw_car(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    c, roof, glass = p["colour"], _shade(p["colour"], 0.85), p["glass"]
    if p["view"] == "side":
        _draw_shadow(d, f, -0.03, 1.03, 0.86, 1.04)
        d.rounded_rectangle(f.r(0, 0.38, 1, 0.84), radius=0.14 * f.h, fill=_rgba(c))
        d.polygon(f.pts([(0.17, 0.42), (0.3, 0.02), (0.68, 0.02), (0.86, 0.42)]), fill=_rgba(roof))
        d.polygon(f.pts([(0.22, 0.4), (0.32, 0.08), (0.47, 0.08), (0.47, 0.4)]), fill=_rgba(glass))
        d.polygon(f.pts([(0.5, 0.4), (0.5, 0.08), (0.66, 0.08), (0.81, 0.4)]), fill=_rgba(glass))
        d.line(f.pts([(0.49, 0.42), (0.49, 0.78)]), fill=_rgba(_shade(c, 0.6)), width=f.lw(0.02))
        d.rectangle(f.r(0.965, 0.46, 1.0, 0.56), fill=_rgba((250, 240, 200)))
        d.rectangle(f.r(0.0, 0.46, 0.025, 0.58), fill=_rgba((200, 20, 20)))
        for fx in (0.2, 0.8):
            d.ellipse(f.circle(fx, 0.8, 0.2), fill=_rgba(TYRE))
            d.ellipse(f.circle(fx, 0.8, 0.09), fill=_rgba(p["rim"]))
        return
    front = p["view"] == "front"
    _draw_shadow(d, f, -0.1, 1.1, 0.88, 1.06)
    for fx0 in (0.06, 0.76):
        d.rectangle(f.r(fx0, 0.74, fx0 + 0.18, 1.0), fill=_rgba(TYRE))
    d.polygon(f.pts([(0.15, 0.02), (0.85, 0.02), (0.96, 0.42), (0.04, 0.42)]), fill=_rgba(roof))
    d.polygon(f.pts([(0.2, 0.07), (0.8, 0.07), (0.89, 0.37), (0.11, 0.37)]), fill=_rgba(glass))
    d.rounded_rectangle(f.r(0, 0.38, 1, 0.86), radius=0.08 * f.h, fill=_rgba(c))
    d.rectangle(f.r(0.02, 0.76, 0.98, 0.86), fill=_rgba(_shade(c, 0.55)))
    d.rectangle(f.r(0.39, 0.62, 0.61, 0.72), fill=_rgba((225, 225, 215)))
    if front:
        d.rectangle(f.r(0.3, 0.48, 0.7, 0.6), fill=_rgba((30, 30, 32)))
        for fx0 in (0.05, 0.78):
            d.rectangle(f.r(fx0, 0.46, fx0 + 0.17, 0.56), fill=_rgba((250, 245, 215)))
    else:
        for fx0 in (0.04, 0.8):
            d.rectangle(f.r(fx0, 0.45, fx0 + 0.16, 0.57), fill=_rgba(p["tail"]))


def _draw_truck(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    cargo, cab = p["cargo"], p["cab"]
    if p["view"] == "side":
        _draw_shadow(d, f, -0.02, 1.02, 0.88, 1.04)
        d.rectangle(f.r(0, 0, 0.76, 0.8), fill=_rgba(cargo))
        d.rectangle(f.r(0.02, 0.04, 0.74, 0.76), outline=_rgba(_shade(cargo, 0.8)), width=f.lw(0.015))
        d.polygon(f.pts([(0.78, 0.25), (0.95, 0.25), (1.0, 0.45), (1.0, 0.86), (0.78, 0.86)]), fill=_rgba(cab))
        d.polygon(f.pts([(0.82, 0.3), (0.94, 0.3), (0.975, 0.47), (0.82, 0.47)]), fill=_rgba(GLASS))
        d.rectangle(f.r(0, 0.8, 1.0, 0.87), fill=_rgba((35, 35, 38)))
        d.rectangle(f.r(0.985, 0.7, 1.0, 0.78), fill=_rgba((250, 240, 200)))
        for fx in (0.12, 0.26, 0.88):
            d.ellipse(f.circle(fx, 0.87, 0.13), fill=_rgba(TYRE))
            d.ellipse(f.circle(fx, 0.87, 0.055), fill=_rgba((150, 150, 150)))
        return
    _draw_shadow(d, f, -0.08, 1.08, 0.9, 1.05)
    for fx0 in (0.05, 0.69):
        d.rectangle(f.r(fx0, 0.8, fx0 + 0.26, 1.0), fill=_rgba(TYRE))
    if p["view"] == "front":
        d.rectangle(f.r(0, 0, 1, 0.34), fill=_rgba(cargo))
        d.rectangle(f.r(0.03, 0.3, 0.97, 0.88), fill=_rgba(cab))
        d.rectangle(f.r(0.09, 0.35, 0.91, 0.56), fill=_rgba(GLASS))
        d.rectangle(f.r(0.25, 0.62, 0.75, 0.8), fill=_rgba((40, 40, 42)))
        for k in range(3):
            y = 0.66 + 0.05 * k
            d.line(f.pts([(0.27, y), (0.73, y)]), fill=_rgba((120, 120, 120)), width=f.lw(0.01))
        for fx0 in (0.06, 0.82):
            d.rectangle(f.r(fx0, 0.68, fx0 + 0.12, 0.75), fill=_rgba((250, 245, 215)))
        d.rectangle(f.r(0.03, 0.84, 0.97, 0.9), fill=_rgba((60, 60, 62)))
    else:
        d.rectangle(f.r(0, 0, 1, 0.82), fill=_rgba(cargo))
        d.line(f.pts([(0.5, 0.02), (0.5, 0.8)]), fill=_rgba(_shade(cargo, 0.6)), width=f.lw(0.012))
        for fx in (0.44, 0.56):
            d.line(f.pts([(fx, 0.35), (fx, 0.55)]), fill=_rgba((90, 90, 90)), width=f.lw(0.012))
        d.rectangle(f.r(0.02, 0.82, 0.98, 0.88), fill=_rgba((35, 35, 38)))
        for fx0 in (0.03, 0.86):
            d.rectangle(f.r(fx0, 0.83, fx0 + 0.1, 0.87), fill=_rgba((210, 25, 25)))
        d.rectangle(f.r(0.42, 0.83, 0.58, 0.88), fill=_rgba((225, 225, 215)))


def _draw_person(d: ImageDraw.ImageDraw, f: _Frame, p: dict, shadow: bool = True) -> None:
    """A standing/walking person filling the box (the box is ~0.38 h wide)."""
    shirt, trousers, skin, hair = _rgba(p["shirt"]), _rgba(p["trousers"]), _rgba(p["skin"]), _rgba(p["hair"])
    k = f.h / f.w  # converts "box heights" to "box widths" for x fractions
    cx = 0.5
    if shadow:
        _draw_shadow(d, f, 0.05, 0.95, 0.95, 1.03)
    if p["view"] == "side":
        s = p["stride"]
        legs = [((cx - 0.02 * k, 0.5), (cx - s * k, 0.97)), ((cx + 0.02 * k, 0.5), (cx + s * k, 0.97))]
        for (x0, y0), (x1, y1) in legs:
            d.line(f.pts([(x0, y0), (x1, y1)]), fill=trousers, width=f.lw(0.075))
            d.ellipse(f.r(x1 - 0.035 * k, 0.95, x1 + 0.05 * k, 1.0), fill=_rgba((25, 25, 25)))
        d.polygon(f.pts([(cx - 0.07 * k, 0.17), (cx + 0.06 * k, 0.17), (cx + 0.06 * k, 0.53), (cx - 0.06 * k, 0.53)]),
                  fill=shirt)
        if p["bag"]:
            d.rectangle(f.r(cx - 0.13 * k, 0.2, cx - 0.06 * k, 0.42), fill=_rgba(p["bag_colour"]))
        d.line(f.pts([(cx, 0.19), (cx + 0.8 * s * k, 0.47)]), fill=shirt, width=f.lw(0.05))
        d.ellipse(f.circle(cx, 0.075, 0.068), fill=skin)
        d.pieslice(f.circle(cx - 0.01 * k, 0.07, 0.07), 150, 360 if f.flip else 320, fill=hair)
        return
    spread = p["stride"] * 0.5
    for side in (-1, 1):
        x_hip, x_foot = cx + side * 0.05 * k, cx + side * (0.05 + spread) * k
        d.line(f.pts([(x_hip, 0.5), (x_foot, 0.96)]), fill=trousers, width=f.lw(0.08))
        d.ellipse(f.r(x_foot - 0.045 * k, 0.94, x_foot + 0.045 * k, 1.0), fill=_rgba((25, 25, 25)))
        x_sh = cx + side * 0.115 * k
        hand = (cx + side * 0.15 * k, 0.49)
        d.line(f.pts([(x_sh, 0.18), hand]), fill=shirt, width=f.lw(0.055))
        d.ellipse(f.circle(hand[0], hand[1] + 0.01, 0.025), fill=skin)
    d.polygon(f.pts([(cx - 0.13 * k, 0.16), (cx + 0.13 * k, 0.16), (cx + 0.1 * k, 0.53), (cx - 0.1 * k, 0.53)]),
              fill=shirt)
    d.ellipse(f.circle(cx, 0.075, 0.068), fill=hair if p["back"] else skin)
    if not p["back"]:
        d.chord(f.circle(cx, 0.07, 0.07), 180, 360, fill=hair)


def _draw_cyclist(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    bike, tyre, shirt = _rgba(p["bike"]), _rgba(TYRE), _rgba(p["shirt"])
    trousers, skin = _rgba(p["trousers"]), _rgba(p["skin"])
    if p["view"] == "side":  # box ~1.0 h wide, facing right
        _draw_shadow(d, f, 0.0, 1.0, 0.93, 1.03)
        wheel_w = f.lw(0.035)
        for fx in (0.2, 0.8):
            d.ellipse(f.circle(fx, 0.8, 0.19), outline=tyre, width=wheel_w)
            d.ellipse(f.circle(fx, 0.8, 0.025), fill=bike)
        rear, front, crank, seat, head = (0.2, 0.8), (0.8, 0.8), (0.47, 0.8), (0.4, 0.5), (0.7, 0.47)
        d.line(f.pts([rear, crank, seat, rear]), fill=bike, width=f.lw(0.025))
        d.line(f.pts([seat, head, crank]), fill=bike, width=f.lw(0.025))
        d.line(f.pts([head, front]), fill=bike, width=f.lw(0.025))
        d.line(f.pts([head, (0.71, 0.4), (0.65, 0.39)]), fill=_rgba((30, 30, 30)), width=f.lw(0.02))
        phase = p["phase"]
        pedal_a = (0.47 + 0.09 * math.cos(phase), 0.8 + 0.09 * math.sin(phase))
        pedal_b = (0.47 - 0.09 * math.cos(phase), 0.8 - 0.09 * math.sin(phase))
        hip, shoulder = (0.41, 0.46), (0.58, 0.2)
        for pedal in (pedal_b, pedal_a):
            knee = (0.52 + 0.04 * math.sin(phase), 0.58)
            d.line(f.pts([hip, knee, pedal]), fill=trousers, width=f.lw(0.07), joint="curve")
        d.line(f.pts([hip, shoulder]), fill=shirt, width=f.lw(0.11))
        d.line(f.pts([shoulder, (0.66, 0.4)]), fill=shirt, width=f.lw(0.045))
        d.ellipse(f.circle(0.63, 0.1, 0.07), fill=skin)
        d.chord(f.circle(0.63, 0.09, 0.075), 180, 360, fill=_rgba(p["helmet"]))
        return
    # rear/front view: box ~0.42 h wide
    _draw_shadow(d, f, 0.15, 0.85, 0.94, 1.03)
    d.ellipse(f.r(0.44, 0.58, 0.56, 1.0), fill=tyre)
    d.rectangle(f.r(0.47, 0.5, 0.53, 0.8), fill=bike)
    d.line(f.pts([(0.06, 0.43), (0.94, 0.43)]), fill=_rgba((30, 30, 30)), width=f.lw(0.02))
    for side in (-1, 1):
        d.line(f.pts([(0.5 + side * 0.1, 0.45), (0.5 + side * 0.16, 0.66), (0.5 + side * 0.08, 0.84)]),
               fill=trousers, width=f.lw(0.07), joint="curve")
        d.line(f.pts([(0.5 + side * 0.28, 0.2), (0.5 + side * 0.42, 0.43)]), fill=shirt, width=f.lw(0.045))
    d.polygon(f.pts([(0.2, 0.17), (0.8, 0.17), (0.73, 0.5), (0.27, 0.5)]), fill=shirt)
    d.ellipse(f.circle(0.5, 0.09, 0.07), fill=skin)
    d.chord(f.circle(0.5, 0.08, 0.076), 180, 360, fill=_rgba(p["helmet"]))
    if p["back"]:
        d.rectangle(f.r(0.47, 0.56, 0.53, 0.6), fill=_rgba((220, 20, 20)))


def _draw_light(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    """Vertical three-lamp housing filling the box (~0.36 h wide)."""
    d.rounded_rectangle(f.r(0, 0, 1, 1), radius=0.2 * f.w, fill=_rgba(p["housing"]))
    lamps = ((0.17, (255, 45, 35)), (0.5, (255, 190, 0)), (0.83, (40, 255, 130)))
    for i, (fy, lit) in enumerate(lamps):
        colour = lit if i == p["lit"] else _mix(lit, (35, 35, 35), 0.8)
        d.ellipse(f.circle(0.5, fy, 0.125), fill=_rgba(colour))


def _draw_sign(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    shape, white, black = p["shape"], (245, 245, 240, 255), (20, 20, 20, 255)
    red, blue, yellow, green = (205, 25, 30, 255), (20, 70, 170, 255), (250, 200, 20, 255), (10, 110, 60, 255)
    if shape == "circle":
        d.ellipse(f.r(0, 0, 1, 1), fill=red)
        if p["variant"]:  # no entry
            d.rectangle(f.r(0.2, 0.42, 0.8, 0.58), fill=white)
        else:  # speed limit
            d.ellipse(f.r(0.16, 0.16, 0.84, 0.84), fill=white)
            d.rectangle(f.r(0.32, 0.34, 0.46, 0.66), fill=black)
            d.rectangle(f.r(0.54, 0.34, 0.68, 0.66), outline=black, width=f.lw(0.05))
    elif shape == "blue":
        d.ellipse(f.r(0, 0, 1, 1), fill=blue)
        d.polygon(f.pts([(0.5, 0.18), (0.75, 0.48), (0.58, 0.48), (0.58, 0.8), (0.42, 0.8), (0.42, 0.48),
                         (0.25, 0.48)]), fill=white)
    elif shape == "triangle":
        d.polygon(f.pts([(0.5, 0.02), (1.0, 0.9), (0.0, 0.9)]), fill=red)
        d.polygon(f.pts([(0.5, 0.22), (0.83, 0.8), (0.17, 0.8)]), fill=white)
        d.rectangle(f.r(0.46, 0.4, 0.54, 0.72), fill=black)
    elif shape == "yield":
        d.polygon(f.pts([(0.0, 0.1), (1.0, 0.1), (0.5, 0.98)]), fill=red)
        d.polygon(f.pts([(0.2, 0.22), (0.8, 0.22), (0.5, 0.75)]), fill=white)
    elif shape == "stop":
        a = [(0.5 + 0.5 * math.cos(math.pi / 8 + k * math.pi / 4), 0.5 + 0.5 * math.sin(math.pi / 8 + k * math.pi / 4))
             for k in range(8)]
        d.polygon(f.pts(a), fill=red)
        d.rectangle(f.r(0.18, 0.42, 0.82, 0.58), fill=white)
    elif shape == "diamond":
        d.polygon(f.pts([(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)]), fill=yellow)
        d.polygon(f.pts([(0.5, 0.08), (0.92, 0.5), (0.5, 0.92), (0.08, 0.5)]), outline=black, width=f.lw(0.04))
        d.rectangle(f.r(0.44, 0.3, 0.56, 0.7), fill=black)
    else:  # rectangular information sign
        colour = green if p["variant"] else blue
        d.rectangle(f.r(0, 0, 1, 1), fill=colour)
        d.rectangle(f.r(0.06, 0.08, 0.94, 0.92), outline=white, width=f.lw(0.04))
        for k in range(2):
            y = 0.28 + 0.3 * k
            d.rectangle(f.r(0.18, y, 0.82, y + 0.14), fill=white)


def _draw_tree(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    d.rectangle(f.r(0.45, 0.45, 0.55, 1.0), fill=_rgba(p["trunk"]))
    for (fx, fy, r), c in zip(p["blobs"], p["greens"]):
        d.ellipse(f.r(fx - r, fy - r * f.w / f.h, fx + r, fy + r * f.w / f.h), fill=_rgba(c))


def _draw_lamp_head(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    d.rectangle(f.r(0.0, 0.3, 1.0, 0.7), fill=_rgba(p["colour"]))
    d.rectangle(f.r(0.7, 0.7, 1.0, 1.0), fill=_rgba((235, 235, 220)))


# ----------------------------------------------------------------------------- object placement


def _sample_depth(rng: np.random.Generator, height_m: float) -> float:
    """Depth so that the height at REF_FOCAL is log-uniform over 8..150 px."""
    return REF_FOCAL * height_m / math.exp(rng.uniform(math.log(8.0), math.log(150.0)))


def _overlaps(footprints: list, x: float, z: float, hw: float, hl: float) -> bool:
    return any(abs(x - fx) < hw + fw and abs(z - fz) < hl + fl for fx, fz, fw, fl in footprints)


def _ground_box(cam: _Camera, x: float, z: float, w_m: float, h_m: float, y0_m: float = 0.0):
    """Image box of a w_m x h_m upright rectangle centred at lateral x, depth z, bottom y0_m above ground."""
    half = cam.focal * w_m / (2 * z)
    uc = float(cam.u(x, z))
    return (uc - half, float(cam.v(y0_m + h_m, z)), uc + half, float(cam.v(y0_m, z)))


def _person_params(rng: np.random.Generator) -> dict:
    return dict(
        shirt=_jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 20),
        trousers=_jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 15),
        skin=_jitter(rng, SKIN[rng.integers(len(SKIN))], 10),
        hair=HAIR[rng.integers(len(HAIR))],
        helmet=_jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 20),
        bag=rng.random() < 0.35,
        bag_colour=_jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 20),
        stride=float(rng.uniform(0.0, 0.13)),
        back=bool(rng.random() < 0.5),
    )


def _place_object(rng: np.random.Generator, cam: _Camera, road: _Road, cls: int, footprints: list) -> Optional[_Thing]:
    z_min_ground = 0.8 * cam.z_at_row(cam.height)  # nearer than this the feet leave the frame
    for _ in range(12):
        flip = bool(rng.random() < 0.5)
        poles: list = []
        y0 = 0.0
        if cls in (CAR, TRUCK):
            if cls == CAR:
                w_m, h_m, l_m = rng.uniform(1.6, 1.9), rng.uniform(1.4, 1.75), rng.uniform(3.8, 4.8)
            else:
                w_m, h_m, l_m = rng.uniform(2.3, 2.6), rng.uniform(2.8, 3.8), rng.uniform(6.0, 10.0)
            z = max(_sample_depth(rng, h_m), z_min_ground)
            r = rng.random()
            if r < 0.15 and z > 8:  # crossing traffic, seen from the side
                x, view, hw, hl = rng.uniform(road.left + 2, road.right - 2), "side", l_m / 2, w_m / 2
            else:
                if r < 0.35:  # parked along the kerb
                    side = rng.choice([road.left, road.right])
                    x = side + (1.2 if side == road.left else -1.2)
                    direction = 1 if road.center_line is None or x > road.center_line else -1
                else:
                    x, direction = road.lanes[rng.integers(len(road.lanes))]
                    x += rng.uniform(-0.4, 0.4)
                view, hw, hl = ("rear" if direction > 0 else "front"), w_m / 2, l_m / 2
                if abs(x) < 1.5 and z < 6:  # keep a gap ahead of our own bumper
                    continue
            if cls == CAR:
                params = dict(view=view, colour=_jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 18),
                              glass=_jitter(rng, GLASS, 15), rim=_jitter(rng, (150, 150, 155), 40),
                              tail=_jitter(rng, (200, 20, 25), 25))
                draw, margin = partial(_draw_car, p=params), (0.1, 0.06)
            else:
                params = dict(view=view, cargo=_jitter(rng, CARGO_COLOURS[rng.integers(len(CARGO_COLOURS))], 15),
                              cab=_jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 15))
                draw, margin = partial(_draw_truck, p=params), (0.08, 0.05)
        elif cls in (PEDESTRIAN, CYCLIST):
            params = _person_params(rng)
            if cls == PEDESTRIAN:
                h_m = rng.uniform(1.55, 1.9) if rng.random() > 0.12 else rng.uniform(1.0, 1.4)
                view = "side" if rng.random() < 0.5 else "front"
                w_m = 0.42 * h_m if view == "side" else 0.38 * h_m
                hw = hl = 0.35
                if rng.random() < 0.25:  # crossing the road
                    x = rng.uniform(road.left + 0.5, road.right - 0.5)
                else:
                    x = _sidewalk_x(rng, road)
                draw, margin = partial(_draw_person, p=dict(params, view=view)), (0.05, 0.04)
            else:
                h_m = rng.uniform(1.6, 1.85)
                view = "side" if rng.random() < 0.35 else "rear"
                w_m, hw, hl = (1.0 * h_m, 0.9, 0.35) if view == "side" else (0.42 * h_m, 0.35, 0.9)
                if view == "side":
                    x = rng.uniform(road.left + 1, road.right - 1)
                else:
                    side = rng.choice([road.left, road.right])
                    x = side + (1 if side == road.left else -1) * rng.uniform(0.6, 1.6)
                params.update(view=view, bike=_jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 30),
                              phase=float(rng.uniform(0, 2 * math.pi)))
                draw, margin = partial(_draw_cyclist, p=params), (0.05, 0.04)
            z = max(_sample_depth(rng, h_m), z_min_ground)
        else:  # traffic light or sign on a pole at the kerb, or on an arm over the road
            side = road.left if rng.random() < 0.5 else road.right
            out = -1 if side == road.left else 1
            pole_x = side + out * rng.uniform(0.3, 1.2)
            if cls == LIGHT:
                h_m = rng.uniform(0.8, 1.1)
                w_m = 0.36 * h_m
                y0 = rng.uniform(2.2, 3.2) if rng.random() < 0.5 else rng.uniform(4.5, 5.5)
                params = dict(housing=_jitter(rng, (35, 35, 38) if rng.random() < 0.8 else (200, 170, 40), 10),
                              lit=int(rng.integers(3)))
                draw = partial(_draw_light, p=params)
            else:
                h_m = rng.uniform(0.55, 0.9)
                shape = ("circle", "blue", "triangle", "yield", "stop", "diamond", "rect")[rng.integers(7)]
                w_m = h_m * (rng.uniform(1.2, 1.8) if shape == "rect" else 1.0)
                y0 = rng.uniform(1.8, 2.8)
                params = dict(shape=shape, variant=bool(rng.random() < 0.5))
                draw = partial(_draw_sign, p=params)
            z = _sample_depth(rng, h_m)
            z = max(z, z_min_ground, cam.focal * (y0 + h_m - cam.cam_h) / max(cam.horizon, 1.0) + 0.5)
            x = pole_x
            arm = cls == LIGHT and y0 > 4.4 and rng.random() < 0.6
            if arm:
                x = pole_x - out * rng.uniform(2.0, 5.0)
            pole_w = cam.focal * 0.12 / z
            pu = float(cam.u(pole_x, z))
            grey = _jitter(rng, (95, 98, 100), 20)
            pole_top = y0 + h_m + 0.3 if arm else y0 + 0.5 * h_m
            poles.append((pu - pole_w / 2, float(cam.v(pole_top, z)),
                          pu + pole_w / 2, float(cam.v(0.0, z)), grey))
            if arm:
                ua, ya = float(cam.u(x, z)), float(cam.v(y0 + h_m + 0.15, z))
                poles.append((min(ua, pu), ya - pole_w / 3, max(ua, pu), ya + pole_w / 3, grey))
            hw = hl = 0.15
            margin = (0.0, 0.0)
            flip = False
        lo, hi = cam.x_range(z)
        if not lo - 0.5 < x < hi + 0.5 or _overlaps(footprints, x, z, hw, hl):
            continue
        footprints.append((x, z, hw, hl))
        return _Thing(z, cls, _ground_box(cam, x, z, w_m, h_m, y0), draw, margin, flip, poles)
    return None


def _sidewalk_x(rng: np.random.Generator, road: _Road) -> float:
    if rng.random() < 0.5:
        return road.left - rng.uniform(0.3, road.walk_w - 0.2)
    return road.right + rng.uniform(0.3, road.walk_w - 0.2)


def _place_scenery(rng: np.random.Generator, cam: _Camera, road: _Road, footprints: list) -> Optional[_Thing]:
    for _ in range(6):
        z = math.exp(rng.uniform(math.log(4.0), math.log(90.0)))
        side = road.left if rng.random() < 0.5 else road.right
        out = -1 if side == road.left else 1
        if rng.random() < 0.6:  # tree
            x = side + out * rng.uniform(road.walk_w * 0.6, road.walk_w + 2.5)
            h_m = rng.uniform(4.0, 9.0)
            w_m = h_m * rng.uniform(0.45, 0.7)
            greens = [_jitter(rng, (55, 95, 45), 25) for _ in range(3)]
            blobs = [(0.5, 0.3, 0.42), (0.3 + rng.uniform(-0.05, 0.05), 0.42, 0.3), (0.7, 0.4, 0.3)]
            params = dict(trunk=_jitter(rng, (85, 62, 45), 15), greens=greens, blobs=blobs)
            draw, poles, y0 = partial(_draw_tree, p=params), [], 0.0
        else:  # street lamp: pole + head
            x = side + out * rng.uniform(0.3, 0.8)
            h_m, w_m, y0 = 0.35, 1.4, rng.uniform(6.0, 8.0)
            pole_w = cam.focal * 0.14 / z
            pu = float(cam.u(x, z))
            poles = [(pu - pole_w / 2, float(cam.v(y0 + h_m, z)), pu + pole_w / 2, float(cam.v(0.0, z)),
                      _jitter(rng, (100, 100, 104), 20))]
            x -= out * 0.6
            draw = partial(_draw_lamp_head, p=dict(colour=_jitter(rng, (80, 82, 86), 15)))
        lo, hi = cam.x_range(z)
        if not lo - 2 < x < hi + 2 or _overlaps(footprints, x, z, 0.3, 0.3):
            continue
        footprints.append((x, z, 0.3, 0.3))
        flip = out > 0  # lamp heads reach out over the road
        return _Thing(z, 0, _ground_box(cam, x, z, w_m, h_m, y0), draw, (0.0, 0.0), flip, poles)
    return None


# ----------------------------------------------------------------------------- background


@lru_cache(maxsize=8)
def _rows(height: int) -> np.ndarray:
    return np.arange(height, dtype=np.float32)[:, None]


def _background(rng: np.random.Generator, cam: _Camera) -> Image.Image:
    """Sky gradient above the horizon and bare ground below it."""
    h, w = cam.height, cam.width
    overcast = rng.random() < 0.35
    if overcast:
        top = _jitter(rng, (175, 180, 188), 20)
        bottom = _jitter(rng, (215, 215, 218), 15)
    else:
        top = _jitter(rng, (70, 130, 210), 30)
        bottom = _jitter(rng, (200, 220, 240), 20)
    ground = _jitter(rng, (105, 120, 70) if rng.random() < 0.6 else (135, 120, 95), 20)
    hz = cam.horizon
    t = np.clip(_rows(h) / max(hz, 1.0), 0, 1)[..., None]  # (h, 1, 1)
    sky = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    g = np.clip((_rows(h) - hz) / max(h - hz, 1.0), 0, 1)[..., None]
    gnd = np.asarray(ground, np.float32) * (1.0 - 0.25 * g)
    col = np.where((_rows(h) < hz)[..., None], sky, gnd)  # (h, 1, 3)
    arr = np.broadcast_to(col, (h, w, 3)).astype(np.uint8)
    return Image.fromarray(arr)


def _quad(cam: _Camera, x0: float, x1: float, z0: float, z1: float) -> list[tuple[float, float]]:
    """Ground-plane rectangle [x0, x1] x [z0, z1] as an image polygon."""
    xs, zs = np.array([x0, x1, x1, x0]), np.array([z0, z0, z1, z1])
    return list(zip(cam.u(xs, zs).tolist(), cam.v(0.0, zs).tolist()))


def _draw_road(rng: np.random.Generator, d: ImageDraw.ImageDraw, cam: _Camera, road: _Road) -> None:
    z_near, z_far = 0.5, 2000.0
    z_vis = cam.z_at_row(cam.height + 2)
    walk = _jitter(rng, (150, 148, 142), 20)
    curb = _shade(walk, 1.15)
    asphalt = _jitter(rng, (85, 85, 88), 18)
    for edge, out in ((road.left, -1), (road.right, 1)):
        xa, xb = sorted((edge, edge + out * road.walk_w))
        d.polygon(_quad(cam, xa, xb, z_near, z_far), fill=walk)
        xa, xb = sorted((edge, edge + out * 0.25))
        d.polygon(_quad(cam, xa, xb, z_near, z_far), fill=curb)
    d.polygon(_quad(cam, road.left, road.right, z_near, z_far), fill=asphalt)
    for _ in range(rng.integers(0, 5)):  # patches of repaired asphalt
        x = rng.uniform(road.left, road.right - 1)
        z = z_vis * math.exp(rng.uniform(0, math.log(15)))
        patch = _quad(cam, x, x + rng.uniform(0.5, 3), z, z + rng.uniform(1, 8))
        d.polygon(patch, fill=_shade(asphalt, rng.uniform(0.8, 1.1)))

    paint = _jitter(rng, (228, 228, 222), 12)
    lw = rng.uniform(0.1, 0.16)
    for x in (road.left + 0.3, road.right - 0.3):
        d.polygon(_quad(cam, x - lw / 2, x + lw / 2, z_near, z_far), fill=paint)
    dash, period = rng.uniform(2.5, 4.0), rng.uniform(8.0, 12.0)
    phase = rng.uniform(0, period)
    starts = np.arange(z_vis - phase, 120.0, period)
    for k in range(len(road.lanes) - 1):
        x = (road.lanes[k][0] + road.lanes[k + 1][0]) / 2
        if road.center_line is not None and abs(x - road.center_line) < 0.1:
            colour = (225, 180, 30) if rng.random() < 0.4 else paint
            for off in ((-0.12, 0.12) if rng.random() < 0.5 else (0.0,)):
                d.polygon(_quad(cam, x + off - lw / 2, x + off + lw / 2, z_near, z_far), fill=colour)
            continue
        for z0 in starts[starts + dash > 0.6]:
            d.polygon(_quad(cam, x - lw / 2, x + lw / 2, max(z0, 0.5), z0 + dash), fill=paint)
    if rng.random() < 0.2:  # zebra crossing
        z0 = rng.uniform(8, 30)
        for x in np.arange(road.left + 0.5, road.right - 0.5, 1.0):
            d.polygon(_quad(cam, x, x + 0.5, z0, z0 + 3.0), fill=paint)


def _draw_far(rng: np.random.Generator, d: ImageDraw.ImageDraw, cam: _Camera) -> None:
    """Distant tree line / hills on the horizon."""
    n = 24
    xs = np.linspace(-5, cam.width + 5, n)
    hs = rng.uniform(0.01, 0.07, n) * cam.height * rng.uniform(0.5, 1.5)
    colour = _jitter(rng, (95, 115, 100), 15)
    pts = [(float(xs[0]), cam.horizon + 1)] + [(float(x), cam.horizon - float(h)) for x, h in zip(xs, hs)]
    d.polygon(pts + [(float(xs[-1]), cam.horizon + 1)], fill=colour)


def _draw_buildings(rng: np.random.Generator, d: ImageDraw.ImageDraw, cam: _Camera, road: _Road) -> None:
    """Facades parallel to the road, with window grids, drawn far to near."""
    facades = []
    for edge, out in ((road.left, -1), (road.right, 1)):
        if rng.random() < 0.3:
            continue
        z = rng.uniform(2.0, 10.0)
        while z < 160:
            length = rng.uniform(8, 30)
            if rng.random() > 0.15:
                x = edge + out * (road.walk_w + rng.uniform(0.0, 3.0))
                facades.append((z, z + length, x, out, rng.uniform(5, 22)))
            z += length + rng.uniform(0, 4)
    wall_colours = ((190, 170, 150), (160, 90, 70), (210, 205, 195), (130, 130, 135), (225, 210, 170), (120, 105, 95))
    for z0, z1, x, out, height in sorted(facades, key=lambda f: -f[0]):
        wall = _jitter(rng, wall_colours[rng.integers(len(wall_colours))], 20)
        zs = np.array([z0, z1, z1, z0])
        ys = np.array([0.0, 0.0, height, height])
        d.polygon(list(zip(cam.u(x, zs).tolist(), cam.v(ys, zs).tolist())), fill=wall)
        glass = _jitter(rng, (70, 85, 105), 25)
        zc = np.arange(z0 + 1.0, z1 - 1.5, rng.uniform(2.5, 4.0))
        yc = np.arange(rng.uniform(1.0, 3.5), height - 1.5, 3.0)
        if len(zc) == 0 or len(yc) == 0 or cam.focal * 1.2 / z1 < 1.5:
            continue
        zz, yy = np.meshgrid(zc, yc)
        zz, yy = zz.ravel(), yy.ravel()
        wz, wy = rng.uniform(0.9, 1.5), rng.uniform(1.2, 1.7)
        u0, u1 = cam.u(x, zz), cam.u(x, zz + wz)
        keep = (np.abs(u1 - u0) >= 1.0) & (np.maximum(u0, u1) > 0) & (np.minimum(u0, u1) < cam.width)
        zz, yy, u0, u1 = zz[keep], yy[keep], u0[keep], u1[keep]
        va0, va1 = cam.v(yy, zz), cam.v(yy + wy, zz)
        vb0, vb1 = cam.v(yy, zz + wz), cam.v(yy + wy, zz + wz)
        for k in range(len(zz)):
            d.polygon([(u0[k], va0[k]), (u0[k], va1[k]), (u1[k], vb1[k]), (u1[k], vb0[k])], fill=glass)


# ----------------------------------------------------------------------------- compositing


_MASK_LUT = [0] * 128 + [255] * 128


def _render_sprite(thing: _Thing, ox: int, oy: int, size: tuple[int, int]) -> Image.Image:
    """Draw ``thing`` into an RGBA sprite whose top-left is image pixel (ox, oy)."""
    bx0, by0, bx1, by1 = thing.box
    bh = by1 - by0
    ss = 4 if bh < 24 else 3 if bh < 60 else 2 if bh < 200 else 1
    sprite = Image.new("RGBA", (size[0] * ss, size[1] * ss), (0, 0, 0, 0))
    frame = _Frame((bx0 - ox) * ss, (by0 - oy) * ss, (bx1 - bx0) * ss, bh * ss, thing.flip)
    thing.draw(ImageDraw.Draw(sprite), frame)
    return sprite.reduce(ss) if ss > 1 else sprite


def _composite(scene: Image.Image, ids: Image.Image, thing: _Thing, inst: int):
    """Paste one thing (poles, then its sprite) into the scene and the instance map.

    Returns (ox, oy, sprite_w, sprite_h, total_pixels) or None when it is off-screen.
    """
    w, h = scene.size
    if thing.poles:
        ds, di = ImageDraw.Draw(scene), ImageDraw.Draw(ids)
        for x0, y0, x1, y1, colour in thing.poles:
            box = [x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)]
            ds.rectangle(box, fill=colour)
            di.rectangle(box, fill=0)
    bx0, by0, bx1, by1 = thing.box
    mx, mb = thing.margin[0] * (bx1 - bx0), thing.margin[1] * (by1 - by0)
    ox, oy = math.floor(bx0 - mx), math.floor(by0)
    sw, sh = math.ceil(bx1 + mx) - ox + 1, math.ceil(by1 + mb) - oy + 1
    if ox >= w or oy >= h or ox + sw <= 0 or oy + sh <= 0 or sw * sh > 16 * w * h:
        return None
    sprite = _render_sprite(thing, ox, oy, (sw, sh))
    mask = sprite.getchannel("A").point(_MASK_LUT)
    scene.paste(sprite, (ox, oy), sprite)
    ids.paste(inst, (ox, oy, ox + sw, oy + sh), mask)
    return ox, oy, sw, sh, int(np.count_nonzero(np.asarray(mask)))


def _photometric(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    w, h = img.size
    if rng.random() < 0.15:  # resolution loss
        k = rng.uniform(0.45, 0.8)
        img = img.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR).resize((w, h), Image.BILINEAR)
    r = rng.random()
    if r < 0.45:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0) * w / 640))
    x = np.asarray(img, dtype=np.float32)
    if 0.45 <= r < 0.6:  # motion blur: average of shifted copies
        n = int(rng.integers(3, 7))
        angle = rng.normal(0, 0.3)
        acc = x.copy()
        for i in range(1, n):
            acc += np.roll(x, (round(i * math.sin(angle)), round(i * math.cos(angle))), axis=(0, 1))
        x = acc / n
    gain = rng.uniform(0.65, 1.25)
    temp = rng.uniform(-0.08, 0.08)
    gains = np.array([gain * (1 + temp), gain, gain * (1 - temp)], np.float32)
    contrast = rng.uniform(0.75, 1.2)
    mean = float(x.mean())
    x = (x * gains - mean * gain) * contrast + mean * gain
    x += rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(rng.uniform(1.0, 6.0))
    img = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    if rng.random() < 0.2:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(25, 60)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _make_camera(rng: np.random.Generator, width: int, height: int) -> _Camera:
    return _Camera(
        width, height,
        focal=width * rng.uniform(0.52, 0.64),
        vp_u=width * (0.5 + rng.uniform(-0.08, 0.08)),
        horizon=height * rng.uniform(0.36, 0.5),
        cam_h=rng.uniform(1.5, 1.8),
    )


def _make_road(rng: np.random.Generator) -> _Road:
    n = int(rng.integers(2, 5))
    lane_w = rng.uniform(3.0, 3.7)
    two_way = rng.random() < 0.6
    if two_way:
        n_onc = n // 2
        ego = int(rng.integers(n_onc, n))
        center = (n_onc - ego - 0.5) * lane_w
    else:
        n_onc, ego, center = 0, int(rng.integers(n)), None
    shift = rng.uniform(-0.4, 0.4)
    lanes = tuple(((i - ego) * lane_w + shift, -1 if i < n_onc else 1) for i in range(n))
    if center is not None:
        center += shift
    return _Road(lane_w, lanes, (-ego - 0.5) * lane_w + shift, (n - ego - 0.5) * lane_w + shift,
                 rng.uniform(1.8, 4.0), center)


def render_scene(rng: np.random.Generator, width: int = 1242, height: int = 375) -> tuple[Image.Image, list[dict]]:
    """Render one street scene and its COCO annotations.

    Args:
        rng: source of all randomness (same state -> same pixels and boxes).
        width, height: image size in pixels.

    Returns:
        ``(image, anns)``: an RGB ``PIL.Image`` and a list of dicts with
        ``category_id`` (1..6, see ``CLASSES``), ``bbox`` ``[x, y, w, h]`` (floats,
        visible extent), ``area`` (``w * h``) and ``iscrowd`` (0/1, see the module
        docstring). Annotation ids are assigned by :func:`generate_dataset`.

    Example::

        img, anns = render_scene(np.random.default_rng(0), 640, 192)
    """
    cam = _make_camera(rng, width, height)
    road = _make_road(rng)
    scene = _background(rng, cam)
    d = ImageDraw.Draw(scene)
    _draw_far(rng, d, cam)
    _draw_road(rng, d, cam, road)
    _draw_buildings(rng, d, cam, road)

    footprints: list = [(0.0, 0.0, 1.0, 3.0)]  # our own car
    things: list[_Thing] = []
    classes = rng.choice(np.arange(1, 7), size=int(rng.integers(2, 13)), p=CLASS_PROBS)
    for cls in classes:
        thing = _place_object(rng, cam, road, int(cls), footprints)
        if thing is not None:
            things.append(thing)
    for _ in range(rng.integers(1, 8)):
        thing = _place_scenery(rng, cam, road, footprints)
        if thing is not None:
            things.append(thing)
    things.sort(key=lambda t: -t.z)

    ids = Image.new("L", (width, height), 0)
    placed = []
    for thing in things:
        inst = len(placed) + 1 if thing.category else 0
        res = _composite(scene, ids, thing, inst)
        if res is not None and thing.category:
            placed.append((thing.category, res))

    return _photometric(rng, scene), _annotate(np.asarray(ids), placed)


def _annotate(id_map: np.ndarray, placed: list) -> list[dict]:
    """COCO annotations from the instance-id map ``(H, W)`` (instance k has id k, in ``placed`` order).

    ``placed[k - 1]`` is ``(category, (ox, oy, sprite_w, sprite_h, total_pixels))``.
    """
    height, width = id_map.shape
    anns = []
    for inst, (category, (ox, oy, sw, sh, total)) in enumerate(placed, start=1):
        x0, y0 = max(ox, 0), max(oy, 0)
        region = id_map[y0 : min(oy + sh, height), x0 : min(ox + sw, width)] == inst
        visible = int(np.count_nonzero(region))
        if visible < 6:
            continue
        cols, rows = np.flatnonzero(region.any(0)), np.flatnonzero(region.any(1))
        bw, bh = float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])
        if bw < 2 or bh < 2:
            continue
        crowd = visible < MIN_VISIBLE_FRACTION * total or bh < MIN_BOX_HEIGHT
        anns.append(dict(category_id=category, bbox=[float(x0 + cols[0]), float(y0 + rows[0]), bw, bh],
                         area=bw * bh, iscrowd=int(crowd)))
    return anns


# ----------------------------------------------------------------------------- dataset writer


def _render_to_file(index: int, seed: int, size: tuple[int, int], images_dir: str, image_format: str):
    rng = np.random.default_rng([seed, index])
    img, anns = render_scene(rng, *size)
    name = f"{index + 1:06d}.{image_format}"
    if image_format == "jpg":
        img.save(os.path.join(images_dir, name), quality=92)
    else:
        img.save(os.path.join(images_dir, name))
    return index, name, anns


def _render_star(args):
    return _render_to_file(*args)


def generate_dataset(
    out_dir: str | os.PathLike,
    num_images: int,
    size: tuple[int, int] = (1242, 375),
    seed: int = 0,
    workers: int = 1,
    image_format: str = "jpg",
) -> Path:
    """Write ``num_images`` scenes to ``out_dir/images/`` and their COCO json to ``out_dir/annotations.json``.

    Args:
        size: (width, height) — note the order, as in ``--size WxH``.
        seed: image ``i`` is rendered from ``default_rng([seed, i])``, so output is
            identical for any ``workers``.
        image_format: ``"jpg"`` (quality 92) or ``"png"``.

    Returns:
        Path of the json file (written atomically: temp file + ``os.replace``).

    Example::

        ann = generate_dataset("data/synth/val", 200, size=(640, 192), seed=1)
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    w, h = int(size[0]), int(size[1])
    jobs = [(i, seed, (w, h), str(images_dir), image_format) for i in range(num_images)]
    results: list = [None] * num_images
    bar = tqdm(total=num_images, desc=f"synthetic {w}x{h}", unit="img")
    if workers <= 1:
        for job in jobs:
            i, name, anns = _render_star(job)
            results[i] = (name, anns)
            bar.update()
    else:
        with multiprocessing.get_context().Pool(workers) as pool:
            for i, name, anns in pool.imap_unordered(_render_star, jobs, chunksize=8):
                results[i] = (name, anns)
                bar.update()
    bar.close()

    images, annotations = [], []
    for i, (name, anns) in enumerate(results):
        images.append(dict(id=i + 1, file_name=name, width=w, height=h))
        for a in anns:
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, **a))
    coco = dict(
        info=dict(description="cat-deploy synthetic driving scenes", seed=seed, size=[w, h]),
        images=images,
        annotations=annotations,
        categories=[dict(id=k + 1, name=n, supercategory="object") for k, n in enumerate(CLASSES)],
    )
    return write_json(out / "annotations.json", coco)


def parse_size(text: str) -> tuple[int, int]:
    """``"640x192"`` -> ``(640, 192)`` (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like WIDTHxHEIGHT, e.g. 640x192, got {text!r}") from None
    return w, h


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cat_deploy.data.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (gets images/ and annotations.json)")
    ap.add_argument("--num", type=int, default=2000, help="number of images")
    ap.add_argument("--size", type=parse_size, default=(1242, 375), help="WIDTHxHEIGHT (default 1242x375)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--format", choices=("jpg", "png"), default="jpg")
    args = ap.parse_args(argv)
    path = generate_dataset(args.out, args.num, args.size, args.seed, args.workers, args.format)
    print(f"wrote {args.num} images and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
