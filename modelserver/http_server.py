"""The REST API's HTTP side: an ASGI app (Starlette's request and response) served by uvicorn on the gRPC server's
event loop, with TF Serving's status codes.

Mirrors tensorflow_serving/model_servers/http_server.cc (tensorflow/serving 9d981c5c):
- ToHTTPStatusCode (:46-87) maps each status code to the HTTP status below; the JSON body is sent whatever the
  status, with Content-Type: application/json (http_rest_api_util.cc:36-38).
- Only paths matching /v1/.* reach the handler (:140-149); any other is libevent's 404 page
  (util/net_http/server/internal/evhttp_server.cc:175-178). With --monitoring_config_file, the Prometheus path is
  matched first, exactly (evhttp_server.cc:151-158); every call under /v1/ is counted (monitoring.py).
Calls that run TensorFlow (predict, metadata) go to the same bounded inference pool as gRPC's Predict, so REST
and gRPC together never run more than --grpc_max_threads inferences; the JSON conversions run there too, off the
event loop. Status calls only read states and are answered on the loop, as gRPC's GetModelStatus is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelserver import rest
from modelserver.errors import ServingError
from modelserver.monitoring import CONTENT_TYPE, Metrics
from modelserver.registry import ModelRegistry

log = logging.getLogger("modelserver")

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
JSON = "application/json"
# libevent's evhttp_send_error page (ERR_FORMAT in http.c).
NOT_FOUND_PAGE = "<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"


class RestApp:
    """The ASGI app: every HTTP request goes through TF Serving's path rules (rest.py); with a metrics path, that
    exact path is the Prometheus page (monitoring.py)."""

    def __init__(
        self, registry: ModelRegistry, executor: ThreadPoolExecutor, metrics: Metrics, metrics_path: str | None = None
    ) -> None:
        self._registry = registry
        self._executor = executor
        self._metrics = metrics
        self._metrics_path = metrics_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off and no websocket support: nothing else arrives
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        start = time.monotonic_ns()
        # TF Serving matches the path as sent (not percent-decoded), then decodes the name and label it captured.
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw.decode("latin-1")
        if path == self._metrics_path:  # a handler for the exact path, looked up before the /v1/ dispatcher
            return self._metrics_page(path, request.scope.get("query_string", b""))
        if not rest.API_PATH.fullmatch(path):
            return Response(NOT_FOUND_PAGE, 404, media_type="text/html; charset=ISO-8859-1")
        response, code = await self._answer(request, path)
        # Every call under /v1/ is counted, and timed when it succeeds (http_server.cc:152-203).
        model_name, api = rest.metric_labels(request.method, path)
        self._metrics.record_request(model_name, code, api, "REST", start)
        return response

    async def _answer(self, request: Request, path: str) -> tuple[Response, grpc.StatusCode]:
        body = await request.body()
        try:
            call = rest.parse(request.method, path)
            if call.blocking:
                loop = asyncio.get_running_loop()
                output = await loop.run_in_executor(self._executor, rest.answer, self._registry, call, body)
            else:
                output = rest.answer(self._registry, call, body)
        except rest.PathError as exc:
            return Response(b"", HTTP_STATUS[exc.code], media_type=JSON), exc.code
        except ServingError as exc:
            return Response(rest.error_json(exc), HTTP_STATUS.get(exc.code, 500), media_type=JSON), exc.code
        except Exception:
            log.exception("unexpected error in REST %s %s", request.method, path)
            error = ServingError(grpc.StatusCode.INTERNAL, "internal error in the model server; see its log")
            return Response(rest.error_json(error), 500, media_type=JSON), error.code
        return Response(output, 200, media_type=JSON), grpc.StatusCode.OK

    def _metrics_page(self, path: str, query: bytes) -> Response:
        """ProcessPrometheusRequest (http_server.cc:89-116): TF Serving compares the path with its query string to
        the configured path, so any query string is INVALID_ARGUMENT."""
        headers = {"Content-Type": CONTENT_TYPE}  # as given: Starlette would add a charset to media_type
        if query:
            message = f"Unexpected path: {path}?{query.decode('latin-1')}. Should be {self._metrics_path}"
            return Response(message, HTTP_STATUS[grpc.StatusCode.INVALID_ARGUMENT], headers=headers)
        return Response(self._metrics.page(), 200, headers=headers)


class RestServer:
    """uvicorn on the running event loop, on a socket bound before it starts (so port 0 works and a bind error
    is the caller's to report)."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, ticker: asyncio.Task[None]) -> None:
        self._server = server
        self._sock = sock
        self._ticker = ticker
        self.port: int = sock.getsockname()[1]

    @classmethod
    async def start(cls, app: RestApp, host: str, port: int, grace_seconds: float) -> RestServer:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        config = uvicorn.Config(
            app,
            lifespan="off",
            http="h11",
            ws="none",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=grace_seconds,
        )
        config.load()
        server = uvicorn.Server(config)
        # Server.serve() would install its own SIGINT/SIGTERM handlers over the model server's; its parts are run
        # here instead: startup on the socket, the loop that keeps the Date header fresh, shutdown on stop().
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        ticker = asyncio.create_task(server.main_loop(), name="rest-api")
        return cls(server, sock, ticker)

    async def stop(self) -> None:
        """Stops accepting, lets requests in flight finish within the grace period, closes the socket."""
        self._server.should_exit = True
        await self._ticker
        await self._server.shutdown(sockets=[self._sock])
