"""The Python client library and the `segment` CLI against the live gateway."""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from typing import ClassVar

import cv2
import grpc
import numpy as np
import pytest

import segmentation_client.cli
import segmentation_client.client
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from segmentation_client import (
    InvalidImageError,
    Model,
    NotFoundError,
    Regions,
    SegmentationClient,
    StreamItem,
    UnavailableError,
    blend,
    colorize,
)
from tests import images
from tests.helpers import ServerProcess, free_port
from tests.paths import CAT, IMAGES, PERSON, ROOT

SEGMENT = [sys.executable, "-m", "segmentation_client.cli"]


def segment_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The `segment` CLI run from the repository, its output captured as text."""
    return subprocess.run([*SEGMENT, *args], capture_output=True, text=True, timeout=120, check=check, cwd=ROOT)


# Also catches imports inside functions, which a run only sees on the paths it takes.
IMPORTS_GATEWAY = re.compile(r"\s*(from|import)\s+(service|cv2)\b")


@pytest.fixture(scope="module")
def client(gateway: ServerProcess):  # type: ignore[no-untyped-def]
    with SegmentationClient(gateway.target, timeout=60) as c:
        yield c


def test_every_mask_format_round_trips_to_the_same_array(client: SegmentationClient) -> None:
    results = {fmt: client.segment(IMAGES / "chelsea.png", mask_format=fmt) for fmt in ("png", "raw", "rle")}
    masks = [r.mask for r in results.values()]
    assert all(m.shape == (300, 451) and m.dtype == np.uint8 for m in masks)
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[1], masks[2])
    png = results["png"]
    assert png.classes[0].label in ("background", "cat")
    cat = next(c for c in png.classes if c.class_id == CAT)
    assert cat.label == "cat" and cat.pixel_count == int((png.mask == CAT).sum())
    assert png.model_name == "deeplab" and png.model_version == 1
    assert png.image_size == (451, 300) and png.timings_us["total_us"] > 0
    assert png.source.endswith("chelsea.png")
    counted = client.segment(IMAGES / "chelsea.png", mask_format="none")
    assert counted.mask is None and counted.classes == png.classes and counted.image_size == png.image_size
    assert counted.summary()["mask"] == png.summary()["mask"] == {"width": 451, "height": 300}


def test_bytes_model_size_and_overlay(client: SegmentationClient) -> None:
    data = images.large_jpeg("astronaut.png", 1600, 1600)
    result = client.segment(data, mask_size="model", overlay=True, model=Model(name="deeplab", version=1))
    assert result.mask.shape == (513, 513)
    overlay = cv2.imdecode(np.frombuffer(result.overlay_png, np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape == (513, 513, 3)
    assert (result.mask == PERSON).mean() > 0.35


def test_errors_become_typed_exceptions(client: SegmentationClient) -> None:
    with pytest.raises(InvalidImageError) as bad:
        client.segment(b"not an image")
    assert "not an image" in bad.value.message and bad.value.code.name == "INVALID_ARGUMENT"
    with pytest.raises(NotFoundError):
        client.segment(IMAGES / "chelsea.png", model="resnet")
    with SegmentationClient(f"127.0.0.1:{free_port()}", timeout=3) as nowhere, pytest.raises(UnavailableError):
        nowhere.segment(IMAGES / "chelsea.png")
    with pytest.raises(ValueError, match="mask_format"):
        client.segment(IMAGES / "chelsea.png", mask_format="jpeg")  # type: ignore[arg-type]


def test_segment_many_streams_in_order_with_per_item_errors(client: SegmentationClient, tmp_path: pathlib.Path) -> None:
    inputs: list[bytes | pathlib.Path] = [IMAGES / "astronaut.png", b"garbage", images.webp("chelsea.png")]
    items = list(client.segment_many(inputs, mask_format="rle"))
    assert [i.index for i in items] == [0, 1, 2]
    assert items[0].result is not None and items[0].result.classes
    assert isinstance(items[1].error, InvalidImageError) and items[1].result is None
    assert items[2].result is not None and (items[2].result.mask == CAT).mean() > 0.6


def test_models_and_health(client: SegmentationClient) -> None:
    (model,) = client.models()
    assert model.name == "deeplab" and model.is_default and model.labels[CAT] == "cat"
    assert [(v.version, v.state) for v in model.versions] == [(1, "AVAILABLE")]
    assert client.health() == "SERVING"


def test_helpers_colour_and_blend() -> None:
    # PASCAL VOC's own colours, so masks coloured by the client match the service's and every VOC viewer's.
    ids = np.array([[0, 1, 8, 15, 20]], np.uint8)
    assert colorize(ids)[0].tolist() == [[0, 0, 0], [128, 0, 0], [64, 0, 0], [192, 128, 128], [0, 64, 128]]
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = PERSON
    mask[3, 0] = CAT
    colours = colorize(mask)
    assert colours.shape == (4, 6, 3) and tuple(colours[1, 2]) == (192, 128, 128) and tuple(colours[0, 0]) == (0, 0, 0)
    # Twice the mask's size: scaled down first; a flat image stays flat, so the tints are exact.
    image = np.full((8, 12, 3), 200, np.uint8)
    out = blend(image, mask)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (200, 200, 200)  # background untouched
    assert tuple(out[1, 2]) == (196, 164, 164) and tuple(out[2, 4]) == (196, 164, 164)  # halfway to person's colour
    assert tuple(out[3, 0]) == (132, 100, 100)  # halfway to cat's (64, 0, 0)
    assert tuple(blend(image, mask, alpha=0.25)[1, 2]) == (198, 182, 182)
    # At the mask's size the image is used as it is, pixel for pixel.
    ramp = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 2
    same = blend(ramp, mask)
    background = mask == 0
    assert np.array_equal(same[background], ramp[background])
    assert np.array_equal(same[1, 2], (ramp[1, 2].astype(int) + np.array([192, 128, 128])) // 2)


def test_client_package_imports_neither_the_gateway_nor_opencv() -> None:
    # It ships to callers who have neither: every helper runs, then the loaded modules are checked.
    script = (
        "import sys, numpy as np, segmentation_client\n"
        "from segmentation.v1 import segmentation_service_pb2 as pb\n"
        "mask = np.zeros((2, 3), np.uint8); mask[0, 1] = 15\n"
        "segmentation_client.blend(np.zeros((4, 6, 3), np.uint8), mask)\n"
        "segmentation_client.colorize(mask)\n"
        "runs = pb.RunLengths(values=[0, 15, 0], counts=[1, 1, 4])\n"
        "rle = pb.Mask(format=pb.MASK_FORMAT_RLE, width=3, height=2, rle=runs)\n"
        "assert (segmentation_client.decode_mask(rle) == mask).all()\n"
        "import io; from PIL import Image; png = io.BytesIO(); Image.fromarray(mask).save(png, 'PNG')\n"
        "png_mask = pb.Mask(format=pb.MASK_FORMAT_PNG, width=3, height=2, data=png.getvalue())\n"
        "assert (segmentation_client.decode_mask(png_mask) == mask).all()\n"
        "import segmentation_client.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('service', 'cv2'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    sources = sorted((ROOT / "clients" / "python").rglob("*.py"))
    imports = [f"{p}: {line}" for p in sources for line in p.read_text().splitlines() if IMPORTS_GATEWAY.match(line)]
    assert sources and not imports


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "cat.jpg").write_bytes(images.jpeg("chelsea.png"))
    (folder / "person.webp").write_bytes(images.webp("astronaut.png"))
    (folder / "gray.png").write_bytes(images.grayscale_png("chelsea.png"))
    (folder / "big.jpg").write_bytes(images.large_jpeg("coffee.png", 2400, 1600))
    (folder / "phone.heic").write_bytes(images.heic("chelsea.png", orientation=6))
    (folder / "android.avif").write_bytes(images.avif("astronaut.png"))
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


def test_cli_writes_mask_overlay_and_summary_with_a_progress_bar(
    gateway: ServerProcess, photo_folder: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    result = segment_cli(str(photo_folder), "--server", gateway.target, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "6/6" in result.stderr  # the progress bar reached the end
    assert "skipped 1 file(s) not named as an image: notes.txt" in result.stderr
    assert "cat.jpg: " in result.stdout and "cat" in result.stdout
    sizes = {"cat": (300, 451), "person": (512, 512), "gray": (300, 451), "big": (1600, 2400)}
    sizes |= {"phone": (451, 300), "android": (512, 512)}  # the HEIC turned by its container
    for stem, (height, width) in sizes.items():
        overlay = cv2.imread(str(out / f"{stem}.overlay.png"), cv2.IMREAD_COLOR)
        # At the mask's size, or at most 1280 px on its longest side (2400x1600 -> 1280x853).
        overlay_size = (height, width) if max(height, width) <= 1280 else (853, 1280)
        assert overlay is not None and overlay.shape == (*overlay_size, 3)
        mask = images.decode_png_indices((out / f"{stem}.mask.png").read_bytes())
        assert mask.shape == (height, width)
        summary = json.loads((out / f"{stem}.json").read_text())
        assert summary["mask"] == {"width": width, "height": height}
        assert sum(c["pixel_count"] for c in summary["classes"]) == width * height
    assert json.loads((out / "cat.json").read_text())["classes"][0]["label"] in ("cat", "background")


def test_cli_json_mode_and_errors(gateway: ServerProcess, tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    result = segment_cli(str(IMAGES / "chelsea.png"), str(bad), "--server", gateway.target, "--json", "--quiet")
    assert result.returncode == 1
    parsed = json.loads(result.stdout)
    assert parsed[0]["classes"] and parsed[1]["error"]["code"] == "INVALID_ARGUMENT"
    assert result.stderr.strip().splitlines()[-1].startswith(f"segment: error: {bad}: INVALID_ARGUMENT")

    down = segment_cli(str(IMAGES / "chelsea.png"), "--server", f"127.0.0.1:{free_port()}", "--json")
    assert down.returncode == 2
    assert down.stderr.strip().splitlines()[-1].startswith("segment: error: cannot reach the service at 127.0.0.1:")

    missing = segment_cli("/nonexistent.jpg")
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr


def test_regions_through_the_library_and_the_cli(client: SegmentationClient, gateway: ServerProcess) -> None:
    result = client.segment(
        IMAGES / "chelsea.png", mask_format="raw", regions=Regions(("cat",), polygons=True, tolerance=0, coco_rle=True)
    )
    assert result.regions and {r.label for r in result.regions} == {"cat"}
    assert sum(r.area for r in result.regions) == (result.mask == CAT).sum()
    biggest = result.regions[0]
    assert biggest.polygons[0].points.shape[1] == 2 and not biggest.polygons[0].hole
    assert biggest.coco_rle is not None and biggest.coco_rle["size"] == list(result.mask.shape)
    assert "regions" not in client.segment(IMAGES / "chelsea.png", mask_format="none").summary()

    cli = segment_cli(
        str(IMAGES / "chelsea.png"), "--server", gateway.target, "--json", "--quiet", "--regions", "cat", "--coco-rle"
    )
    assert cli.returncode == 0, cli.stderr
    [summary] = json.loads(cli.stdout)
    assert [r["area"] for r in summary["regions"]] == [r.area for r in result.regions]
    assert summary["regions"][0]["coco_rle"] == biggest.coco_rle and "polygons" not in summary["regions"][0]


def test_cli_models_and_health(gateway: ServerProcess) -> None:
    models = segment_cli("models", "--server", gateway.target, check=True)
    assert "deeplab (default): input 513 px, 21 labels, versions: 1 AVAILABLE" in models.stdout
    health = segment_cli("health", "--server", gateway.target, check=True)
    assert health.stdout.strip() == "SERVING"


def test_segment_many_turns_an_unreadable_file_into_its_own_item_in_order(
    client: SegmentationClient, tmp_path: pathlib.Path
) -> None:
    missing = tmp_path / "missing.jpg"
    inputs: list[bytes | pathlib.Path] = [missing, IMAGES / "chelsea.png", tmp_path, missing, b"garbage", missing]
    items = list(client.segment_many(inputs, mask_format="rle"))
    assert [i.index for i in items] == [0, 1, 2, 3, 4, 5]
    assert [type(i.error).__name__ if i.error else "ok" for i in items] == [
        "InvalidImageError",
        "ok",
        "InvalidImageError",
        "InvalidImageError",
        "InvalidImageError",
        "InvalidImageError",
    ]
    assert "cannot read" in items[0].error.message and str(missing) in items[0].error.message  # type: ignore[union-attr]
    assert "cannot read" not in items[4].error.message  # type: ignore[union-attr]  # the service refused this one
    assert items[1].result is not None and items[1].source.endswith("chelsea.png")


def test_cli_keeps_outputs_of_inputs_sharing_a_name_and_only_claims_what_it_wrote(
    gateway: ServerProcess, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "a.jpg").write_bytes(images.jpeg("chelsea.png"))
    (tmp_path / "a.png").write_bytes(images.png("astronaut.png"))
    (tmp_path / "b.gif").write_bytes(images.gif())
    out = tmp_path / "out"
    run = ["--server", gateway.target, "--out", str(out), "--quiet"]
    result = segment_cli(*run, str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), "--mask-format", "rle", "--no-overlay")
    assert result.returncode == 0, result.stderr
    assert "wrote results for 2 of 2 images" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a-2.json", "a-2.mask.png", "a.json", "a.mask.png"]
    assert images.decode_png_indices((out / "a.mask.png").read_bytes()).shape == (300, 451)  # made from the RLE
    assert images.decode_png_indices((out / "a-2.mask.png").read_bytes()).shape == (512, 512)
    refused = segment_cli(*run, str(tmp_path / "b.gif"))
    assert refused.returncode == 1 and "GIF" in refused.stderr and "wrote" not in refused.stdout


def test_segment_many_makes_any_input_it_cannot_read_its_own_item(client: SegmentationClient) -> None:
    # Not only OSErrors: what is neither bytes nor a path, or a path the OS refuses, fails alone and in its place.
    inputs: list[object] = [42, IMAGES / "chelsea.png", "a\0b.jpg", None, b"garbage"]
    items = list(client.segment_many(inputs, mask_format="rle"))  # type: ignore[arg-type]
    assert [i.index for i in items] == [0, 1, 2, 3, 4]
    assert [type(i.error).__name__ if i.error else "ok" for i in items] == [
        "InvalidImageError",
        "ok",
        "InvalidImageError",
        "InvalidImageError",
        "InvalidImageError",
    ]
    assert items[0].error.message == "cannot read 42: an image is bytes or a path, not int"  # type: ignore[union-attr]
    assert "null byte" in items[2].error.message and "NoneType" in items[3].error.message  # type: ignore[union-attr]
    assert items[1].result is not None and (items[1].result.mask == CAT).mean() > 0.6

    # An iterable that fails: the answers to what came before it, then its own exception, not a cancelled call.
    def failing() -> Iterator[object]:
        yield IMAGES / "chelsea.png"
        yield 3.5
        yield b"garbage"
        raise LookupError("the caller's own failure")

    got: list[StreamItem] = []
    with pytest.raises(LookupError, match="the caller's own failure"):
        got.extend(client.segment_many(failing(), mask_format="rle"))  # type: ignore[arg-type]
    assert [(i.index, i.result is not None) for i in got] == [(0, True), (1, False), (2, False)]

    # An option that no request can have fails the call before it starts, as for segment().
    with pytest.raises(ValueError, match="mask_format"):
        next(client.segment_many([b"garbage"], mask_format="jpeg"))  # type: ignore[arg-type]


class _SlowRefuser(pb_grpc.SegmentationServiceServicer):
    """Answers each stream item, a little late, with an INVALID_ARGUMENT error, as the gateway numbers them."""

    def SegmentImageStream(self, request_iterator, context):  # type: ignore[no-untyped-def]  # noqa: N802
        for index, item in enumerate(request_iterator):
            time.sleep(0.0005)
            yield pb.SegmentImageStreamResponse(index=index, id=item.id, error=pb.ItemError(code=3, message="no"))


def test_segment_many_shares_its_bookkeeping_safely_with_grpcs_request_thread(tmp_path: pathlib.Path) -> None:
    # gRPC reads the inputs on its own thread, noting the unreadable ones, while the caller's thread merges them with
    # the answers. With thread switches as often as possible and many unreadable inputs between the answers, a dict
    # iterated on one side while the other inserts raised "dictionary changed size during iteration" within a run.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_SegmentationServiceServicer_to_server(_SlowRefuser(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    missing = tmp_path / "missing.jpg"
    inputs = [b"x" if i % 10 == 0 else missing for i in range(20_000)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with SegmentationClient(f"127.0.0.1:{port}") as refused:
            items = list(refused.segment_many(inputs))
    finally:
        sys.setswitchinterval(interval)
        server.stop(None)
    assert [i.index for i in items] == list(range(len(inputs)))
    assert all(isinstance(i.error, InvalidImageError) for i in items)
    assert [i.error.message for i in items[:2]] == ["no", f"cannot read {missing}: No such file or directory"]  # type: ignore[union-attr]


class _RecordingClient:
    """Stands in for SegmentationClient in the CLI: records the timeouts it is given."""

    calls: ClassVar[list[tuple[str, object]]] = []

    def __init__(self, target: str, *, timeout: float) -> None:
        self.calls.append(("client", timeout))

    def __enter__(self) -> _RecordingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def segment_many(self, images: list[pathlib.Path], **options: object) -> Iterator[StreamItem]:
        self.calls.append(("segment_many", options.get("timeout")))
        return iter([])

    def health(self, timeout: float | None = None) -> str:
        self.calls.append(("health", timeout))
        return "SERVING"


def test_cli_timeout_is_per_image_over_the_whole_stream(
    gateway: ServerProcess, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three images stream over one call: its deadline is three times --timeout. Health gets --timeout as it is.
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"unread")
    monkeypatch.setattr(segmentation_client.cli, "SegmentationClient", _RecordingClient)
    monkeypatch.setattr(_RecordingClient, "calls", [])
    assert segmentation_client.cli.main([str(tmp_path), "--timeout", "2.5", "--json", "--quiet"]) == 0
    assert segmentation_client.cli.main(["health", "--timeout", "4"]) == 0
    assert _RecordingClient.calls == [("client", 2.5), ("segment_many", 7.5), ("client", 4.0), ("health", 4.0)]
    capsys.readouterr()
    # The real thing: a millisecond is not enough to segment a photo, and the stream has that deadline.
    result = segment_cli(str(IMAGES / "chelsea.png"), "--server", gateway.target, "--timeout", "0.001", "--json")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("segment: error: DEADLINE_EXCEEDED")


def test_segment_reports_an_input_it_cannot_read_as_segment_many_does(
    client: SegmentationClient, tmp_path: pathlib.Path
) -> None:
    """One behaviour for both calls: the library's InvalidImageError naming the input, never an OSError."""
    for unreadable in (tmp_path / "missing.jpg", tmp_path, 42, "a\0b.jpg"):
        with pytest.raises(InvalidImageError, match="cannot read") as raised:
            client.segment(unreadable)  # type: ignore[arg-type]
        (item,) = client.segment_many([unreadable])  # type: ignore[list-item]
        assert type(item.error) is type(raised.value) and item.error.message == raised.value.message  # type: ignore[union-attr]


