"""HTTP peers for the load generator: KServe's transformer (bench/kserve/) and TF Serving's REST API with JSON.

Each maker returns (call, request_bytes) as bench/load.py's makers do. A call returns an `HttpAnswer`, whose
ByteSize() is the response body's length (what load.py's main() reads for response_bytes), and raises
`HttpCallError` on a failure, a grpc.RpcError subclass with code() and details(), so load.py's phase() counts it as
it counts a failed gRPC call. Calls are safe from several threads: each thread keeps one persistent HTTP/1.1
connection (http.client, keep-alive) to the server, so a call costs no connection set-up after the warm-up.

    kserve_call(url, data)              the JPEG base64-encoded (beforehand) in KServe's v1 JSON, POSTed to the
                                        transformer, which decodes, resizes, calls TF Serving's REST API and
                                        answers class statistics and the model-size mask as run lengths.
    tfserving_rest_call(url, data)      the floor over REST: the client decodes and resizes the image beforehand
                                        (untimed, as the floor does), then each call encodes the tensor as
                                        {"instances": [...]} JSON, POSTs it straight to the model server's REST
                                        port and parses the {"predictions": ...} class ids back into an array.
                                        Against the floor, it measures REST + JSON against gRPC for one tensor.

url is a base URL, http://HOST:PORT (a path after it is kept as a prefix), or HOST:PORT.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import grpc
import numpy as np

Call = Callable[[], Any]
MODEL = "deeplab"
TIMEOUT_S = 120.0
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# TF Serving's HTTP status for each code (http_server.cc ToHTTPStatusCode), read backwards for the usual ones.
_STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class HttpCallError(grpc.RpcError):
    """A failed HTTP call, shaped as a grpc.RpcError (code(), details()) for load.py's error accounting."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@dataclass(frozen=True)
class HttpAnswer:
    """A successful call's parsed JSON and the size of its body."""

    body_bytes: int
    document: Any

    def ByteSize(self) -> int:  # noqa: N802 - the protobuf name load.py reads
        return self.body_bytes


class _Poster:
    """POST to one server, one persistent connection per calling thread."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"expected http://HOST:PORT, got {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.prefix = parsed.path.rstrip("/")
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
            self._local.connection = connection
        return connection

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body); a kept-alive connection the server has closed meanwhile is reopened once."""
        for attempt in (0, 1):
            connection = self._connection()
            reused = connection.sock is not None
            try:
                connection.request("POST", self.prefix + path, body=body, headers=_HEADERS)
                response = connection.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                connection.close()
                if reused and attempt == 0:
                    continue
                raise HttpCallError(grpc.StatusCode.UNAVAILABLE, f"{type(exc).__name__}: {exc}") from exc
            except OSError as exc:  # refused, timed out
                connection.close()
                code = (
                    grpc.StatusCode.DEADLINE_EXCEEDED if isinstance(exc, TimeoutError) else grpc.StatusCode.UNAVAILABLE
                )
                raise HttpCallError(code, f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                connection.close()
            return response.status, payload
        raise AssertionError("unreachable")


def _checked(status: int, payload: bytes) -> Any:
    if status != 200:
        code = _STATUS_CODES.get(status, grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.UNKNOWN)
        raise HttpCallError(code, f"HTTP {status}: {payload[:300].decode('utf-8', 'replace')}")
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise HttpCallError(grpc.StatusCode.INTERNAL, f"answer is not JSON: {payload[:100]!r}") from exc


def _model_size(data: bytes, profile: str) -> tuple[int, int]:
    """(width, height) of the tensor the model gets for this image: its size after the gateway's resize rule for
    the built-in `profile`."""
    from service.image.resize import model_size  # noqa: PLC0415
    from service.profiles import BUILTIN_PROFILES  # noqa: PLC0415

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the image does not decode")
    return model_size(image.shape[1], image.shape[0], BUILTIN_PROFILES[profile])


def kserve_call(url: str, data: bytes, profile: str = "deeplab-257") -> tuple[Call, int]:
    """A call to the KServe transformer (bench/kserve/transformer.py) at `url` with the image `data`: the base64
    JSON is built once, beforehand; each call POSTs it and checks the answer (the mask's size and run lengths,
    the class statistics adding up). Returns the call and the request body's size in bytes."""
    poster = _Poster(url)
    body = json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(data).decode("ascii")}}]}).encode()
    width, height = _model_size(data, profile)
    path = f"/v1/models/{MODEL}:predict"

    def call() -> HttpAnswer:
        status, payload = poster.post(path, body)
        document = _checked(status, payload)
        try:
            answer = document["predictions"][0]
            mask = answer["mask"]
            ok = (
                (mask["width"], mask["height"]) == (width, height)
                and len(mask["values"]) == len(mask["counts"])
                and sum(mask["counts"]) == width * height
                and sum(c["pixel_count"] for c in answer["classes"]) == width * height
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise HttpCallError(grpc.StatusCode.INTERNAL, f"unexpected answer: {payload[:200]!r}") from exc
        if not ok:
            raise HttpCallError(grpc.StatusCode.INTERNAL, f"wrong mask for a {width}x{height} tensor")
        return HttpAnswer(len(payload), document)

    return call, len(body)


def tfserving_rest_call(url: str, data: bytes, profile: str = "deeplab-257") -> tuple[Call, int]:
    """A Predict over TF Serving's REST API at `url` (modelserver's --rest_api_port) with the uint8 pixels a REST
    client sends to serving_default: decoded and resized beforehand with the gateway's own resize, rounded
    (untimed). Each call encodes them as {"instances": [...]} JSON (json.dumps of nested lists, as a plain Python
    client does), POSTs it, and parses
    the {"predictions": ...} class ids into an int64 array of the tensor's size. Returns the call and the request
    body's size in bytes."""
    from service.image.resize import resize_to  # noqa: PLC0415

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    resized = np.rint(resize_to(bgr, _model_size(data, profile))).astype(np.uint8)
    poster = _Poster(url)
    path = f"/v1/models/{MODEL}:predict"
    shape = resized.shape[:2]

    def encode() -> bytes:
        return json.dumps({"instances": [resized.tolist()]}, separators=(",", ":")).encode()

    def call() -> HttpAnswer:
        status, payload = poster.post(path, encode())
        document = _checked(status, payload)
        try:
            mask = np.asarray(document["predictions"][0], dtype=np.int64)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise HttpCallError(grpc.StatusCode.INTERNAL, f"unexpected answer: {payload[:200]!r}") from exc
        if mask.shape != shape:
            raise HttpCallError(grpc.StatusCode.INTERNAL, f"mask of shape {mask.shape}, expected {shape}")
        return HttpAnswer(len(payload), mask)

    return call, len(encode())
