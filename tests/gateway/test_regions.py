"""Regions through the real gateway and model: each class's connected regions with their outlines and COCO RLE,
held to the answer's own mask (pycocotools decodes the RLE), over gRPC and over HTTP's JSON."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pycocotools.mask as coco
import pytest
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2 as pb
from tests import images
from tests.gateway.test_gateway import mask_of, segment
from tests.helpers import ServerProcess, http_base, start_gateway, wait_for_health
from tests.paths import CAT


def test_regions_of_the_cat_are_its_mask_pixels_with_outlines_and_coco_rle(stub) -> None:
    regions = pb.RegionOptions(classes=["cat"], include_polygons=True, include_coco_rle=True)
    response = segment(stub, images.jpeg("chelsea.png"), mask_format=pb.MASK_FORMAT_RAW, regions=regions)
    mask = mask_of(response)
    assert response.regions and {r.class_id for r in response.regions} == {CAT}
    assert all(r.label == "cat" for r in response.regions)
    assert [r.area for r in response.regions] == sorted((r.area for r in response.regions), reverse=True)
    covered = np.zeros(mask.shape, dtype=bool)
    for region in response.regions:
        rle = {"size": list(region.coco_rle.size), "counts": region.coco_rle.counts.encode()}
        pixels = coco.decode(rle).astype(bool)
        assert list(region.coco_rle.size) == [response.mask.height, response.mask.width]
        assert pixels.sum() == region.area and not (pixels & covered).any()
        box = region.bounding_box
        ys, xs = np.nonzero(pixels)
        assert (box.x, box.y, box.width, box.height) == (xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1)
        assert region.centroid_x == pytest.approx(xs.mean()) and region.centroid_y == pytest.approx(ys.mean())
        assert region.polygons and not region.polygons[0].hole and len(region.polygons[0].xy) >= 2
        covered |= pixels
    assert np.array_equal(covered, mask == CAT)
    # Without regions asked for, none come back.
    assert not segment(stub, images.jpeg("chelsea.png"), mask_format=pb.MASK_FORMAT_NONE).regions


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (pb.RegionOptions(classes=["unicorn"]), "unknown class 'unicorn'"),
        (pb.RegionOptions(min_area=-1), "regions.min_area is -1"),
        (pb.RegionOptions(include_polygons=True, polygon_tolerance=-0.5), "regions.polygon_tolerance is -0.5"),
        (pb.RegionOptions(include_polygons=True, polygon_tolerance=float("nan")), "regions.polygon_tolerance is nan"),
    ],
    ids=["unknown-class", "negative-area", "negative-tolerance", "nan-tolerance"],
)
def test_bad_region_options_are_invalid_argument(stub, regions: pb.RegionOptions, message: str) -> None:
    with pytest.raises(grpc.RpcError) as error:
        segment(stub, images.jpeg("chelsea.png"), regions=regions)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()


def test_too_many_regions_name_the_limit(modelserver: ServerProcess) -> None:
    server = start_gateway(modelserver.target, "--max-regions=1", "--http-listen=127.0.0.1:0")
    try:
        wait_for_health(server.target, health_pb2.HealthCheckResponse.SERVING)
        body = {"image": base64.b64encode(images.jpeg("chelsea.png")).decode(), "regions": {"classes": ["0", "8"]}}
        request = urllib.request.Request(
            http_base(server) + "/segmentation.v1.SegmentationService/SegmentImage",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        with refused.value as answer:
            assert answer.code == 400
            error = json.loads(answer.read())
        assert error["code"] == "invalid_argument" and "(max_regions)" in error["message"], error
    finally:
        server.stop()
