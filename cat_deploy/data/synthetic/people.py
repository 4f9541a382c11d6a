"""Pedestrians and cyclists: their drawings from the front/back or the side, and where they stand."""
from __future__ import annotations

import math
from functools import partial

import numpy as np
from PIL import ImageDraw

from .layout import _Camera, _Road, _sample_depth
from .sprites import TYRE, _draw_shadow, _Frame, _jitter, _rgba, _Spot


CLOTHES = ((25, 25, 30), (50, 55, 80), (30, 45, 90), (120, 30, 35), (200, 200, 200), (90, 90, 95),
           (140, 110, 70), (60, 90, 50), (210, 120, 40), (180, 60, 120), (40, 120, 160), (230, 215, 180))

SKIN = ((255, 220, 190), (230, 180, 140), (190, 140, 100), (140, 95, 60), (95, 60, 40))

HAIR = ((20, 15, 10), (60, 40, 25), (120, 85, 50), (200, 170, 110), (150, 150, 150))


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


def _sidewalk_x(rng: np.random.Generator, road: _Road) -> float:
    if rng.random() < 0.5:
        return road.left - rng.uniform(0.3, road.walk_w - 0.2)
    return road.right + rng.uniform(0.3, road.walk_w - 0.2)


def _place_pedestrian(rng: np.random.Generator, cam: _Camera, road: _Road, cls: int,
                      z_min_ground: float) -> _Spot:
    """An adult or child on the sidewalk or crossing the road, seen from the front/back or the side."""
    params = _person_params(rng)
    h_m = rng.uniform(1.55, 1.9) if rng.random() > 0.12 else rng.uniform(1.0, 1.4)
    view = "side" if rng.random() < 0.5 else "front"
    w_m = 0.42 * h_m if view == "side" else 0.38 * h_m
    if rng.random() < 0.25:  # crossing the road
        x = rng.uniform(road.left + 0.5, road.right - 0.5)
    else:
        x = _sidewalk_x(rng, road)
    z = max(_sample_depth(rng, h_m), z_min_ground)
    return _Spot(x, z, w_m, h_m, 0.35, 0.35, partial(_draw_person, p=dict(params, view=view)), (0.05, 0.04))


def _place_cyclist(rng: np.random.Generator, cam: _Camera, road: _Road, cls: int, z_min_ground: float) -> _Spot:
    """A cyclist crossing the road (side view) or riding near the kerb (rear view)."""
    params = _person_params(rng)
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
    z = max(_sample_depth(rng, h_m), z_min_ground)
    return _Spot(x, z, w_m, h_m, hw, hl, partial(_draw_cyclist, p=params), (0.05, 0.04))
