"""python -m tests.fuzz TARGET [libFuzzer flags]: runs a target under atheris (coverage-guided).

Seeds are made at start from the shared photos (small JPEG, PNG, WebP, BMP, TIFF, HEIC, AVIF, with and without
EXIF or the container's rotation), and a
request and a stream item, into a temporary corpus; a crash is written to tests/fuzz/regressions/TARGET/, where the
test suite replays it from then on.
Examples: `python -m tests.fuzz probe -atheris_runs=20000`, `python -m tests.fuzz decode -max_total_time=300`.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import atheris
import cv2

with atheris.instrument_imports(include=["service", "segmentation_client"]):
    from tests.fuzz.targets import TARGETS

from segmentation.v1 import segmentation_service_pb2 as pb
from tests import images
from tests.fuzz.targets import mask_from_bytes  # noqa: F401 (instrumented above)

HERE = pathlib.Path(__file__).parent


def write_seeds(directory: pathlib.Path) -> None:
    for name in ("astronaut.png", "chelsea.png", "coffee.png"):
        small = cv2.resize(images.bgr(name), (48, 32), interpolation=cv2.INTER_AREA)
        for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff"):
            (directory / f"{name}{ext}").write_bytes(images.encode(small, ext))
        (directory / f"{name}.exif6.jpg").write_bytes(images.with_orientation(images.encode(small, ".jpg"), 6))
        small_rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        (directory / f"{name}.heic").write_bytes(images.heic_of(small_rgb))
        (directory / f"{name}.exif6.heic").write_bytes(images.heic_of(small_rgb, orientation=6))
        (directory / f"{name}.avif").write_bytes(images.avif_of(small_rgb))
    (directory / "mask-rle").write_bytes(b"\x03\x02\x00\x02\x00" + b"\x0f\x04\x00\x00\x00")
    (directory / "mask-raw").write_bytes(b"\x02\x02\x00\x01\x00\x00\x0f")
    request = pb.SegmentImageRequest(image=b"\xff\xd8\xff", model=pb.ModelSelector(name="m", version=2), mask_format=2)
    (directory / "request").write_bytes(request.SerializeToString())
    (directory / "stream-item").write_bytes(pb.SegmentImageStreamRequest(request=request, id="a").SerializeToString())


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print(f"usage: python -m tests.fuzz {'|'.join(TARGETS)} [libFuzzer flags]", file=sys.stderr)
        sys.exit(2)
    name, flags = sys.argv[1], sys.argv[2:]
    artifacts = HERE / "regressions" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus:
        write_seeds(pathlib.Path(corpus))
        argv = [sys.argv[0], *flags, f"-artifact_prefix={artifacts}/", "-rss_limit_mb=2048", "-timeout=10", corpus]
        atheris.Setup(argv, TARGETS[name])
        atheris.Fuzz()


if __name__ == "__main__":
    main()