def test_cli_says_which_port_it_used_and_writes_nothing_when_the_service_is_down(tmp_path: pathlib.Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    down = segment_cli(str(IMAGES / "chelsea.png"), "--server", f"127.0.0.1:{port}", "--out", str(out), "--quiet")
    assert down.returncode == 2 and "Traceback" not in down.stderr
    last = down.stderr.strip().splitlines()[-1]
    assert last.startswith(f"segment: error: cannot reach the service at 127.0.0.1:{port}")
    assert f"nothing written to {out}/" in down.stderr and not out.exists()
    with socket.socket() as probe:
        taken = probe.connect_ex(("127.0.0.1", 50051)) == 0
    if not taken:  # a gateway of `make run` would answer there
        bare = segment_cli("health", "--server", "127.0.0.1", "--timeout", "2")
        assert bare.returncode == 2
        assert "cannot reach the service at 127.0.0.1:50051" in bare.stderr, bare.stderr


def test_cli_skips_other_files_aloud_and_creates_no_folder_when_every_image_fails(
    gateway: ServerProcess, tmp_path: pathlib.Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff not really")
    (folder / "b.png").write_bytes(b"neither")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    result = segment_cli(str(folder), "--server", gateway.target, "--out", str(out), "--quiet")
    assert result.returncode == 1, result.stderr
    assert "segment: skipped 1 file(s) not named as an image: notes.txt" in result.stderr
    assert f"nothing written to {out}/" in result.stdout
    assert not out.exists()


def test_cli_refuses_to_mix_runs_in_one_folder_unless_told_to_overwrite(
    gateway: ServerProcess, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    (tmp_path / "first" / "a.jpg").write_bytes(images.jpeg("chelsea.png"))  # 451 x 300
    (tmp_path / "second" / "a.png").write_bytes(images.png("astronaut.png"))  # 512 x 512
    out = tmp_path / "out"
    run = ["--server", gateway.target, "--out", str(out), "--quiet"]
    assert segment_cli(str(tmp_path / "first" / "a.jpg"), *run).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["a.json", "a.mask.png", "a.overlay.png"]

    refused = segment_cli(str(tmp_path / "second" / "a.png"), *run, "--no-overlay")
    assert refused.returncode == 2
    assert "already holds results under these names (a.mask.png, a.overlay.png, a.json)" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    replaced = segment_cli(str(tmp_path / "second" / "a.png"), *run, "--no-overlay", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    # The first photo's overlay is not left beside the second photo's mask.
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.mask.png"]
    assert images.decode_png_indices((out / "a.mask.png").read_bytes()).shape == (512, 512)
    assert json.loads((out / "a.json").read_text())["source"].endswith("second/a.png")


def test_cli_into_a_closed_pipe_ends_quietly(gateway: ServerProcess) -> None:
    # `true` has exited before the results are printed: the write meets a closed pipe.
    command = [*SEGMENT, str(IMAGES / "chelsea.png"), "--server", gateway.target, "--json", "--quiet"]
    script = f"set -o pipefail; {' '.join(map(shlex.quote, command))} | true"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""


def test_cli_interrupted_says_what_it_wrote_and_leaves_only_whole_files(
    gateway: ServerProcess, tmp_path: pathlib.Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    photo = images.large_jpeg("coffee.png", 2400, 1600)
    for n in range(40):
        (folder / f"p{n:02}.jpg").write_bytes(photo)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*SEGMENT, str(folder), "--server", gateway.target, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and any(out.glob("*.json"))) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    written = sorted(out.glob("*.json"))
    assert f"wrote results for {len(written)} of 40 images to {out}/" in stderr
    assert 0 < len(written) < 40 and stderr.strip().endswith("segment: interrupted")
    assert not [p.name for p in out.iterdir() if not p.name.endswith((".json", ".mask.png", ".overlay.png"))]
    for summary in written:
        stem = summary.name.removesuffix(".json")
        assert json.loads(summary.read_text())["files"]["mask"] == f"{stem}.mask.png"
        assert images.decode_png_indices((out / f"{stem}.mask.png").read_bytes()).shape == (1600, 2400)
        assert cv2.imread(str(out / f"{stem}.overlay.png")) is not None
