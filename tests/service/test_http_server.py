"""The service over HTTP in-process, over fake backends: Connect JSON and gRPC-Web reach the gRPC servicer through the
gRPC interceptors; Connect's error format and HTTP statuses; limits, tokens, request ids, metrics; the page's files."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import pathlib
import re
import socket
import ssl
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
import pytest
import trustme
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from google.protobuf import json_format

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1.segmentation_service_connect import SegmentationServiceClientSync
from service.api.status import BACKEND_FAILED_MESSAGE
from service.auth.credentials import DENIED_MESSAGE
from service.config import ConfigError, Limits
from service.flags import load_config
from tests import images
from tests.fakes import FakeBackend
from tests.inprocess import Running, running, two_model_config

PATH = "/segmentation.v1.SegmentationService/"
IMAGE = images.png("chelsea.png")
IMAGE_JSON = {"image": base64.b64encode(IMAGE).decode()}
JSON = {"Content-Type": "application/json"}


@contextmanager
def serving(**settings: Any) -> Iterator[tuple[Running, str, dict[str, FakeBackend]]]:
    """A gateway in-process with --http-listen on a free port: the running gateway, its HTTP base URL, its backends."""
    config, backends = two_model_config(http_listen="127.0.0.1:0", **settings)
    with running(config, backends) as served:
        assert served.gateway.http is not None
        yield served, f"http://127.0.0.1:{served.gateway.http.port}", backends


def post(
    url: str, body: bytes | Mapping[str, Any], headers: Mapping[str, str] = JSON, context: ssl.SSLContext | None = None
) -> tuple[int, Mapping[str, str], bytes]:

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def as_dict(message: Any) -> dict[str, Any]:
    """A message as proto JSON, without the timings, which differ from call to call."""
    answer = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    answer.pop("timing", None)
    return answer


def test_json_answers_are_the_grpc_answers() -> None:
    request = pb.SegmentImageRequest(image=IMAGE, mask_format=pb.MASK_FORMAT_RLE, include_overlay=True)
    with serving() as (served, base, _):
        status, headers, body = post(base + PATH + "SegmentImage", json_format.MessageToDict(request))
        assert status == 200 and headers["Content-Type"] == "application/json"
        answer = json.loads(body)
        assert int(answer.pop("timing")["totalUs"]) > 0
        assert answer == as_dict(served.stub.SegmentImage(request, timeout=10))
        assert answer["classes"][-1]["classId"] == 15 and answer["model"] == {
            "name": "deeplab",
            "version": "1",
            "signatureName": "serving_default",
            "variant": "",
        }
        # Zeros are written, which proto3 JSON leaves out by default: background's id, a box at the corner.
        background = answer["classes"][0]
        assert background["classId"] == 0 and background["boundingBox"]["x"] == 0
        assert background["boundingBox"]["y"] == 0
        status, _, body = post(base + PATH + "ListModels", {})
        assert status == 200
        listed = served.stub.ListModels(pb.ListModelsRequest(), timeout=10)
        assert json.loads(body) == json_format.MessageToDict(listed, always_print_fields_with_no_presence=True)


def _connect_error(body: bytes) -> tuple[str, str]:
    error = json.loads(body)
    assert set(error) == {"code", "message"}, error
    return error["code"], error["message"]


@pytest.mark.parametrize(
    ("case", "grpc_code", "http_status"),
    [
        ("not an image", grpc.StatusCode.INVALID_ARGUMENT, 400),
        ("over max_image_bytes", grpc.StatusCode.INVALID_ARGUMENT, 400),
        ("negative version", grpc.StatusCode.INVALID_ARGUMENT, 400),
        ("unknown model", grpc.StatusCode.NOT_FOUND, 404),
        ("backend down", grpc.StatusCode.UNAVAILABLE, 503),
        ("backend answer unusable", grpc.StatusCode.INTERNAL, 500),
    ],
)
def test_domain_errors_reach_http_through_the_one_status_mapping(
    case: str, grpc_code: grpc.StatusCode, http_status: int
) -> None:
    request = pb.SegmentImageRequest(image=b"GIF89a not really" if case == "not an image" else IMAGE)
    limits = Limits(max_image_bytes=len(IMAGE) - 1) if case == "over max_image_bytes" else Limits()
    with serving(limits=limits) as (served, base, fakes):
        if case == "negative version":
            request.model.version = -1
        elif case == "unknown model":
            request.model.name = "nope"
        elif case == "backend down":
            fakes["a"].down = True
        elif case == "backend answer unusable":
            fakes["a"].answer = lambda spec, tensor: np.zeros((1, 3, 3), np.int64)
        with pytest.raises(grpc.RpcError) as over_grpc:
            served.stub.SegmentImage(request, timeout=10)
        status, headers, body = post(base + PATH + "SegmentImage", json_format.MessageToDict(request))
    assert over_grpc.value.code() == grpc_code
    assert (status, headers["Content-Type"]) == (http_status, "application/json")
    # Connect's code is gRPC's, by name; the message is the one the gRPC caller got (each with its own request id).
    without_id = re.compile(r" \(request id \w+\)$")
    code, message = _connect_error(body)
    assert (code, without_id.sub("", message)) == (
        grpc_code.name.lower(),
        without_id.sub("", over_grpc.value.details()),
    )
    if case == "backend answer unusable":
        assert over_grpc.value.details() == BACKEND_FAILED_MESSAGE


def test_requests_refused_before_a_call_say_why_in_connect_s_json() -> None:
    with serving() as (_, base, backends):
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        connection.request("POST", PATH + "SegmentImage", body=json.dumps(IMAGE_JSON))  # no Content-Type
        answer = connection.getresponse()
        assert answer.status == 415 and answer.headers["Content-Type"] == "application/json"
        assert "application/json" in answer.headers["Accept-Post"]
        code, message = _connect_error(answer.read())
        connection.close()
        assert code == "invalid_argument" and message.startswith("no Content-Type was sent; send application/json")
        status, _, body = post(base + PATH + "SegmentImage", IMAGE_JSON, headers={"Content-Type": "text/plain"})
        assert status == 415 and "Content-Type 'text/plain' is not one this API takes" in _connect_error(body)[1]
        status, _, body = post(base + PATH + "SegmentImage", b"")
        assert status == 400 and "the body is empty: send the request as JSON: {} for" in _connect_error(body)[1]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + PATH + "ListModels", timeout=10)  # a GET
        with refused.value as error:
            assert error.code == 405 and "GET is not how this API is called: POST" in _connect_error(error.read())[1]
    assert not any(backend.calls for backend in backends.values())


def test_the_caller_s_deadline_is_the_connect_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with serving() as (_, base, fakes), caplog.at_level(logging.INFO, logger="service"):
        fakes["a"].delay_s = 3
        start = time.monotonic()
        status, _, body = post(base + PATH + "SegmentImage", IMAGE_JSON, {**JSON, "Connect-Timeout-Ms": "300"})
        assert time.monotonic() - start < 2
    assert status == 504 and _connect_error(body)[0] == "deadline_exceeded"
    [line] = [r.getMessage() for r in caplog.records if r.name == "service.api.interceptors"]
    assert line.startswith("SegmentImage DEADLINE_EXCEEDED "), line


def test_load_shedding_counts_http_and_grpc_calls_in_one_place() -> None:
    with serving(max_concurrent_calls=1, max_queue_wait_s=0.2) as (served, base, fakes):
        fakes["a"].delay_s = 1.0
        over_grpc = threading.Thread(
            target=lambda: served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=10)
        )
        over_grpc.start()
        time.sleep(0.3)  # the gRPC call holds the one place
        status, headers, body = post(base + PATH + "SegmentImage", IMAGE_JSON)
        over_grpc.join()
        shed = served.gateway.metrics.registry.get_sample_value("segmentation_shed_total")
    assert status == 429
    code, message = _connect_error(body)
    assert code == "resource_exhausted" and "places for images in progress stayed taken for 0.2 s" in message
    assert int(headers["retry-after"]) >= 1  # HTTP's retry hint, beside gRPC's grpc-retry-pushback-ms
    assert shed == 1


def test_request_ids_log_lines_and_metrics_are_the_grpc_ones(caplog: pytest.LogCaptureFixture) -> None:
    with serving() as (served, base, _), caplog.at_level(logging.INFO, logger="service"):
        url = base + PATH + "SegmentImage"
        status, headers, _ = post(url, IMAGE_JSON, {**JSON, "X-Request-Id": "http-1"})
        assert status == 200 and headers["x-request-id"] == "http-1"
        status, headers, _ = post(url, {"image": "bm9wZQ=="}, {**JSON, "x-request-id": "http-2"})
        assert status == 400 and headers["x-request-id"] == "http-2"
        status, headers, _ = post(url, IMAGE_JSON)
        generated = headers["x-request-id"]
        assert len(generated) == 32
        value = served.gateway.metrics.registry.get_sample_value

        def count(code: str) -> float | None:
            labels = {"method": "SegmentImage", "code": code, "model": "deeplab", "variant": ""}
            return value("segmentation_requests_total", labels)

        assert (count("OK"), count("INVALID_ARGUMENT")) == (2, 1)
    lines = [(r.request_id, r.getMessage()) for r in caplog.records if r.name == "service.api.interceptors"]
    assert [line[0] for line in lines] == ["http-1", "http-2", generated]
    assert lines[1][1].startswith("SegmentImage INVALID_ARGUMENT bytes=4 ")


def test_grpc_web_with_connectrpc_s_own_client() -> None:
    with serving() as (served, base, _):
        with SegmentationServiceClientSync(base, protocol=ProtocolType.GRPC_WEB, send_compression=None) as client:
            request = pb.SegmentImageRequest(image=IMAGE, mask_size=pb.MASK_SIZE_MODEL)
            assert as_dict(client.segment_image(request)) == as_dict(served.stub.SegmentImage(request, timeout=10))
            with pytest.raises(ConnectError) as refused:
                client.segment_image(pb.SegmentImageRequest(image=b"nope"))
            assert refused.value.code == Code.INVALID_ARGUMENT and "not an image" in refused.value.message
        # Connect's own streaming protocol (binary) carries SegmentImageStream, a bad item failing alone.
        with SegmentationServiceClientSync(base, send_compression=None) as client:
            items = [
                pb.SegmentImageStreamRequest(id="good", request=pb.SegmentImageRequest(image=IMAGE)),
                pb.SegmentImageStreamRequest(id="bad", request=pb.SegmentImageRequest(image=b"nope")),
            ]
            answers = list(client.segment_image_stream(iter(items)))
    assert [(a.id, a.WhichOneof("outcome")) for a in answers] == [("good", "result"), ("bad", "error")]
    assert answers[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def _raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Sends `head` and `body` (which may be less than the head's Content-Length, or nothing: the answer may come
    from the headers alone), then reads what comes back until the server closes the connection (the heads say
    `Connection: close`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"


def test_bodies_over_the_limit_are_refused_before_they_are_read() -> None:
    limit = -(-4 * 1000 // 3) + (64 << 10)  # the HTTP body limit for this max_image_bytes: base64 and the fields
    with serving(limits=Limits(max_image_bytes=1000)) as (served, base, _):
        assert served.gateway.http is not None
        port = served.gateway.http.port
        # Connect JSON announcing 64 MiB: refused from its headers, before a byte of the body is sent.
        head = (
            f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {64 << 20}\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = _raw_request(port, head)
        assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
        assert b'"code": "resource_exhausted"' in answer and f"over the limit of {limit}".encode() in answer
        # Chunked, so no length to go by: refused once a little more than the limit is read (all of what is sent
        # is read: a server that closes on unread bytes resets the connection).
        head = (
            f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = _raw_request(port, head, _chunked(b'{"image": "' + b"A" * (limit + 1000)))
        assert answer.startswith(b"HTTP/1.1 429 ") and f"max {limit}".encode() in answer, answer[:300]
        # gRPC-Web, a frame built by hand: its length prefix alone is enough to refuse it.
        frame = b"\x00" + struct.pack(">I", limit + 1)
        head = (
            f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = _raw_request(port, head, _chunked(frame + b"\x00" * 1000))
        assert answer.startswith(b"HTTP/1.1 200 ") and b"grpc-status: 8\r\n" in answer, answer[:400]
        # Under the limit but over max_image_bytes: the pipeline names the limit, as over gRPC.
        status, _, body = post(base + PATH + "SegmentImage", {"image": base64.b64encode(bytes(5000)).decode()})
    assert status == 400 and "max_image_bytes" in _connect_error(body)[1]


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        length = int(size.split(b";")[0], 16)
        if length == 0:
            break
        out, body = out + body[:length], body[length + 2 :]
    return out


def _grpc_web_call(
    port: int, request: pb.SegmentImageRequest, headers: Mapping[str, str]
) -> tuple[dict[str, str], list[pb.SegmentImageResponse]]:
    """A unary gRPC-Web call framed by hand: the response headers and trailers together, and the messages."""
    message = request.SerializeToString()
    body = b"\x00" + struct.pack(">I", len(message)) + message
    lines = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    head = (
        f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\n{lines}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    fields: dict[str, str] = {}
    for line in head_bytes.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    if fields.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    messages = []
    while body:  # frames: a flag byte (0x80: trailers), a 4-byte big-endian length, the data
        flag, length = body[0], struct.unpack(">I", body[1:5])[0]
        data, body = body[5 : 5 + length], body[5 + length :]
        if flag & 0x80:
            for line in data.decode("latin-1").split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
        else:
            messages.append(pb.SegmentImageResponse.FromString(data))
    return fields, messages


def test_tokens_guard_http_as_they_guard_grpc_and_the_page_stays_open(tmp_path: pathlib.Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# the web team\nsecret-1\n")
    with serving(auth_tokens=str(tokens)) as (served, base, _):
        url = base + PATH + "SegmentImage"
        status, headers, body = post(url, IMAGE_JSON)
        assert status == 401 and _connect_error(body) == ("unauthenticated", DENIED_MESSAGE)
        assert "x-request-id" in headers
        status, _, _ = post(url, IMAGE_JSON, {**JSON, "Authorization": "Bearer wrong"})
        assert status == 401
        status, _, _ = post(url, IMAGE_JSON, {**JSON, "Authorization": "Bearer secret-1"})
        assert status == 200
        assert served.gateway.http is not None
        port = served.gateway.http.port
        denied, _ = _grpc_web_call(port, pb.SegmentImageRequest(image=IMAGE), {})
        assert denied["grpc-status"] == str(grpc.StatusCode.UNAUTHENTICATED.value[0])
        assert denied["grpc-message"] == DENIED_MESSAGE.replace(" ", "%20")
        answered, [answer] = _grpc_web_call(
            port, pb.SegmentImageRequest(image=IMAGE), {"authorization": "Bearer secret-1"}
        )
        assert answered["grpc-status"] == "0" and answer.classes[-1].class_id == 15
        with urllib.request.urlopen(base + "/", timeout=10) as page:
            assert page.status == 200


def _answer_without_the_rest_of_the_body(port: int, head: bytes, part: bytes) -> tuple[bytes, float]:
    """Sends a head and the first part of its body, then stops sending and reads until the answer is whole (the
    end of its chunks), as curl does when an error comes before its upload is done: the answer and its seconds."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + part)
        answer = b""
        while not answer.endswith(b"\r\n0\r\n\r\n") and (chunk := sock.recv(65536)):
            answer += chunk
    return answer, time.monotonic() - start


