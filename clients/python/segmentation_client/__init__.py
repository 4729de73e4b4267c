"""Python client for deeplab-gateway's SegmentationService.

from segmentation_client import SegmentationClient

with SegmentationClient("localhost:50051") as client:
    result = client.segment("photo.jpg")
    print([(c.label, round(c.fraction, 3)) for c in result.classes])
    mask = result.mask  # (height, width) uint8 class ids
"""

from segmentation_client.client import (
    ClassInfo,
    Cutout,
    CutoutImage,
    Model,
    ModelInfo,
    ModelVersionInfo,
    RegionInfo,
    RegionPolygon,
    Regions,
    Segmentation,
    SegmentationClient,
    StreamItem,
)
from segmentation_client.errors import (
    DeadlineExceededError,
    InvalidImageError,
    NotFoundError,
    OverloadedError,
    SegmentationError,
    ServerError,
    UnavailableError,
)
from segmentation_client.masks import blend, colorize, decode_mask

__all__ = [
    "ClassInfo",
    "Cutout",
    "CutoutImage",
    "DeadlineExceededError",
    "InvalidImageError",
    "Model",
    "ModelInfo",
    "ModelVersionInfo",
    "NotFoundError",
    "OverloadedError",
    "RegionInfo",
    "RegionPolygon",
    "Regions",
    "Segmentation",
    "SegmentationClient",
    "SegmentationError",
    "ServerError",
    "StreamItem",
    "UnavailableError",
    "blend",
    "colorize",
    "decode_mask",
]
