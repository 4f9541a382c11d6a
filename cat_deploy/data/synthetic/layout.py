"""Camera and road layout of a synthetic scene, and where things stand on the ground.

A pinhole camera at height ~1.65 m looks down a straight road (see the package docstring for
the projection); ``_Road`` holds its lanes, edges and sidewalks, in metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np


CLASSES = ("car", "truck", "pedestrian", "cyclist", "traffic_light", "traffic_sign")

CAR, TRUCK, PEDESTRIAN, CYCLIST, LIGHT, SIGN = range(1, 7)  # COCO category ids

CLASS_PROBS = (0.27, 0.13, 0.20, 0.14, 0.13, 0.13)

REF_FOCAL = 0.58 * 640  # depths are sampled so heights at this focal length span ~8..150 px


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
