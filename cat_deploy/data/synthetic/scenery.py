"""What is never annotated: sky and ground, the road and its markings, buildings, trees, street lamps.

Trees and lamps are ``_Thing`` s of category 0: they occlude objects behind them.
"""
from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from .layout import _Camera, _ground_box, _overlaps, _Road
from .sprites import _Frame, _jitter, _rgba, _shade, _Thing


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


def _draw_tree(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    d.rectangle(f.r(0.45, 0.45, 0.55, 1.0), fill=_rgba(p["trunk"]))
    for (fx, fy, r), c in zip(p["blobs"], p["greens"]):
        d.ellipse(f.r(fx - r, fy - r * f.w / f.h, fx + r, fy + r * f.w / f.h), fill=_rgba(c))


def _draw_lamp_head(d: ImageDraw.ImageDraw, f: _Frame, p: dict) -> None:
    d.rectangle(f.r(0.0, 0.3, 1.0, 0.7), fill=_rgba(p["colour"]))
    d.rectangle(f.r(0.7, 0.7, 1.0, 1.0), fill=_rgba((235, 235, 220)))


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
