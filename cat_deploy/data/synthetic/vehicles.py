"""Cars and trucks: their drawings from behind, the front or the side, and where they stand."""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import numpy as np
from PIL import ImageDraw

from .layout import CAR, _Camera, _Road, _sample_depth
from .sprites import TYRE, _draw_shadow, _Frame, _jitter, _rgba, _shade, _Spot


CAR_COLOURS = (
    (235, 235, 235), (190, 192, 196), (150, 150, 155), (40, 40, 44), (20, 22, 28), (170, 25, 30),
    (30, 60, 140), (20, 35, 80), (40, 90, 60), (200, 180, 140), (230, 190, 30), (110, 40, 30),
    (90, 110, 130), (215, 100, 30),
)

CARGO_COLOURS = ((240, 240, 238), (205, 205, 200), (150, 155, 160), (30, 70, 150), (180, 30, 30),
                 (40, 110, 60), (230, 180, 40), (90, 70, 50))

GLASS = (45, 55, 70)


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


def _place_vehicle(rng: np.random.Generator, cam: _Camera, road: _Road, cls: int,
                   z_min_ground: float) -> Optional[_Spot]:
    """A car or truck in a lane, parked at the kerb or crossing; ``None`` when too close ahead of us."""
    if cls == CAR:
        w_m, h_m, l_m = rng.uniform(1.6, 1.9), rng.uniform(1.4, 1.75), rng.uniform(3.8, 4.8)
    else:
        w_m, h_m, l_m = rng.uniform(2.3, 2.6), rng.uniform(2.8, 3.8), rng.uniform(6.0, 10.0)
    z = max(_sample_depth(rng, h_m), z_min_ground)
    position = _vehicle_position(rng, road, z, w_m, l_m)
    if position is None:
        return None
    x, view, hw, hl = position
    draw, margin = _vehicle_drawing(rng, cls, view)
    return _Spot(x, z, w_m, h_m, hw, hl, draw, margin)


def _vehicle_position(rng: np.random.Generator, road: _Road, z: float, w_m: float,
                      l_m: float) -> Optional[tuple[float, str, float, float]]:
    """(lateral x, view, footprint half width, half length) of a vehicle at depth ``z``; ``None`` when it
    would stand right in front of our own bumper."""
    r = rng.random()
    if r < 0.15 and z > 8:  # crossing traffic, seen from the side
        return rng.uniform(road.left + 2, road.right - 2), "side", l_m / 2, w_m / 2
    if r < 0.35:  # parked along the kerb
        side = rng.choice([road.left, road.right])
        x = side + (1.2 if side == road.left else -1.2)
        direction = 1 if road.center_line is None or x > road.center_line else -1
    else:
        x, direction = road.lanes[rng.integers(len(road.lanes))]
        x += rng.uniform(-0.4, 0.4)
    if abs(x) < 1.5 and z < 6:  # keep a gap ahead of our own bumper
        return None
    return x, ("rear" if direction > 0 else "front"), w_m / 2, l_m / 2


def _vehicle_drawing(rng: np.random.Generator, cls: int, view: str) -> tuple[Callable, tuple[float, float]]:
    """The sprite drawing of a car or truck seen from ``view``, with random paint; and its sprite margin."""
    if cls == CAR:
        params = dict(view=view, colour=_jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 18),
                      glass=_jitter(rng, GLASS, 15), rim=_jitter(rng, (150, 150, 155), 40),
                      tail=_jitter(rng, (200, 20, 25), 25))
        return partial(_draw_car, p=params), (0.1, 0.06)
    params = dict(view=view, cargo=_jitter(rng, CARGO_COLOURS[rng.integers(len(CARGO_COLOURS))], 15),
                  cab=_jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 15))
    return partial(_draw_truck, p=params), (0.08, 0.05)
