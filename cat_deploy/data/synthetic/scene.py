"""One scene: layout, objects placed and pasted far to near, photometric degradation, annotations."""
from __future__ import annotations

import io
import math
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .annotations import _annotate
from .layout import (CAR, CLASS_PROBS, CYCLIST, LIGHT, PEDESTRIAN, SIGN, TRUCK, _Camera, _ground_box, _make_camera,
                     _make_road, _overlaps, _Road)
from .people import _place_cyclist, _place_pedestrian
from .scenery import _background, _draw_buildings, _draw_far, _draw_road, _place_scenery
from .signals import _place_signal
from .sprites import _Frame, _Thing
from .vehicles import _place_vehicle


_PLACERS = {CAR: _place_vehicle, TRUCK: _place_vehicle, PEDESTRIAN: _place_pedestrian, CYCLIST: _place_cyclist,
            LIGHT: _place_signal, SIGN: _place_signal}


def _place_object(rng: np.random.Generator, cam: _Camera, road: _Road, cls: int, footprints: list) -> Optional[_Thing]:
    """Up to 12 tries at a spot for one object of category ``cls`` that is in view and clear of ``footprints``
    (then added to them); its sprite, or ``None``."""
    z_min_ground = 0.8 * cam.z_at_row(cam.height)  # nearer than this the feet leave the frame
    for _ in range(12):
        flip = bool(rng.random() < 0.5)
        spot = _PLACERS[cls](rng, cam, road, cls, z_min_ground)
        if spot is None:
            continue
        lo, hi = cam.x_range(spot.z)
        if not lo - 0.5 < spot.x < hi + 0.5 or _overlaps(footprints, spot.x, spot.z, spot.hw, spot.hl):
            continue
        footprints.append((spot.x, spot.z, spot.hw, spot.hl))
        box = _ground_box(cam, spot.x, spot.z, spot.w_m, spot.h_m, spot.y0)
        return _Thing(spot.z, cls, box, spot.draw, spot.margin, flip and spot.mirror, spot.poles)
    return None


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
