"""The connected regions of a mask's classes: 8-connected pixels of one class id, with their area, box and centroid,
and on request their outline as polygons (OpenCV's contours, simplified by Douglas-Peucker) and their COCO RLE.

Each class is labelled within its own bounding box (OpenCV's connected components), so the work and the memory
follow the pixels of the classes asked for, not the whole mask. The counts are bounded before anything is traced:
a photo of noise can have a region every few pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from service.errors import LimitExceeded
from service.mask import coco_rle
from service.mask.statistics import ClassStats

MAX_TOLERANCE = 100.0
# The mean probability of a class over a region: (class id, column, row, the region's pixels in its box) -> [0, 1].
MeanProbability = Callable[[int, int, int, np.ndarray], float]
DEFAULT_TOLERANCE = 1.0


@dataclass(frozen=True)
class RegionRequest:
    """What a call asks of its regions; `classes` as the request names them (mask.classes.named_classes), none:
    every class but 0."""

    classes: tuple[str, ...] = ()
    min_area: int = 1
    polygons: bool = False
    tolerance: float = DEFAULT_TOLERANCE
    coco_rle: bool = False


@dataclass(frozen=True)
class RegionLimits:
    max_regions: int
    max_polygon_points: int


@dataclass(frozen=True)
class Polygon:
    xy: np.ndarray  # (n, 2) int32 vertices, pixel centres at whole numbers
    hole: bool


@dataclass(frozen=True)
class Region:
    class_id: int
    area: int
    x: int
    y: int
    width: int
    height: int
    centroid_x: float
    centroid_y: float
    polygons: tuple[Polygon, ...] = ()
    coco_counts: str = ""  # COCO's compressed counts, when asked for
    mean_probability: float | None = None  # of its class over its pixels, where the model gives scores


@dataclass(frozen=True)
class _Labelled:
    """One class's components within its box: OpenCV's labels and stats, and the components kept."""

    stats: ClassStats
    labels: np.ndarray  # (box h, box w) int32, 0 outside the class
    areas: np.ndarray  # per component, 0 the background's
    boxes: np.ndarray  # (n, 4) x, y, w, h within the class's box
    centroids: np.ndarray  # (n, 2) within the class's box
    kept: np.ndarray  # component numbers of at least min_area pixels, by descending area


def find_regions(
    mask: np.ndarray,
    classes: list[ClassStats],
    request: RegionRequest,
    class_ids: frozenset[int] | None,
    limits: RegionLimits,
    *,
    mean_probability: MeanProbability | None = None,
) -> list[Region]:
    """The regions of `mask` ((h, w) uint8 class ids) of the classes `class_ids` (None: all but 0) among those
    present (`classes`, the mask's statistics), by class id and then descending area; LimitExceeded past the
    limits."""
    wanted = [c for c in classes if (c.class_id != 0 if class_ids is None else c.class_id in class_ids)]
    labelled = [_label(mask, stats, request.min_area) for stats in sorted(wanted, key=lambda c: c.class_id)]
    count = sum(item.kept.size for item in labelled)
    if count > limits.max_regions:
        raise LimitExceeded(
            f"the mask has {count} regions of at least {request.min_area} pixels in the classes asked for, over "
            f"the limit of {limits.max_regions} (max_regions): raise regions.min_area or name fewer classes"
        )
    regions = [region for item in labelled for region in _regions(item, request, mask.shape, mean_probability)]
    points = sum(polygon.xy.shape[0] for region in regions for polygon in region.polygons)
    if points > limits.max_polygon_points:
        raise LimitExceeded(
            f"the regions' outlines have {points} points, over the limit of {limits.max_polygon_points} "
            "(max_polygon_points): raise regions.polygon_tolerance or regions.min_area"
        )
    return regions


def _label(mask: np.ndarray, stats: ClassStats, min_area: int) -> _Labelled:
    box = mask[stats.y : stats.y + stats.height, stats.x : stats.x + stats.width]
    binary = (box == stats.class_id).view(np.uint8)
    _, labels, component_stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8, ltype=cv2.CV_32S)
    areas = component_stats[:, cv2.CC_STAT_AREA]
    candidates = np.flatnonzero(areas[1:] >= max(min_area, 1)) + 1
    kept = candidates[np.argsort(-areas[candidates], kind="stable")]
    return _Labelled(stats, labels, areas, component_stats[:, :4], centroids, kept)


def _regions(
    item: _Labelled, request: RegionRequest, shape: tuple[int, ...], mean_probability: MeanProbability | None
) -> list[Region]:
    origin_x, origin_y = item.stats.x, item.stats.y
    regions = []
    for number in item.kept.tolist():
        x, y, width, height = item.boxes[number].tolist()
        inside = item.labels[y : y + height, x : x + width] == number
        regions.append(
            Region(
                class_id=item.stats.class_id,
                area=int(item.areas[number]),
                x=origin_x + x,
                y=origin_y + y,
                width=width,
                height=height,
                centroid_x=origin_x + float(item.centroids[number][0]),
                centroid_y=origin_y + float(item.centroids[number][1]),
                polygons=_outline(inside, origin_x + x, origin_y + y, request.tolerance) if request.polygons else (),
                coco_counts=coco_rle.encode(inside, origin_x + x, origin_y + y, *shape[:2]) if request.coco_rle else "",
                mean_probability=None
                if mean_probability is None
                else mean_probability(item.stats.class_id, origin_x + x, origin_y + y, inside),
            )
        )
    return regions


def _outline(inside: np.ndarray, x: int, y: int, tolerance: float) -> tuple[Polygon, ...]:
    """The region's outer boundary and its holes' boundaries, through its boundary pixels' centres, simplified."""
    # A pixel of margin, so that a boundary along the box's edge is traced as one.
    padded = np.pad(inside.view(np.uint8), 1)
    contours, hierarchy = cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE, offset=(x - 1, y - 1))
    polygons = []
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
        simplified = cv2.approxPolyDP(contour, tolerance, closed=True) if tolerance > 0 else contour
        polygons.append(Polygon(simplified.reshape(-1, 2).astype(np.int32), hole=parent >= 0))
    polygons.sort(key=lambda polygon: polygon.hole)  # the outer boundary first
    return tuple(polygons)