def test_a_refusal_from_the_headers_is_answered_whole_whether_the_client_stops_sending_or_sends_on(
    tmp_path: pathlib.Path,
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("secret-1\n")
    body = json.dumps({"image": base64.b64encode(bytes(3 << 20)).decode()}).encode()
    # read_timeout longer than the client waits: the answer must not wait for a body that is not coming.
    with serving(auth_tokens=str(tokens), read_timeout_s=60) as (served, _, _):
        assert served.gateway.http is not None
        port = served.gateway.http.port
        for connection in ("keep-alive", "close"):
            head = (
                f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: {connection}\r\n\r\n"
            ).encode()
            answer, seconds = _answer_without_the_rest_of_the_body(port, head, body[: 256 << 10])
            assert answer.startswith(b"HTTP/1.1 401 ") and b"unauthenticated" in answer, (connection, answer[:300])
            assert seconds < 5, (connection, seconds)
        # A client that sends its whole body after the answer came (Python's http.client sends before it reads)
        # is not reset: the connection lingers, dropping what arrives, and closes once the client is done.
        head = (
            f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head)
            answer = b""
            while not answer.endswith(b"\r\n0\r\n\r\n"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
            sock.sendall(body)  # 4 MB unread: a server that closed at once would reset this send
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(65536) == b""  # the server's end: nothing more, and no reset


def test_the_page_s_files_and_what_is_not_there() -> None:
    with serving() as (_, base, _):
        with urllib.request.urlopen(base + "/", timeout=10) as page:
            html = page.read().decode()
            assert page.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert '<script type="module" src="app.js"></script>' in html and 'aria-live="polite"' in html
        for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
            with urllib.request.urlopen(f"{base}/{name}", timeout=10) as file:
                assert kind in file.headers["Content-Type"]
        for method, path, expected in (("GET", "/nope.html", 404), ("POST", PATH + "Nope", 404), ("GET", PATH, 404)):
            request = urllib.request.Request(base + path, method=method, data=b"{}" if method == "POST" else None)
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(request, timeout=10)
            missing.value.close()
            assert missing.value.code == expected, path
        status, _, _ = post(base + PATH + "SegmentImage", b"{}", {"Content-Type": "text/plain"})
        assert status == 415


def test_tls_settings_apply_to_http_too(tmp_path: pathlib.Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    settings = {"tls_cert": str(tmp_path / "server.pem"), "tls_key": str(tmp_path / "server.pem")}
    with serving(**settings) as (served, base, _):
        assert served.gateway.http is not None and served.gateway.http.tls
        https = base.replace("http://", "https://")
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        status, _, body = post(https + PATH + "ListModels", {}, context=context)
        assert status == 200 and json.loads(body)["models"][0]["name"] == "deeplab"
        port = served.gateway.http.port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, pytest.raises(ssl.SSLError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")  # a CA it does not trust


def test_http_listen_is_a_server_setting_like_the_others(tmp_path: pathlib.Path) -> None:
    assert load_config([], {}).http_listen == ""
    assert load_config(["--http-listen=127.0.0.1:8080"], {}).http_listen == "127.0.0.1:8080"
    assert load_config([], {"SEGMENTATION_HTTP_LISTEN": "0.0.0.0:0"}).http_listen == "0.0.0.0:0"
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(
        '[server]\nhttp_listen = "[::1]:8081"\n\n'
        '[[backends]]\nname = "local"\ntargets = ["localhost:8500"]\n\n[[models]]\nname = "deeplab"\n'
    )
    assert load_config([f"--config={config_file}"], {}).http_listen == "[::1]:8081"
    with pytest.raises(ConfigError, match=r"--http-listen='8080': use host:port"):
        load_config(["--http-listen=8080"], {})
