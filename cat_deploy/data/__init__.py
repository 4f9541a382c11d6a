"""Data layer: image decoding, letterbox/augmentation, synthetic scenes, COCO results and mAP, KITTI.

Numpy and Pillow only, so the deployment runtime can use it without PyTorch; the PyTorch
training dataset is :mod:`cat_deploy.data.coco` (``CocoDetection``, ``collate_detection``).
"""
from .coco_eval import coco_map, to_coco_results
from .image import IMAGE_EXTENSIONS, ImageReadError, is_image_file, list_images, read_image
from .kitti import convert_kitti
from .synthetic import CLASSES, generate_dataset, render_scene
from .transforms import (
    Letterbox,
    boxes_to_letterbox,
    boxes_to_original,
    color_jitter,
    hflip,
    letterbox,
    normalize,
    random_scale_crop,
)

__all__ = [
    "CLASSES",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "Letterbox",
    "boxes_to_letterbox",
    "boxes_to_original",
    "coco_map",
    "color_jitter",
    "convert_kitti",
    "generate_dataset",
    "hflip",
    "is_image_file",
    "letterbox",
    "list_images",
    "normalize",
    "random_scale_crop",
    "read_image",
    "render_scene",
    "to_coco_results",
]
