"""COCO annotations of a rendered scene from its instance-id map (the policy is in the package docstring)."""
from __future__ import annotations

import numpy as np


MIN_VISIBLE_FRACTION = 0.4

MIN_BOX_HEIGHT = 8


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
