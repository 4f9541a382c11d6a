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

Modules, by what they draw: ``layout`` (camera, road, ground geometry), ``sprites`` (things,
frames, colours), ``vehicles``, ``people`` (pedestrians, cyclists), ``signals`` (traffic lights,
signs), ``scenery`` (sky, road, buildings, trees, lamps), ``scene`` (placing, compositing,
photometric degradation), ``annotations`` and ``writer`` (dataset files, command line).

CLI::

    python -m cat_deploy.data.synthetic --out data/synth/train --num 2000 --size 640x192 --seed 0
"""
from .layout import CLASSES
from .scene import render_scene
from .writer import generate_dataset, main, parse_size

__all__ = ["CLASSES", "generate_dataset", "main", "parse_size", "render_scene"]
