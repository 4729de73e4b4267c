"""The real curl binary against a real gateway and modelserver over HTTP: the README's command, an error, tokens."""

from __future__ import annotations

import json
import pathlib
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from tests.helpers import ServerProcess, http_base, start_gateway, wait_for_health
from tests.paths import CAT, GRPCURL, IMAGES, ROOT

SEGMENT = "/segmentation.v1.SegmentationService/SegmentImage"


def bash(command: str) -> str:
    """Runs a command line as a user would paste it, from the checkout (where ../shared is)."""
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def without_timing(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer but its times, and but the null of an unset message (grpcurl's -emit-defaults writes it; Connect
    leaves it out: both mean the same in proto3's JSON)."""
    answer = {key: value for key, value in answer.items() if value is not None}
    assert int(answer.pop("timing")["totalUs"]) > 0
    return answer


def test_the_readme_s_curl_command_answers_what_grpcurl_shows(gateway: ServerProcess, http_url: str) -> None:
    # The README's command as written (two lines), against this gateway's port instead of `make run`'s 8080.
    lines = (ROOT / "README.md").read_text().splitlines()
    first = lines.index("""printf '{"image":"%s"}' "$(base64 -w0 ../shared/images/chelsea.png)" \\""")
    command = "\n".join(lines[first : first + 2])
    assert f"curl -s localhost:8080{SEGMENT} " in command
    over_http = json.loads(bash(command.replace("localhost:8080", http_url.removeprefix("http://"))))
    grpcurl = f"{shlex.quote(str(GRPCURL))} -plaintext -emit-defaults -d @ {gateway.target} {SEGMENT.removeprefix('/')}"
    over_grpc = json.loads(
        bash(f"""printf '{{"image":"%s"}}' "$(base64 -w0 ../shared/images/chelsea.png)" | {grpcurl}""")
    )
    assert without_timing(over_http) == without_timing(over_grpc)
    cat = next(c for c in over_http["classes"] if c.get("classId") == CAT)
    assert cat["label"] == "cat" and over_http["mask"]["format"] == "MASK_FORMAT_PNG"


def test_an_error_is_connect_s_json_with_its_http_status(http_url: str) -> None:
    out = bash(
        f"curl -s -w '\\n%{{http_code}}' {http_url}{SEGMENT} -H 'Content-Type: application/json' "
        """-d '{"image":"R0lGODlhAQABAAAAACw="}'"""
    )
    body, status = out.rsplit("\n", 1)
    assert status == "400"
    error = json.loads(body)
    assert error["code"] == "invalid_argument" and "GIF" in error["message"] and set(error) == {"code", "message"}


@pytest.fixture(scope="module")
def guarded_gateway(modelserver: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens.write_text("# the web team\nweb-token\n")
    server = start_gateway(modelserver.target, f"--auth-tokens={tokens}", "--http-listen=127.0.0.1:0")
    wait_for_health(server.target, health_pb2.HealthCheckResponse.SERVING)
    yield server
    server.stop()


def test_bearer_tokens_over_http(guarded_gateway: ServerProcess, tmp_path: pathlib.Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"image": bash(f"base64 -w0 {IMAGES / 'chelsea.png'}")}))
    curl = f"curl -s -w '\\n%{{http_code}}' {http_base(guarded_gateway)}{SEGMENT} -H 'Content-Type: application/json'"
    body, status = bash(f"{curl} -d @{request}").rsplit("\n", 1)
    assert status == "401"
    assert json.loads(body) == {"code": "unauthenticated", "message": "missing or invalid bearer token"}
    body, status = bash(f"{curl} -H 'Authorization: Bearer web-token' -d @{request}").rsplit("\n", 1)
    assert status == "200" and any(c.get("classId") == CAT for c in json.loads(body)["classes"])
