"""The gateway end to end: real gRPC, the real modelserver and model, real and derived photos."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from segmentation.v1 import segmentation_service_pb2 as pb
from tests import images
from tests.helpers import SERVICE, ServerProcess, mapped_files, rss_mb
from tests.paths import CAT, PERSON

PNG, RAW, RLE = pb.MASK_FORMAT_PNG, pb.MASK_FORMAT_RAW, pb.MASK_FORMAT_RLE


def segment(stub, data: bytes, timeout: float = 30, **fields) -> pb.SegmentImageResponse:  # type: ignore[no-untyped-def]
    return stub.SegmentImage(pb.SegmentImageRequest(image=data, **fields), timeout=timeout)


def mask_of(response: pb.SegmentImageResponse) -> np.ndarray:
    mask = response.mask
    if mask.format == PNG:
        out = images.decode_png_indices(mask.data)
    elif mask.format == RAW:
        out = np.frombuffer(mask.data, dtype=np.uint8).reshape(mask.height, mask.width)
    else:
        assert mask.format == RLE
        out = np.repeat(np.array(mask.rle.values, np.uint8), np.array(mask.rle.counts)).reshape(mask.height, mask.width)
    assert out.shape == (mask.height, mask.width)
    return out


def dominant(response: pb.SegmentImageResponse) -> int:
    """The largest class other than background."""
    return next(c.class_id for c in response.classes if c.class_id != 0)


def fraction(response: pb.SegmentImageResponse, class_id: int) -> float:
    return next((c.fraction for c in response.classes if c.class_id == class_id), 0.0)


ENCODINGS = {"jpeg": images.jpeg, "png": images.png, "webp": images.webp}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("photo", "expected", "least"), [("astronaut.png", PERSON, 0.35), ("chelsea.png", CAT, 0.6)])
def test_each_photo_in_each_format_finds_its_class(
    stub, encoding: str, photo: str, expected: int, least: float
) -> None:
    response = segment(stub, ENCODINGS[encoding](photo))
    height, width = images.bgr(photo).shape[:2]
    assert (response.image_width, response.image_height) == (width, height)
    assert (response.mask.width, response.mask.height) == (width, height)
    assert dominant(response) == expected
    assert fraction(response, expected) >= least
    names = {c.class_id: c.label for c in response.classes}
    assert names[expected] == ("person" if expected == PERSON else "cat")
    assert response.model.name == "deeplab" and response.model.version == 1
    assert response.model.signature_name == "serving_default"
    assert response.timing.predict_us > 0 and response.timing.total_us >= response.timing.predict_us
    mask = mask_of(response)
    for stat in response.classes:
        box = stat.bounding_box
        inside = mask[box.y : box.y + box.height, box.x : box.x + box.width] == stat.class_id
        assert inside.sum() == stat.pixel_count == (mask == stat.class_id).sum()


def test_png_raw_and_rle_masks_are_the_same_mask(stub) -> None:
    data = images.jpeg("chelsea.png")
    masks = [mask_of(segment(stub, data, mask_format=f)) for f in (PNG, RAW, RLE)]
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[1], masks[2])
    assert segment(stub, data).mask.format == PNG  # the default


def test_png_mask_is_also_a_picture_in_the_pascal_colours(stub) -> None:
    response = segment(stub, images.png("chelsea.png"))
    picture = np.array(Image.open(io.BytesIO(response.mask.data)).convert("RGB"))
    cat = mask_of(response) == CAT
    assert (picture[cat] == [64, 0, 0]).all()


def test_model_size_mask_is_the_model_input_size(stub) -> None:
    response = segment(stub, images.large_jpeg("chelsea.png", 1920, 1080), mask_size=pb.MASK_SIZE_MODEL)
    assert (response.mask.width, response.mask.height) == (513, 289)
    assert (response.image_width, response.image_height) == (1920, 1080)
    assert dominant(response) == CAT


def test_overlay_only_when_asked_and_at_the_mask_size(stub) -> None:
    data = images.jpeg("astronaut.png")
    assert segment(stub, data).overlay == b""
    response = segment(stub, data, include_overlay=True)
    overlay = cv2.imdecode(np.frombuffer(response.overlay, np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape == (512, 512, 3)
    person = mask_of(response) == PERSON
    original = images.bgr("astronaut.png").astype(int)
    assert np.abs(overlay[person].astype(int) - original[person]).mean() > 20  # tinted
    assert np.abs(overlay[~person].astype(int) - original[~person]).mean() < 10  # background untouched


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_orientation_turns_the_dims_and_the_mask(stub, orientation: int) -> None:
    plain = images.jpeg("chelsea.png")
    upright = mask_of(segment(stub, plain))
    rotated = segment(stub, images.with_orientation(plain, orientation))
    if orientation in (6, 8):
        assert (rotated.image_width, rotated.image_height) == (300, 451)
    turns = {6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE, 3: cv2.ROTATE_180}
    got = mask_of(rotated)
    # The model is not rotation-invariant, so the masks differ at the edges; the right turn must still match
    # far better than any other arrangement of the upright mask.
    agreement = {
        turn: (got == cv2.rotate(upright, code)).mean()
        for turn, code in turns.items()
        if cv2.rotate(upright, code).shape == got.shape
    }
    if got.shape == upright.shape:
        agreement[1] = (got == upright).mean()
    assert agreement[orientation] > 0.85
    assert all(agreement[orientation] > other + 0.1 for turn, other in agreement.items() if turn != orientation)
    assert dominant(rotated) == CAT


@pytest.mark.parametrize(
    "make",
    [images.grayscale_png, images.rgba_png, images.png16, images.cmyk_jpeg, images.palette_png],
    ids=["grayscale", "rgba", "16-bit-png", "cmyk-jpeg", "palette-png"],
)
def test_derived_layouts_are_segmented(stub, make) -> None:
    response = segment(stub, make("chelsea.png"))
    assert (response.mask.width, response.mask.height) == (451, 300)
    assert dominant(response) == CAT


def test_4000x3000_jpeg_gets_a_mask_at_its_full_size(stub) -> None:
    response = segment(stub, images.large_jpeg("chelsea.png", 4000, 3000), mask_format=RLE)
    assert (response.mask.width, response.mask.height) == (4000, 3000)
    assert sum(response.mask.rle.counts) == 4000 * 3000
    assert dominant(response) == CAT


def test_1x1_image_gets_a_1x1_mask(stub) -> None:
    response = segment(stub, images.tiny_png(), mask_format=RAW)
    assert (response.mask.width, response.mask.height) == (1, 1)
    assert len(response.mask.data) == 1
    assert sum(c.pixel_count for c in response.classes) == 1


BAD_INPUTS = {
    "empty": (b"", "the image is empty"),
    "random-bytes": (np.random.default_rng(7).bytes(4096), "not an image"),
    "text": (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "not an image"),
    "json": (b'{"image": "aGVsbG8="}', "not an image"),
    "truncated-jpeg": (images.jpeg("astronaut.png")[:5000], "JPEG image could not be decoded"),
    "truncated-png": (images.png("astronaut.png")[:5000], "PNG is truncated or corrupt: chunk 'IDAT'"),
    "jpeg-header-only": (images.jpeg("astronaut.png")[:300], "JPEG"),
    "png-signature-only": (b"\x89PNG\r\n\x1a\n", "PNG header is truncated"),
    "png-claims-30000x30000": (images.png_header_claiming(30000, 30000), "max_image_pixels=50000000"),
    "jpeg-claims-60000x60000": (images.jpeg_header_claiming(60000, 60000), "max_image_pixels=50000000"),
    "webp-claims-16000x16000": (images.webp_header_claiming(16000, 16000), "max_image_pixels=50000000"),
    "png-zero-width": (images.png_header_claiming(0, 10), "empty size 0x10"),
    "over-byte-limit": (b"\xff\xd8\xff" + bytes(20 * 1024 * 1024), "max_image_bytes=20971520"),
    "gif": (images.gif(), "unsupported image format GIF; accepted: JPEG, PNG, WebP, BMP, TIFF, HEIF (HEIC) or AVIF"),
    "pdf": (b"%PDF-1.7\n" + b"0" * 100, "unsupported image format PDF"),
    "avif": (b"\x00\x00\x00\x1cftypavif" + b"\x00" * 64, "the AVIF file is truncated or corrupt"),
    "quicktime": (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 64, "ISO media, brand 'qt'"),
    "bmp-truncated": (images.encode(images.bgr("chelsea.png"), ".bmp")[:1000], "BMP"),
    "tiff-garbage": (b"II*\x00" + b"\xff" * 64, "TIFF header is truncated"),
    "jpeg-valid-header-garbage-body": (
        images.jpeg("chelsea.png")[:600] + bytes(5000),
        "JPEG image could not be decoded",
    ),
}


HEAP_KEPT_MB = 2 * 64 * 1.048576  # what the tuned heap may keep free (2 arenas, a 64 MiB trim threshold each)
ROUNDS = 10  # a leak of 20 MB a round would exceed HEAP_KEPT_MB + 25 by the end


def test_bad_inputs_get_invalid_argument_fast_and_the_server_stays_healthy(stub, gateway: ServerProcess) -> None:
    assert len(BAD_INPUTS) >= 15
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(gateway.target))
    segment(stub, images.jpeg("chelsea.png"))  # warm
    rss_start = rss_mb(gateway.process.pid)
    rss_by_round = []
    for _ in range(ROUNDS):
        for name, (data, message) in BAD_INPUTS.items():
            start = time.perf_counter()
            with pytest.raises(grpc.RpcError) as info:
                segment(stub, data, timeout=10)
            elapsed = time.perf_counter() - start
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, info.value.details())
            assert message in info.value.details(), (name, info.value.details())
            assert "Traceback" not in info.value.details()
            assert elapsed < 1.0, (name, elapsed)
        rss_by_round.append(rss_mb(gateway.process.pid))
    status = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    # Bounded: the heap keeps freed buffers for the next call (up to 64 MiB free in each of its 2 arenas before it
    # trims, service/__main__.py), so the RSS may climb by 20 MB steps and fall back; a leak of the refused 20 MB
    # images would climb each round, past that bound within these rounds.
    assert max(rss_by_round) - rss_start < HEAP_KEPT_MB + 25, (rss_start, rss_by_round)
    assert dominant(segment(stub, images.jpeg("chelsea.png"))) == CAT


def test_unknown_model_version_label_and_signature_are_not_found(stub) -> None:
    data = images.jpeg("chelsea.png")
    cases = [
        (pb.ModelSelector(name="resnet"), "model 'resnet' is not configured on this service; configured: deeplab"),
        (pb.ModelSelector(version=42), "Servable not found for request: Specific(deeplab, 42)"),
        (pb.ModelSelector(version_label="canary"), "Unrecognized servable version label: canary"),
        (pb.ModelSelector(signature_name="detect"), 'Serving signature key "detect" not found'),
    ]
    for selector, message in cases:
        with pytest.raises(grpc.RpcError) as info:
            segment(stub, data, model=selector)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()
        assert message in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        segment(stub, data, model=pb.ModelSelector(version=-1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert segment(stub, data, model=pb.ModelSelector(name="deeplab", version=1)).model.version == 1


def test_short_client_deadline_is_deadline_exceeded(stub) -> None:
    data = images.large_jpeg("astronaut.png", 4000, 3000)
    start = time.perf_counter()
    with pytest.raises(grpc.RpcError) as info:
        segment(stub, data, timeout=0.02)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.perf_counter() - start < 1


def test_stream_answers_in_order_and_a_bad_item_fails_alone(stub) -> None:
    good = [images.jpeg("chelsea.png"), images.png("astronaut.png"), images.webp("chelsea.png")]

    def requests():  # type: ignore[no-untyped-def]
        for i in range(20):
            data = b"definitely not an image" if i == 10 else good[i % 3]
            yield pb.SegmentImageStreamRequest(id=f"item-{i}", request=pb.SegmentImageRequest(image=data))

    responses = list(stub.SegmentImageStream(requests(), timeout=120))
    assert [r.index for r in responses] == list(range(20))
    assert [r.id for r in responses] == [f"item-{i}" for i in range(20)]
    errors = [r for r in responses if r.WhichOneof("outcome") == "error"]
    assert [r.index for r in errors] == [10]
    assert errors[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "not an image" in errors[0].error.message
    results = [r.result for r in responses if r.WhichOneof("outcome") == "result"]
    assert len(results) == 19
    for i, result in zip([i for i in range(20) if i != 10], results, strict=True):
        assert dominant(result) == (PERSON if i % 3 == 1 else CAT)


def test_list_models_shows_labels_input_size_and_versions(stub) -> None:
    response = stub.ListModels(pb.ListModelsRequest(), timeout=10)
    (model,) = response.models
    assert model.name == "deeplab" and model.is_default
    assert model.labels[PERSON] == "person" and len(model.labels) == 21
    assert model.input_size == 513
    assert [(v.version, v.state) for v in model.versions] == [(1, pb.MODEL_VERSION_STATE_AVAILABLE)]
    assert model.backend_error == ""


def test_concurrent_calls_all_succeed(stub) -> None:
    data = [images.jpeg("chelsea.png"), images.jpeg("astronaut.png")] * 6
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda d: segment(stub, d, timeout=60), data))
    assert [dominant(r) for r in responses] == [CAT, PERSON] * 6


def test_gateway_process_never_loads_tensorflow(gateway: ServerProcess, stub) -> None:
    segment(stub, images.jpeg("astronaut.png"), include_overlay=True)
    mapped = mapped_files(gateway.process.pid)
    assert not [path for path in mapped if "tensorflow" in path], "the gateway mapped TensorFlow files"
    assert any("cv2" in path for path in mapped)  # the check sees the libraries that are loaded
    rss = rss_mb(gateway.process.pid)
    print(f"\ngateway RSS after calls: {rss:.0f} MB (pid {gateway.process.pid})")
    assert rss < 300
    assert os.path.exists(f"/proc/{gateway.process.pid}")
