"""Each pipeline stage as plain functions on real images, without gRPC."""

from __future__ import annotations

import resource
import time

import cv2
import grpc
import numpy as np
import pytest

from service import errors
from service.api.status import BACKEND_FAILED_MESSAGE, INTERNAL_MESSAGE, to_status
from service.backends import ModelSpec
from service.backends.channel import translate
from service.backends.tfserving import output_array, predict_request
from service.config import Limits
from service.errors import BackendFailed, InvalidImage, LimitExceeded
from service.image.decode import decode, reduction_for
from service.image.probe import probe
from service.image.resize import longest_side_size, model_size, resize_to
from service.mask.classes import ModelMask, class_mask
from service.mask.encode import encode_rgb_png
from service.mask.grid import expand, grid_for, repeats
from service.mask.overlay import overlay_picture, overlay_png
from service.mask.statistics import _from_cells, _from_runs
from service.profiles import DEEPLAB_ZOO
from tests import images
from tests.grids import assert_describes
from tfs_subset.tensorflow.core.framework import tensor_pb2, types_pb2

pytestmark = pytest.mark.unit  # make test-unit: in-process, nothing but the venv

LIMITS = Limits()


@pytest.mark.parametrize(
    ("data", "fmt", "size"),
    [
        (images.jpeg("astronaut.png"), "JPEG", (512, 512)),
        (images.png("chelsea.png"), "PNG", (451, 300)),
        (images.webp("coffee.png"), "WebP", (600, 400)),
        (images.encode(images.bgr("chelsea.png"), ".bmp"), "BMP", (451, 300)),
        (images.encode(images.bgr("chelsea.png"), ".tiff"), "TIFF", (451, 300)),
        (images.encode(images.bgr("chelsea.png"), ".webp", cv2.IMWRITE_WEBP_QUALITY, 101), "WebP", (451, 300)),
        (images.cmyk_jpeg("chelsea.png"), "JPEG", (451, 300)),
    ],
    ids=["jpeg", "png", "webp-lossy", "bmp", "tiff", "webp-lossless", "cmyk-jpeg"],
)
def test_probe_reads_format_and_size_from_the_header(data: bytes, fmt: str, size: tuple[int, int]) -> None:
    info = probe(data, LIMITS)
    assert (info.format, info.width, info.height) == (fmt, *size)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_probe_reads_the_exif_orientation(orientation: int) -> None:
    info = probe(images.with_orientation(images.jpeg("chelsea.png"), orientation), LIMITS)
    assert info.orientation == orientation
    assert info.oriented_size == ((300, 451) if orientation >= 5 else (451, 300))


def test_probe_refuses_a_huge_header_in_microseconds() -> None:
    data = images.png_header_claiming(30000, 30000)
    start = time.perf_counter()
    with pytest.raises(LimitExceeded, match=r"30000x30000 = 900000000 pixels.*max_image_pixels=50000000"):
        probe(data, LIMITS)
    assert time.perf_counter() - start < 0.01


def test_probe_refuses_bytes_over_the_limit() -> None:
    with pytest.raises(LimitExceeded, match="max_image_bytes=100"):
        probe(images.png("chelsea.png"), Limits(max_image_bytes=100))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the image is empty"),
        (b"hello, this is text", "not an image"),
        (images.gif(), "unsupported image format GIF"),
        (images.png("chelsea.png")[:20], "PNG header is truncated"),
        (images.jpeg("chelsea.png")[:40], "JPEG header is truncated"),
    ],
    ids=["empty", "text", "gif", "short-png", "short-jpeg"],
)
def test_probe_names_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        probe(data, LIMITS)


