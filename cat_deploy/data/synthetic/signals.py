"""Traffic lights and signs: their drawings, and the poles (or arms over the road) they hang on."""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

import numpy as np
from PIL import ImageDraw

from .layout import LIGHT, _Camera, _Road, _sample_depth
from .sprites import _Frame, _jitter, _mix, _rgba, _Spot


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


def _place_signal(rng: np.random.Generator, cam: _Camera, road: _Road, cls: int, z_min_ground: float) -> _Spot:
    """A traffic light or sign on a pole at the kerb, or (some high lights) on an arm over the road."""
    side = road.left if rng.random() < 0.5 else road.right
    out = -1 if side == road.left else 1
    pole_x = side + out * rng.uniform(0.3, 1.2)
    h_m, w_m, y0, draw = _light_drawing(rng) if cls == LIGHT else _sign_drawing(rng)
    z = _sample_depth(rng, h_m)
    z = max(z, z_min_ground, cam.focal * (y0 + h_m - cam.cam_h) / max(cam.horizon, 1.0) + 0.5)
    x = pole_x
    arm = cls == LIGHT and y0 > 4.4 and rng.random() < 0.6
    if arm:
        x = pole_x - out * rng.uniform(2.0, 5.0)
    poles = _signal_poles(rng, cam, pole_x, x, z, y0, h_m, arm)
    return _Spot(x, z, w_m, h_m, 0.15, 0.15, draw, (0.0, 0.0), y0, poles, mirror=False)


def _light_drawing(rng: np.random.Generator) -> tuple[float, float, float, Callable]:
    """(height, width, bottom above ground in metres, drawing) of a three-lamp housing, one lamp lit."""
    h_m = rng.uniform(0.8, 1.1)
    w_m = 0.36 * h_m
    y0 = rng.uniform(2.2, 3.2) if rng.random() < 0.5 else rng.uniform(4.5, 5.5)
    params = dict(housing=_jitter(rng, (35, 35, 38) if rng.random() < 0.8 else (200, 170, 40), 10),
                  lit=int(rng.integers(3)))
    return h_m, w_m, y0, partial(_draw_light, p=params)


def _sign_drawing(rng: np.random.Generator) -> tuple[float, float, float, Callable]:
    """(height, width, bottom above ground in metres, drawing) of a sign plate of a random shape."""
    h_m = rng.uniform(0.55, 0.9)
    shape = ("circle", "blue", "triangle", "yield", "stop", "diamond", "rect")[rng.integers(7)]
    w_m = h_m * (rng.uniform(1.2, 1.8) if shape == "rect" else 1.0)
    y0 = rng.uniform(1.8, 2.8)
    params = dict(shape=shape, variant=bool(rng.random() < 0.5))
    return h_m, w_m, y0, partial(_draw_sign, p=params)


def _signal_poles(rng: np.random.Generator, cam: _Camera, pole_x: float, x: float, z: float, y0: float, h_m: float,
                  arm: bool) -> list:
    """The grey pole at lateral ``pole_x`` (up to mid-height of the signal, or above it when the signal hangs on
    an arm) and the arm reaching to the signal at ``x``; image boxes as in ``_Thing.poles``."""
    pole_w = cam.focal * 0.12 / z
    pu = float(cam.u(pole_x, z))
    grey = _jitter(rng, (95, 98, 100), 20)
    pole_top = y0 + h_m + 0.3 if arm else y0 + 0.5 * h_m
    poles = [(pu - pole_w / 2, float(cam.v(pole_top, z)), pu + pole_w / 2, float(cam.v(0.0, z)), grey)]
    if arm:
        ua, ya = float(cam.u(x, z)), float(cam.v(y0 + h_m + 0.15, z))
        poles.append((min(ua, pu), ya - pole_w / 3, max(ua, pu), ya + pole_w / 3, grey))
    return poles
