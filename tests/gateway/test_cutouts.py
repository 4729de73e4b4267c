"""Cut-outs through the real gateway and model: the hard alpha is the answer's own mask, the soft one the class's
probability map, the picture the photo's pixels; crops, formats and colours over gRPC, Connect JSON and a stream of
4K photos; what cannot be cut out is refused with what to change."""

from __future__ import annotations

import base64
import json
import pathlib
import urllib.request

import cv2
import grpc
import numpy as np
import pytest

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from segmentation_client import Cutout, SegmentationClient
from tests import images
from tests.gateway.test_client import segment_cli
from tests.gateway.test_gateway import mask_of, segment
from tests.helpers import ServerProcess, http_base
from tests.paths import CAT, IMAGES

CHELSEA = images.jpeg("chelsea.png")


def _decoded(data: bytes) -> np.ndarray:
    found = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert found is not None
    return found


def _box(box: pb.BoundingBox) -> tuple[slice, slice]:
    return slice(box.y, box.y + box.height), slice(box.x, box.x + box.width)


def test_a_hard_cut_out_of_the_cat_is_its_mask_over_the_photo_s_pixels(
    scores_stub: pb_grpc.SegmentationServiceStub,
) -> None:
    options = pb.CutoutOptions(classes=["cat"], crop=True, crop_margin_px=10)
    response = segment(scores_stub, CHELSEA, mask_format=pb.MASK_FORMAT_RAW, cutout=options)
    mask, cutout = mask_of(response), response.cutout
    cat = mask == CAT
    ys, xs = np.nonzero(cat)
    left, top = max(xs.min() - 10, 0), max(ys.min() - 10, 0)
    right, bottom = min(xs.max() + 11, mask.shape[1]), min(ys.max() + 11, mask.shape[0])
    assert (cutout.box.x, cutout.box.y, cutout.box.width, cutout.box.height) == (left, top, right - left, bottom - top)
    assert (cutout.width, cutout.height, cutout.format) == (right - left, bottom - top, pb.CUTOUT_FORMAT_PNG)
    assert cutout.subject_pixels == int(cat.sum()) > 0 and cutout.alpha == b""
    bgra = _decoded(cutout.image)
    rows, columns = _box(cutout.box)
    assert np.array_equal(bgra[:, :, 3] == 255, cat[rows, columns]) and set(np.unique(bgra[:, :, 3])) == {0, 255}
    photo = cv2.imdecode(np.frombuffer(CHELSEA, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(bgra[:, :, :3], photo[rows, columns])
    assert response.timing.postprocess_us > 0 and response.timing.encode_us > 0


def test_a_soft_cut_out_is_the_cat_s_probability_and_a_colour_fills_the_rest(
    scores_stub: pb_grpc.SegmentationServiceStub,
) -> None:
    options = pb.CutoutOptions(
        classes=["cat"], edge=pb.CUTOUT_EDGE_SOFT, format=pb.CUTOUT_FORMAT_JPEG_AND_ALPHA, background_color="#fff"
    )
    response = segment(
        scores_stub, CHELSEA, mask_format=pb.MASK_FORMAT_RAW, cutout=options, probability_classes=["cat"]
    )
    cutout = response.cutout
    alpha = _decoded(cutout.alpha)
    assert alpha.shape == (300, 451) and len(np.unique(alpha)) > 50  # soft edges
    assert np.array_equal(alpha, _decoded(response.probabilities[0].png))
    assert ((alpha > 127) == (mask_of(response) == CAT)).mean() > 0.99
    jpeg = _decoded(cutout.image)
    assert cutout.image[:2] == b"\xff\xd8" and jpeg.shape == (300, 451, 3)
    assert jpeg[alpha == 0].mean() > 245  # white where the cat is not


def test_connect_json_carries_a_webp_cut_out(scores_gateway: ServerProcess) -> None:
    body = {
        "image": base64.b64encode(CHELSEA).decode(),
        "maskFormat": "MASK_FORMAT_NONE",
        "cutout": {"classes": ["cat"], "crop": True, "cropMarginPercent": 5, "format": "CUTOUT_FORMAT_WEBP"},
    }
    request = urllib.request.Request(
        f"{http_base(scores_gateway)}/segmentation.v1.SegmentationService/SegmentImage",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        cutout = json.loads(answer.read())["cutout"]
    webp = base64.b64decode(cutout["image"])
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    assert _decoded(webp).shape == (cutout["height"], cutout["width"], 4)
    assert cutout["format"] == "CUTOUT_FORMAT_WEBP" and int(cutout["subjectPixels"]) > 0


def test_a_stream_of_4k_cut_outs_is_answered_in_order(scores_stub: pb_grpc.SegmentationServiceStub) -> None:
    photo = images.large_jpeg("chelsea.png", 3840, 2160)
    cutout = pb.CutoutOptions(edge=pb.CUTOUT_EDGE_SOFT, format=pb.CUTOUT_FORMAT_PNG)
    items = [
        pb.SegmentImageStreamRequest(
            id=f"4k-{i}", request=pb.SegmentImageRequest(image=photo, mask_format=pb.MASK_FORMAT_NONE, cutout=cutout)
        )
        for i in range(3)
    ]
    answers = list(scores_stub.SegmentImageStream(iter(items), timeout=120))
    assert [a.id for a in answers] == ["4k-0", "4k-1", "4k-2"]
    for answer in answers:
        found = answer.result.cutout
        assert (found.width, found.height) == (3840, 2160) and found.subject_pixels > 1_000_000
        assert _decoded(found.image).shape == (2160, 3840, 4)


def test_what_cannot_be_cut_out_is_refused_with_what_to_change(
    stub: pb_grpc.SegmentationServiceStub, scores_stub: pb_grpc.SegmentationServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        segment(stub, CHELSEA, cutout=pb.CutoutOptions(edge=pb.CUTOUT_EDGE_SOFT))  # the default profile: no scores
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ask for CUTOUT_EDGE_HARD" in error.value.details()
    refusals = [
        (pb.CutoutOptions(background_color="red"), "give a hex RGB colour"),
        (pb.CutoutOptions(crop=True, crop_margin_percent=250), "crop_margin_percent is 250"),
        (pb.CutoutOptions(classes=["unicorn"]), "unknown class 'unicorn'"),
        (pb.CutoutOptions(format=pb.CUTOUT_FORMAT_ALPHA, background_color="000"), "no effect on CUTOUT_FORMAT_ALPHA"),
    ]
    for options, message in refusals:
        with pytest.raises(grpc.RpcError) as error:
            segment(scores_stub, CHELSEA, cutout=options)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()


def test_the_library_and_the_cli_write_a_cut_out(scores_gateway: ServerProcess, tmp_path: pathlib.Path) -> None:
    with SegmentationClient(scores_gateway.target, timeout=60) as client:
        asked = Cutout(("cat",), soft=True, crop=True, margin="5%", format="jpeg+alpha")
        result = client.segment(IMAGES / "chelsea.png", cutout=asked, probabilities=("cat",))
    cutout = result.cutout
    assert cutout is not None and cutout.format == "jpeg+alpha" and cutout.subject_pixels > 0
    x, y, width, height = cutout.box
    rgba = cutout.rgba()
    assert rgba.shape == (height, width, 4)
    cat = np.rint(result.probability("cat") * 255).astype(np.uint8)
    assert np.array_equal(rgba[:, :, 3], cat[y : y + height, x : x + width])
    assert result.summary()["cutout"] == {
        "box": {"x": x, "y": y, "width": width, "height": height},
        "format": "jpeg+alpha",
        "subject_pixels": cutout.subject_pixels,
    }

    cli = segment_cli(
        str(IMAGES / "chelsea.png"), "--server", scores_gateway.target, "--out", str(tmp_path), "--quiet",
        "--cutout", "cat", "--soft", "--crop", "--margin", "5%", "--no-overlay",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    written = cv2.imread(str(tmp_path / "chelsea.cutout.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == rgba.shape and np.array_equal(written[:, :, 3], rgba[:, :, 3])
    summary = json.loads((tmp_path / "chelsea.json").read_text())
    assert summary["files"]["cutout"] == "chelsea.cutout.png" and summary["cutout"]["format"] == "png"