def test_a_png_chunk_longer_than_the_data_is_refused_before_decoding() -> None:
    # OpenCV allocates a chunk's declared length before reading it: 92 bytes could cost 4 GiB (found by fuzzing).
    data = images.png("chelsea.png")
    claiming = bytearray(data[:100])
    claiming[33:37] = (0xFFFFF000).to_bytes(4, "big")  # the first chunk after IHDR
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for broken in (bytes(claiming), data[: len(data) // 2]):
        with pytest.raises(InvalidImage, match=r"PNG is truncated or corrupt: chunk .* declares \d+ bytes, only"):
            _decode(broken)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def _decode(data: bytes, reduced_for: int | None = None):  # type: ignore[no-untyped-def]
    """Every pixel, or reduced for a model whose longest side is `reduced_for`."""
    info = probe(data, LIMITS)
    target = longest_side_size(*info.oriented_size, reduced_for) if reduced_for else None
    return decode(data, info, target)


def test_decode_gives_every_pixel_as_opencv_reads_it() -> None:
    decoded = _decode(images.png("chelsea.png"))
    assert decoded.bgr.shape == (300, 451, 3) and decoded.scale == 1
    assert np.array_equal(decoded.bgr, images.bgr("chelsea.png"))
    big = _decode(images.large_jpeg("coffee.png", 4000, 3000))
    assert big.bgr.shape == (3000, 4000, 3) and big.scale == 1


@pytest.mark.parametrize(
    ("orientation", "transform"),
    [
        (1, lambda a: a),
        (3, lambda a: cv2.rotate(a, cv2.ROTATE_180)),
        (6, lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)),
        (8, lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)),
    ],
)
def test_decode_applies_the_orientation(orientation: int, transform) -> None:
    plain = images.jpeg("chelsea.png")
    decoded = _decode(images.with_orientation(plain, orientation))
    expected = transform(_decode(plain).bgr)
    assert decoded.bgr.shape == expected.shape
    assert (decoded.width, decoded.height) == (expected.shape[1], expected.shape[0])
    assert np.abs(decoded.bgr.astype(int) - expected.astype(int)).mean() < 2


def test_reduced_decode_of_a_large_jpeg_keeps_its_full_size() -> None:
    data = images.large_jpeg("coffee.png", 4000, 3000)
    assert reduction_for(probe(data, LIMITS), (513, 385)) == 8
    decoded = _decode(data, reduced_for=513)
    assert decoded.bgr.shape == (375, 500, 3)
    assert (decoded.width, decoded.height, decoded.scale) == (4000, 3000, 8)
    rotated = _decode(images.with_orientation(data, 6), reduced_for=513)
    assert rotated.bgr.shape == (500, 375, 3)
    assert (rotated.width, rotated.height) == (3000, 4000)
    # 1080p decodes at 1/4 (480 px, within 10% of 513) and is then scaled to exactly the model's size.
    hd = images.large_jpeg("coffee.png", 1920, 1080)
    assert reduction_for(probe(hd, LIMITS), (513, 289)) == 4
    small = _decode(hd, reduced_for=513)
    assert small.bgr.shape == (270, 480, 3)
    assert resize_to(small.bgr, model_size(small.width, small.height, DEEPLAB_ZOO)).shape == (289, 513, 3)
    # Small images are never upscaled.
    assert reduction_for(probe(images.jpeg("chelsea.png"), LIMITS), (451, 300)) == 1


@pytest.mark.parametrize(
    "make",
    [images.grayscale_png, images.rgba_png, images.png16, images.cmyk_jpeg, images.palette_png],
    ids=["gray", "rgba", "16-bit", "cmyk", "palette"],
)
def test_every_layout_becomes_8_bit_rgb_close_to_the_original(make) -> None:
    decoded = _decode(make("chelsea.png"))
    assert decoded.bgr.dtype == np.uint8 and decoded.bgr.shape == (300, 451, 3)
    reference = images.bgr("chelsea.png").astype(int)
    gray = cv2.cvtColor(images.bgr("chelsea.png"), cv2.COLOR_BGR2GRAY).astype(int)
    error = min(np.abs(decoded.bgr - reference).mean(), np.abs(decoded.bgr - gray[:, :, None]).mean())
    assert error < 12


