"""Data layer: image decoding, letterbox/augmentation, synthetic scenes, COCO and KITTI."""
from .coco import CocoDetection, collate_detection, load_coco_json
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
    "CocoDetection",
    "ImageReadError",
    "Letterbox",
    "boxes_to_letterbox",
    "boxes_to_original",
    "collate_detection",
    "color_jitter",
    "convert_kitti",
    "generate_dataset",
    "hflip",
    "is_image_file",
    "letterbox",
    "list_images",
    "load_coco_json",
    "normalize",
    "random_scale_crop",
    "read_image",
    "render_scene",
]
