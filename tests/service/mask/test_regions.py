"""Connected regions of a mask's classes: areas, boxes and centroids as counted from the pixels; outlines that give
the region back when drawn; COCO RLE that pycocotools decodes to it; the limits."""

from __future__ import annotations

import cv2
import numpy as np
import pycocotools.mask as coco
import pytest

from bench.regions import drawn
from service.errors import InvalidRequest, LimitExceeded
from service.mask.classes import named_classes
from service.mask.grid import grid_for
from service.mask.regions import Region, RegionLimits, RegionRequest, drawn_back, find_regions
from service.mask.statistics import class_statistics

LIMITS = RegionLimits(max_regions=100, max_polygon_points=10_000)
CAT, DOG = 8, 12


def _mask() -> np.ndarray:
    """A ring of cats (a hole holding a cat of its own), a cat square, a one-pixel cat, and a dog touching the ring
    only at a corner."""
    mask = np.zeros((60, 80), dtype=np.uint8)
    mask[5:35, 5:35] = CAT
    mask[12:28, 12:28] = 0  # the hole
    mask[18:22, 18:22] = CAT  # the island in it: a region of its own
    mask[40:50, 50:70] = CAT
    mask[55, 2] = CAT
    mask[35:45, 35:45] = DOG  # its corner meets the ring's at (35, 35) vs (34, 34): another class
    return mask


def _regions(mask: np.ndarray, request: RegionRequest, ids: frozenset[int] | None = None) -> list[Region]:
    classes = class_statistics(grid_for(mask, mask.shape[1], mask.shape[0]))
    return find_regions(mask, classes, request, ids, LIMITS)