def test_truncated_data_is_invalid() -> None:
    data = images.jpeg("astronaut.png")
    with pytest.raises(InvalidImage, match="could not be decoded"):
        _decode(data[: len(data) // 2])


def test_resize_keeps_the_aspect_ratio_and_never_upscales() -> None:
    assert model_size(1920, 1080, DEEPLAB_ZOO) == (513, 289)
    assert model_size(1080, 1920, DEEPLAB_ZOO) == (289, 513)
    assert model_size(300, 200, DEEPLAB_ZOO) == (300, 200)
    bgr = images.bgr("coffee.png")
    out = resize_to(bgr, longest_side_size(600, 400, 257))
    assert out.shape == (171, 257, 3) and out.flags.c_contiguous and out.dtype == np.float32
    same = resize_to(bgr, longest_side_size(600, 400, 1000))
    assert np.array_equal(same, bgr[:, :, ::-1].astype(np.float32))


def test_pack_puts_the_pixels_in_tensor_content() -> None:
    rgb = cv2.cvtColor(images.bgr("chelsea.png"), cv2.COLOR_BGR2RGB)
    spec = ModelSpec("deeplab", "serving_default", version=3)
    request = predict_request(spec, "ImageTensor", rgb[np.newaxis], ("SemanticPredictions", "scores"))
    tensor = request.inputs["ImageTensor"]
    assert tensor.dtype == types_pb2.DT_UINT8
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 300, 451, 3]
    assert tensor.tensor_content == rgb.tobytes()
    assert not tensor.int_val
    assert list(request.output_filter) == ["SemanticPredictions", "scores"]
    assert request.model_spec.version.value == 3 and request.model_spec.signature_name == "serving_default"


def _tensor(mask: np.ndarray, dtype: int, typed: bool) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    for size in (1, *mask.shape):
        tensor.tensor_shape.dim.add(size=size)
    if typed:
        (tensor.int64_val if dtype == types_pb2.DT_INT64 else tensor.int_val).extend(mask.ravel().tolist())
    else:
        tensor.tensor_content = mask.astype("<i8" if dtype == types_pb2.DT_INT64 else "<i4").tobytes()
    return tensor


@pytest.mark.parametrize("dtype", [types_pb2.DT_INT64, types_pb2.DT_INT32], ids=["int64", "int32"])
@pytest.mark.parametrize("typed", [False, True], ids=["tensor_content", "typed-values"])
def test_unpack_accepts_int64_and_int32_in_either_encoding(dtype: int, typed: bool) -> None:
    mask = np.random.default_rng(0).integers(0, 21, size=(7, 9))
    out = class_mask(output_array(_tensor(mask, dtype, typed)), (7, 9))
    assert out.dtype == np.uint8 and np.array_equal(out, mask)


def test_unpack_refuses_the_wrong_shape_and_out_of_range_ids() -> None:
    mask = np.zeros((4, 4), dtype=np.int64)
    with pytest.raises(BackendFailed, match="shape"):
        class_mask(output_array(_tensor(mask, types_pb2.DT_INT64, False)), (4, 5))
    mask[0, 0] = 300
    with pytest.raises(BackendFailed, match=r"outside 0\.\.255"):
        class_mask(output_array(_tensor(mask, types_pb2.DT_INT64, False)), (4, 4))


def test_repeats_spread_target_pixels_evenly() -> None:
    counts = repeats(289, 1080)
    assert counts.sum() == 1080 and set(counts.tolist()) <= {3, 4}
    assert repeats(5, 5).tolist() == [1] * 5


MASK_CASES = [(5, 7, 13, 20), (289, 513, 1080, 1920), (171, 257, 400, 600), (1, 1, 1, 1), (1, 1, 3, 2), (6, 4, 6, 4)]


def _random_mask(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(4):  # blobs, as a segmentation has, plus noise
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[y : y + 1 + h // 3, x : x + 1 + w // 3] = rng.choice([8, 15, 11])
    noise = rng.random((h, w)) < 0.02
    mask[noise] = rng.integers(0, 21, size=int(noise.sum()))
    return mask


@pytest.mark.parametrize(("h", "w", "height", "width"), MASK_CASES)
def test_statistics_runs_and_encodings_equal_those_of_the_expanded_mask(h, w, height, width) -> None:
    small = _random_mask(h, w, seed=h * w)
    grid = grid_for(small, width, height)
    full = expand(grid)
    assert full.shape == (height, width)
    # Nearest neighbour: every full-size pixel takes the value of the small pixel under its centre.
    ys = ((2 * np.arange(height) + 1) * h) // (2 * height)
    xs = ((2 * np.arange(width) + 1) * w) // (2 * width)
    assert np.array_equal(full, small[ys][:, xs])

    assert_describes(grid, full)


@pytest.mark.parametrize(("h", "w", "height", "width"), MASK_CASES)
def test_run_based_and_pixel_based_statistics_agree(h, w, height, width) -> None:
    for seed in range(3):
        grid = grid_for(_random_mask(h, w, seed), width, height)
        assert sorted(_from_runs(grid), key=lambda s: s.class_id) == sorted(_from_cells(grid), key=lambda s: s.class_id)


def test_status_mapping_hides_unknown_errors_and_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    expected = {
        errors.InvalidImage("x"): grpc.StatusCode.INVALID_ARGUMENT,
        errors.LimitExceeded("x"): grpc.StatusCode.INVALID_ARGUMENT,
        errors.ModelNotFound("x"): grpc.StatusCode.NOT_FOUND,
        errors.BackendUnavailable("x"): grpc.StatusCode.UNAVAILABLE,
        errors.DeadlineExceeded("x"): grpc.StatusCode.DEADLINE_EXCEEDED,
        errors.Overloaded("x"): grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    for exc, code in expected.items():
        assert to_status(exc) == (code, "x")
    with caplog.at_level("ERROR", logger="service"):
        assert to_status(errors.BackendFailed("shape [1, 5] of 'sub_7'")) == (
            grpc.StatusCode.INTERNAL,
            BACKEND_FAILED_MESSAGE,
        )
    assert "shape [1, 5] of 'sub_7'" in caplog.text
    try:
        {}["secret-key"]  # a real exception, with a real traceback
    except KeyError as exc:
        with caplog.at_level("ERROR", logger="service"):
            code, message = to_status(exc)
    assert code == grpc.StatusCode.INTERNAL and message == INTERNAL_MESSAGE
    assert "secret-key" not in message
    assert "Traceback" in caplog.text and "secret-key" in caplog.text


def test_overlay_is_capped_at_1280_px_on_its_longest_side_and_keeps_a_small_picture_meanwhile() -> None:
    bgr = images.bgr("coffee.png")
    small = np.zeros((171, 257), np.uint8)
    small[50:100, 60:200] = 11
    answer = ModelMask(small)
    large = cv2.resize(bgr, (3000, 2000))
    picture = overlay_picture(large, 3000, 2000)
    assert picture.shape == (426, 640, 3)  # what the call holds while the model runs
    big = cv2.imdecode(np.frombuffer(overlay_png(picture, answer, 3000, 2000), np.uint8), cv2.IMREAD_COLOR)
    assert big.shape == (853, 1280, 3)
    assert overlay_picture(bgr, 600, 400) is bgr
    exact = cv2.imdecode(np.frombuffer(overlay_png(bgr, answer, 600, 400), np.uint8), cv2.IMREAD_COLOR)
    assert exact.shape == (400, 600, 3)
    # Background pixels are the photo itself; the table (11) is tinted with its colour.
    assert np.array_equal(exact[10, 10], bgr[10, 10])
    assert not np.array_equal(exact[130, 250], bgr[130, 250])


@pytest.mark.parametrize("shape", [(400, 600, 3), (1, 1, 3), (7, 2, 3)])
def test_the_overlay_png_holds_the_very_pixels(shape: tuple[int, int, int]) -> None:
    bgr = images.bgr("coffee.png")[: shape[0], : shape[1]] if shape[0] > 1 else np.full(shape, 250, np.uint8)
    if shape == (7, 2, 3):
        bgr = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    png = encode_rgb_png(bgr)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), bgr)


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "connection refused", errors.BackendUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", errors.DeadlineExceeded),
        (grpc.StatusCode.NOT_FOUND, "Servable not found", errors.ModelNotFound),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", errors.Overloaded),
        # gRPC's own refusal of an answer over the receive limit: the backend's fault, not load.
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (104857615 vs. 1024)", BackendFailed),
        (grpc.StatusCode.INTERNAL, "boom", BackendFailed),
    ],
)
def test_backend_errors_translate_to_the_domain_error_that_names_the_cause(
    code: grpc.StatusCode, details: str, expected: type[errors.GatewayError]
) -> None:
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
    assert type(translate(error, "tfs:8500", "model 'deeplab'")) is expected
