"""The connected regions of a mask's classes: 8-connected pixels of one class id, with their area, box and centroid,
and on request their outline as polygons (along their pixels' edges, as COCO's polygons go: OpenCV's contours of the
region doubled in size, simplified by Douglas-Peucker) and their COCO RLE.

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
    xy: np.ndarray  # (n, 2) int32 vertices in COCO's coordinates: a pixel's corners at whole numbers
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
    """The region's outer boundary and its holes' boundaries along its pixels' edges, in COCO's coordinates (the
    pixel at column c, row r is the square from (c, r) to (c + 1, r + 1)), simplified: by `tolerance`, or by less
    where that would change more than 1 % of the region's pixels (a thin or small region), down to none."""
    rings = _traced(inside)
    if tolerance > 0:
        attempt = tolerance
        while attempt >= _LEAST_TOLERANCE:
            simplified = [
                (cv2.approxPolyDP(corners.reshape(-1, 1, 2), attempt, closed=True).reshape(-1, 2), hole)
                for corners, hole in rings
            ]
            if _agreement(simplified, inside) >= _LEAST_AGREEMENT:
                rings = simplified
                break
            attempt /= 2
    polygons = [Polygon(np.add(corners, (x, y)).astype(np.int32), hole) for corners, hole in rings]
    polygons.sort(key=lambda polygon: polygon.hole)  # the outer boundary first
    return tuple(polygons)


# A simplified outline, drawn back, keeps at least this intersection over union with its region; below this
# tolerance, the exact outline is kept.
_LEAST_AGREEMENT = 0.99
_LEAST_TOLERANCE = 0.25


def _traced(inside: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """The exact boundaries of a region ((h, w) bool) in its box's corner coordinates, each with whether it is a
    hole's. OpenCV traces boundaries through pixel centres; traced on the region doubled in size, each boundary
    pixel of the doubled region lies at an edge of an original pixel, and (u + 1) // 2 maps it to that edge's
    corner."""
    doubled = np.repeat(np.repeat(inside.view(np.uint8), 2, axis=0), 2, axis=1)
    # A pixel of margin, so that a boundary along the box's edge is traced as one.
    contours, hierarchy = cv2.findContours(np.pad(doubled, 1), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE, offset=(-1, -1))
    return [
        (_turns((contour.reshape(-1, 2) + 1) // 2), parent >= 0)
        for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True)
    ]


def _agreement(rings: list[tuple[np.ndarray, bool]], inside: np.ndarray) -> float:
    """The intersection over union of the region ((h, w) bool, its box) and its outline drawn back."""
    drawn = drawn_back(rings, inside.shape)
    return int((drawn & inside).sum()) / int((drawn | inside).sum())


def drawn_back(rings: list[tuple[np.ndarray, bool]], shape: tuple[int, ...]) -> np.ndarray:
    """The (h, w) pixels whose centres are inside an outline in COCO's coordinates: inside its outer rings and not
    inside its holes (the even-odd rule, as pycocotools rasterises COCO's polygons), one row of centres at a time."""
    height, width = shape[:2]
    starts = np.concatenate([corners for corners, _ in rings]).astype(np.float64)
    ends = np.concatenate([np.roll(corners, -1, axis=0) for corners, _ in rings]).astype(np.float64)
    low, high = np.minimum(starts[:, 1], ends[:, 1]), np.maximum(starts[:, 1], ends[:, 1])
    # The rows whose centre (r + 0.5) each edge crosses: low <= r + 0.5 < high.
    first = np.clip(np.ceil(low - 0.5), 0, height).astype(np.int64)
    last = np.clip(np.ceil(high - 0.5), 0, height).astype(np.int64)
    spans = np.maximum(last - first, 0)
    edge = np.repeat(np.arange(len(starts)), spans)
    rows = first[edge] + np.arange(int(spans.sum())) - np.repeat(np.cumsum(spans) - spans, spans)
    (x0, y0), (x1, y1) = starts[edge].T, ends[edge].T
    xs = x0 + (rows + 0.5 - y0) * (x1 - x0) / (y1 - y0)
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # Crossings pair up in each row: a pixel is inside between the first and second, the third and fourth, ...
    pair_rows, left, right = rows[0::2], xs[0::2], xs[1::2]
    begin = np.clip(np.floor(left - 0.5) + 1, 0, width).astype(np.int64)
    end = np.maximum(np.clip(np.ceil(right - 0.5), 0, width).astype(np.int64), begin)
    change = np.zeros((height, width + 1), dtype=np.int32)
    np.add.at(change, (pair_rows, begin), 1)
    np.add.at(change, (pair_rows, end), -1)
    return np.cumsum(change, axis=1)[:, :width] > 0


def _turns(points: np.ndarray) -> np.ndarray:
    """A closed path's (n, 2) points without repeats and without the points inside straight runs: the vertices
    where it turns (or goes back, where a region touches itself at a corner)."""
    points = points[np.any(points != np.roll(points, 1, axis=0), axis=1)]
    incoming = points - np.roll(points, 1, axis=0)
    outgoing = np.roll(points, -1, axis=0) - points
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    back = (incoming * outgoing).sum(axis=1) < 0
    return points[(cross != 0) | back]
