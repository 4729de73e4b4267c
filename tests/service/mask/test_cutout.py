"""Cut-outs from a photo and an alpha: each format decodes back to the photo's pixels and the alpha asked for, crops
follow the subject and stay in the photo, a colour replaces transparency, and bad options say what is accepted."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.errors import InvalidRequest, LimitExceeded
from service.mask.cutout import (
    Box,
    CutoutFormat,
    CutoutRequest,
    Margin,
    crop_box,
    hard_alpha,
    make_cutout,
    parse_colour,
    soft_alpha,
    subject_of,
)
from service.mask.grid import expand, expand_part, grid_for
from service.mask.probability import enlarged_levels
from service.mask.statistics import class_statistics
from tests import images

PHOTO = images.bgr("chelsea.png")  # 451x300
HEIGHT, WIDTH = PHOTO.shape[:2]


def _subject() -> np.ndarray:
    subject = np.zeros((HEIGHT, WIDTH), dtype=bool)
    subject[100:200, 150:300] = True
    subject[120:130, 160:170] = False  # a hole
    return subject


def _decoded(data: bytes) -> np.ndarray:
    found = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert found is not None
    return found


def _soft() -> np.ndarray:
    """An alpha of every level, over the whole photo."""
    return (np.arange(HEIGHT * WIDTH) % 256).astype(np.uint8).reshape(HEIGHT, WIDTH)


def test_a_png_cut_out_is_the_photo_with_the_alpha() -> None:
    whole = Box(0, 0, WIDTH, HEIGHT)
    alpha = _soft()
    cutout = make_cutout(PHOTO, alpha, whole, 123, CutoutRequest())
    bgra = _decoded(cutout.image)
    assert bgra.shape == (HEIGHT, WIDTH, 4)
    assert np.array_equal(bgra[:, :, :3], PHOTO) and np.array_equal(bgra[:, :, 3], alpha)
    assert (cutout.alpha, cutout.subject_pixels, cutout.box) == (b"", 123, whole)


def test_a_crop_follows_the_subject_with_its_margin_and_stays_in_the_photo() -> None:
    ids = _subject().astype(np.uint8) * 8  # the subject is class 8, on background
    ids[0:5, 0:5] = 3  # and a corner of another class
    stats = class_statistics(grid_for(ids, WIDTH, HEIGHT))
    subject, pixels = subject_of(stats, (8,))
    assert subject == Box(150, 100, 150, 100) and pixels == int((ids == 8).sum())
    assert subject_of(stats, ()) == (Box(0, 0, 300, 200), int((ids != 0).sum()))  # every class but 0
    assert subject_of(stats, (15,)) == (None, 0)

    def crop(request: CutoutRequest, found: Box | None = subject) -> Box:
        return crop_box(found, WIDTH, HEIGHT, request)

    assert crop(CutoutRequest()) == Box(0, 0, WIDTH, HEIGHT)
    assert crop(CutoutRequest(crop=True)) == Box(150, 100, 150, 100)
    assert crop(CutoutRequest(crop=True, margin=Margin(pixels=20))) == Box(130, 80, 190, 140)
    # 10 % of 150 and of 100.
    assert crop(CutoutRequest(crop=True, margin=Margin(percent=10))) == Box(135, 90, 180, 120)
    assert crop(CutoutRequest(crop=True, margin=Margin(pixels=500))) == Box(0, 0, WIDTH, HEIGHT)
    assert crop(CutoutRequest(crop=True), None) == Box(0, 0, WIDTH, HEIGHT)
    box = crop(CutoutRequest(crop=True, margin=Margin(pixels=5)))
    alpha = hard_alpha(ids[box.rows, box.columns], (8,))
    assert alpha.shape == (110, 160) and set(np.unique(alpha)) == {0, 255}
    assert np.array_equal(alpha == 255, _subject()[95:205, 145:305])
    bgra = _decoded(make_cutout(PHOTO, alpha, box, pixels, CutoutRequest(crop=True)).image)
    assert np.array_equal(bgra[:, :, :3], PHOTO[95:205, 145:305]) and np.array_equal(bgra[:, :, 3], alpha)


def test_a_part_of_a_mask_is_that_part_of_the_whole() -> None:
    ids = np.random.default_rng(4).integers(0, 21, size=(40, 30), dtype=np.uint8)
    grid = grid_for(ids, 700, 1500)  # enlarged: blocks of rows, the part across several
    whole = expand(grid)
    assert np.array_equal(expand_part(grid, slice(333, 1222), slice(17, 650)), whole[333:1222, 17:650])
    assert np.array_equal(expand_part(grid, slice(0, 1500), slice(0, 700)), whole)


def test_a_background_colour_replaces_transparency() -> None:
    whole = Box(0, 0, WIDTH, HEIGHT)
    alpha = _soft()
    request = CutoutRequest(background=parse_colour("#81d4fa"))
    rgb = _decoded(make_cutout(PHOTO, alpha, whole, 1, request).image)
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    a = alpha.astype(np.float64)[:, :, None] / 255
    expected = PHOTO * a + np.array([0xFA, 0xD4, 0x81]) * (1 - a)
    assert np.abs(rgb - expected).max() <= 0.5 + 1e-9
    assert np.array_equal(rgb[alpha == 255], PHOTO[alpha == 255])
    assert (rgb[alpha == 0] == [0xFA, 0xD4, 0x81]).all()


def test_webp_keeps_the_alpha_and_at_quality_100_every_pixel() -> None:
    box = Box(10, 20, 200, 150)
    alpha = _soft()[box.rows, box.columns]
    lossless = _decoded(make_cutout(PHOTO, alpha, box, 1, CutoutRequest(format=CutoutFormat.WEBP, quality=100)).image)
    assert np.array_equal(lossless[:, :, 3], alpha)
    seen = alpha > 0  # WebP may change the colour of pixels it cannot see
    assert np.array_equal(lossless[:, :, :3][seen], PHOTO[box.rows, box.columns][seen])
    lossy = make_cutout(PHOTO, alpha, box, 1, CutoutRequest(format=CutoutFormat.WEBP, quality=60))
    assert _decoded(lossy.image).shape == (150, 200, 4) and lossy.image[:4] == b"RIFF"


def test_jpeg_and_alpha_and_the_alpha_alone() -> None:
    box = Box(0, 0, WIDTH, HEIGHT)
    alpha = _soft()
    both = make_cutout(PHOTO, alpha, box, 1, CutoutRequest(format=CutoutFormat.JPEG_AND_ALPHA, quality=95))
    jpeg = _decoded(both.image)
    assert both.image[:2] == b"\xff\xd8" and jpeg.shape == PHOTO.shape
    assert np.abs(jpeg.astype(int) - PHOTO).mean() < 3  # the photo's pixels, not laid over anything
    assert np.array_equal(_decoded(both.alpha), alpha)
    matte = make_cutout(PHOTO, alpha, box, 1, CutoutRequest(format=CutoutFormat.ALPHA))
    assert matte.image == b"" and np.array_equal(_decoded(matte.alpha), alpha)


def test_a_soft_alpha_over_a_box_is_that_box_of_the_whole_enlargement() -> None:
    plane = np.random.default_rng(3).random((33, 33), dtype=np.float32)
    box = Box(37, 290, 300, 400)  # across bands of rows
    whole = enlarged_levels(plane, 451, 700)
    assert np.array_equal(soft_alpha(plane, (451, 700), box), whole[box.rows, box.columns])


def test_a_webp_past_its_side_is_refused_with_what_to_ask_for() -> None:
    tall = np.zeros((17000, 2, 3), np.uint8)
    with pytest.raises(LimitExceeded, match="past WebP's 16383 pixels a side: ask for CUTOUT_FORMAT_PNG"):
        make_cutout(
            tall, np.zeros((17000, 2), np.uint8), Box(0, 0, 2, 17000), 0, CutoutRequest(format=CutoutFormat.WEBP)
        )


@pytest.mark.parametrize(
    ("text", "rgb"), [("#81d4fa", (0x81, 0xD4, 0xFA)), ("81D4FA", (0x81, 0xD4, 0xFA)), ("#fff", (255, 255, 255))]
)
def test_colours_are_hex_rgb(text: str, rgb: tuple[int, int, int]) -> None:
    assert parse_colour(text) == rgb


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: parse_colour("red"), "give a hex RGB colour"),
        (lambda: parse_colour("#81d4fa00"), "give a hex RGB colour"),
        (lambda: CutoutRequest(margin=Margin(pixels=-1)), "crop_margin_px is -1; it is from 0 to 10000"),
        (lambda: CutoutRequest(margin=Margin(percent=float("nan"))), "crop_margin_percent is nan"),
        (lambda: CutoutRequest(quality=101), "quality is 101; it is from 1 to 100"),
        (
            lambda: CutoutRequest(format=CutoutFormat.ALPHA, background=(0, 0, 0)),
            "no effect on CUTOUT_FORMAT_ALPHA",
        ),
    ],
)
def test_bad_options_say_what_is_accepted(make: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make()  # type: ignore[operator]
