"""The REST API's HTTP side: an ASGI app (Starlette's request and response) served by uvicorn on the gRPC server's
event loop, with TF Serving's status codes.

Mirrors tensorflow_serving/model_servers/http_server.cc (tensorflow/serving 9d981c5c):
- ToHTTPStatusCode (:46-87) maps each status code to the HTTP status below; the JSON body is sent whatever the
  status, with Content-Type: application/json (http_rest_api_util.cc:36-38).
- Only paths matching /v1/.* reach the handler (:140-149); any other is libevent's 404 page
  (util/net_http/server/internal/evhttp_server.cc:175-178).
Calls that run TensorFlow (predict, metadata) go to the same bounded inference pool as gRPC's Predict, so REST
and gRPC together never run more than --grpc_max_threads inferences; the JSON conversions run there too, off the
event loop. Status calls only read states and are answered on the loop, as gRPC's GetModelStatus is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import grpc
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelserver import rest
from modelserver.errors import ServingError
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
    """The ASGI app: every HTTP request goes through TF Serving's path rules (rest.py)."""

    def __init__(self, registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
        self._registry = registry
        self._executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off and no websocket support: nothing else arrives
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        # TF Serving matches the path as sent (not percent-decoded), then decodes the name and label it captured.
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw.decode("latin-1")
        if not rest.API_PATH.fullmatch(path):
            return Response(NOT_FOUND_PAGE, 404, media_type="text/html; charset=ISO-8859-1")
        body = await request.body()
        try:
            call = rest.parse(request.method, path)
            if call.blocking:
                loop = asyncio.get_running_loop()
                output = await loop.run_in_executor(self._executor, rest.answer, self._registry, call, body)
            else:
                output = rest.answer(self._registry, call, body)
        except rest.PathError as exc:
            return Response(b"", HTTP_STATUS[exc.code], media_type=JSON)
        except ServingError as exc:
            return Response(rest.error_json(exc), HTTP_STATUS.get(exc.code, 500), media_type=JSON)
        except Exception:
            log.exception("unexpected error in REST %s %s", request.method, path)
            error = ServingError(grpc.StatusCode.INTERNAL, "internal error in the model server; see its log")
            return Response(rest.error_json(error), 500, media_type=JSON)
        return Response(output, 200, media_type=JSON)


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