def _pixels(mask: np.ndarray, region: Region) -> np.ndarray:
    """The region's pixels, found from scratch: its class's 8-connected component of its box and area."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats((mask == region.class_id).view(np.uint8), connectivity=8)
    (number,) = [n for n in range(1, len(stats)) if tuple(stats[n]) == (region.x, region.y, region.width,
                 region.height, region.area)]  # fmt: skip
    return labels == number


def test_regions_are_the_8_connected_components_by_class_then_area() -> None:
    mask = _mask()
    regions = _regions(mask, RegionRequest())
    assert [(r.class_id, r.area) for r in regions] == [
        (CAT, 30 * 30 - 16 * 16),
        (CAT, 200),
        (CAT, 16),
        (CAT, 1),
        (DOG, 100),
    ]
    for region in regions:
        pixels = _pixels(mask, region)
        ys, xs = np.nonzero(pixels)
        assert region.area == ys.size
        assert (region.x, region.y) == (xs.min(), ys.min())
        assert (region.width, region.height) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert region.centroid_x == pytest.approx(xs.mean()) and region.centroid_y == pytest.approx(ys.mean())
        assert region.polygons == () and region.coco_counts == ""


def test_classes_by_label_or_id_min_area_and_the_background() -> None:
    mask = _mask()
    labels = tuple(f"class_{i}" for i in range(21))
    assert named_classes(("class_12",), labels) == (DOG,)
    assert named_classes(("class_12", "8", "12"), labels) == (DOG, CAT)  # in the order named, once each
    assert named_classes((), labels) == ()
    with pytest.raises(InvalidRequest, match="unknown class 'cat'"):
        named_classes(("cat",), labels)
    only_dogs = _regions(mask, RegionRequest(), frozenset({DOG}))
    assert [r.class_id for r in only_dogs] == [DOG]
    big = _regions(mask, RegionRequest(min_area=16))
    assert [r.area for r in big] == [30 * 30 - 16 * 16, 200, 16, 100]
    # The background is a class like the others when it is named.
    assert [r.class_id for r in _regions(mask, RegionRequest(), frozenset({0}))] == [0, 0]


def _drawn(region: Region, shape: tuple[int, ...]) -> np.ndarray:
    """The region drawn back from its outline, as `make fidelity` draws it."""
    return drawn([(polygon.xy, polygon.hole) for polygon in region.polygons], shape[:2])


def test_exact_outlines_draw_the_region_back_and_holes_are_kept() -> None:
    mask = _mask()
    for region in _regions(mask, RegionRequest(polygons=True, tolerance=0)):
        assert not region.polygons[0].hole and all(p.hole for p in region.polygons[1:])
        assert np.array_equal(_drawn(region, mask.shape), _pixels(mask, region)), region
    ring = _regions(mask, RegionRequest(polygons=True, tolerance=0))[0]
    assert [p.hole for p in ring.polygons] == [False, True]
    # A square's outline is its four corners, in COCO's coordinates: the pixels' own corners.
    square = _regions(mask, RegionRequest(polygons=True, tolerance=0))[1]
    assert sorted(map(tuple, square.polygons[0].xy.tolist())) == [(50, 40), (50, 50), (70, 40), (70, 50)]
    one_pixel = _regions(mask, RegionRequest(polygons=True, tolerance=0))[3]
    assert sorted(map(tuple, one_pixel.polygons[0].xy.tolist())) == [(2, 55), (2, 56), (3, 55), (3, 56)]


def test_exact_outlines_of_random_shapes_are_their_pixels_and_their_area() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        blobs = (cv2.GaussianBlur(rng.random((70, 90)), (0, 0), 3) > 0.5).astype(np.uint8) * CAT
        blobs[rng.integers(0, 70, 30), rng.integers(0, 90, 30)] = CAT  # lone pixels, some touching at corners
        for region in _regions(blobs, RegionRequest(polygons=True, tolerance=0)):
            assert np.array_equal(_drawn(region, blobs.shape), _pixels(blobs, region)), region
            # As COCO computes a polygon's area: the outline's area less its holes' is the pixel count.
            area = sum((-1 if p.hole else 1) * abs(_shoelace(p.xy)) for p in region.polygons)
            assert area == region.area


def _shoelace(xy: np.ndarray) -> float:
    x, y = xy[:, 0].astype(float), xy[:, 1].astype(float)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_simplified_outlines_stay_within_the_tolerance() -> None:
    yy, xx = np.mgrid[:200, :200]
    disc = (((yy - 100) ** 2 + (xx - 100) ** 2) < 80**2).astype(np.uint8)
    exact, simple = (_regions(disc, RegionRequest(polygons=True, tolerance=t))[0] for t in (0, 1))
    assert len(simple.polygons[0].xy) < len(exact.polygons[0].xy) / 4
    drawn = _drawn(simple, disc.shape)
    iou = (drawn & disc.astype(bool)).sum() / (drawn | disc.astype(bool)).sum()
    assert iou > 0.99


def test_coco_rle_decodes_to_each_region() -> None:
    mask = _mask()
    for region in _regions(mask, RegionRequest(coco_rle=True)):
        decoded = coco.decode({"size": list(mask.shape), "counts": region.coco_counts.encode()})
        assert np.array_equal(decoded.astype(bool), _pixels(mask, region))
        assert coco.area({"size": list(mask.shape), "counts": region.coco_counts.encode()}) == region.area


def test_past_the_limits_the_answer_says_which_and_what_to_change() -> None:
    noise = (np.indices((40, 40)).sum(axis=0) % 3 == 0).astype(np.uint8)  # diagonal lines: many regions
    classes = class_statistics(grid_for(noise, 40, 40))
    with pytest.raises(LimitExceeded, match=r"regions of at least 1 pixels .* over the limit of 5 \(max_regions\)"):
        find_regions(noise, classes, RegionRequest(), None, RegionLimits(max_regions=5, max_polygon_points=10))
    square = np.zeros((30, 30), dtype=np.uint8)
    square[5:25, 5:25] = 1
    square[10:20, 10:12] = 0
    classes = class_statistics(grid_for(square, 30, 30))
    with pytest.raises(LimitExceeded, match=r"outlines have \d+ points, over the limit of 3 \(max_polygon_points\)"):
        find_regions(square, classes, RegionRequest(polygons=True, tolerance=0), None, RegionLimits(10, 3))


def test_outlines_at_a_tolerance_draw_back_to_99_percent_of_each_region() -> None:
    rng = np.random.default_rng(6)
    for _ in range(10):
        blobs = (cv2.GaussianBlur(rng.random((80, 100)), (0, 0), 2) > 0.55).astype(np.uint8) * CAT
        blobs[rng.integers(0, 80, 40), rng.integers(0, 100, 40)] = CAT  # specks and thin diagonal chains
        for tolerance in (1.0, 3.0):
            both = union = 0
            for region in _regions(blobs, RegionRequest(polygons=True, tolerance=tolerance)):
                pixels = _pixels(blobs, region)
                ours = drawn_back([(p.xy, p.hole) for p in region.polygons], blobs.shape)
                assert (ours & pixels).sum() / (ours | pixels).sum() >= 0.99, (tolerance, region.area)
                # pycocotools' rasterisation (make fidelity's) differs from the exact rule on diagonal edges, and
                # more on these specks than on photos' regions.
                theirs = _drawn(region, blobs.shape)
                both, union = both + (theirs & pixels).sum(), union + (theirs | pixels).sum()
            assert both / union >= 0.98
