"""The real grpcurl binary against the gateway, with no proto files: reflection, JSON, health."""

from __future__ import annotations

import base64
import json
import subprocess

from tests import images
from tests.helpers import ServerProcess
from tests.paths import CAT, GRPCURL


def grpcurl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(GRPCURL), "-plaintext", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_shows_the_service_health_and_reflection(gateway: ServerProcess) -> None:
    services = grpcurl(gateway.target, "list").split()
    assert "segmentation.v1.SegmentationService" in services
    assert "grpc.health.v1.Health" in services
    assert any(s.startswith("grpc.reflection.") for s in services)


def test_describe_shows_the_documented_api(gateway: ServerProcess) -> None:
    service = grpcurl(gateway.target, "describe", "segmentation.v1.SegmentationService")
    assert (
        "rpc SegmentImage ( .segmentation.v1.SegmentImageRequest ) returns ( .segmentation.v1.SegmentImageResponse )"
        in service
    )
    request = grpcurl(gateway.target, "describe", "segmentation.v1.SegmentImageRequest")
    assert "bytes image = 1;" in request
    assert ".segmentation.v1.MaskFormat mask_format = 3;" in request


def test_segment_image_from_json_with_a_base64_image(gateway: ServerProcess) -> None:
    body = json.dumps({"image": base64.b64encode(images.jpeg("chelsea.png")).decode(), "maskFormat": "MASK_FORMAT_RLE"})
    out = json.loads(grpcurl("-d", "@", gateway.target, "segmentation.v1.SegmentationService/SegmentImage", stdin=body))
    assert out["mask"]["width"] == 451 and out["mask"]["height"] == 300
    assert out["mask"]["format"] == "MASK_FORMAT_RLE"
    assert sum(out["mask"]["rle"]["counts"]) == 451 * 300
    cat = next(c for c in out["classes"] if c.get("classId") == CAT)
    assert cat["label"] == "cat" and cat["fraction"] > 0.6
    assert out["model"]["name"] == "deeplab"


def test_health_check(gateway: ServerProcess) -> None:
    out = json.loads(grpcurl(gateway.target, "grpc.health.v1.Health/Check"))
    assert out == {"status": "SERVING"}
    out = json.loads(
        grpcurl(
            "-d", '{"service": "segmentation.v1.SegmentationService"}', gateway.target, "grpc.health.v1.Health/Check"
        )
    )
    assert out == {"status": "SERVING"}


def test_the_readme_s_first_call_shows_what_was_found_and_its_zeros(gateway: ServerProcess) -> None:
    body = json.dumps({"image": base64.b64encode(images.png("chelsea.png")).decode(), "maskFormat": "MASK_FORMAT_NONE"})
    text = grpcurl(
        "-emit-defaults", "-d", "@", gateway.target, "segmentation.v1.SegmentationService/SegmentImage", stdin=body
    )
    assert len(text.splitlines()) < 80  # a screen, not a mask's runs
    out = json.loads(text)
    assert out["mask"] == {"width": 451, "height": 300, "format": "MASK_FORMAT_NONE"}
    background = next(c for c in out["classes"] if c["label"] == "background")
    assert background["classId"] == 0 and background["boundingBox"]["x"] == 0  # written, not left out
    assert next(c for c in out["classes"] if c["classId"] == CAT)["fraction"] > 0.6
    assert int(out["timing"]["totalUs"]) > 0


def test_a_health_check_of_an_unknown_service_names_the_known_ones(gateway: ServerProcess) -> None:
    result = subprocess.run(
        [
            str(GRPCURL),
            "-plaintext",
            "-d",
            '{"service": "segmentation.v1.Segmentation"}',
            gateway.target,
            "grpc.health.v1.Health/Check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "NotFound" in result.stderr
    assert "no health status for service 'segmentation.v1.Segmentation'" in result.stderr
    assert "'segmentation.v1.SegmentationService' (the service), 'segmentation.v1.SegmentationService/<model>'" in (
        result.stderr
    )
    assert "deeplab" not in result.stderr  # health is open to callers who may not list the models
