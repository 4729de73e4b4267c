"""An instant model server for the capacity scenario: what the gateway costs when the model costs nothing, as on a
GPU that answers a 257 x 257 tensor in a few milliseconds.

    python -m bench.instant --upstream HOST:PORT [--port N]

It answers every gRPC method the gateway calls (Predict, GetModelMetadata, GetModelStatus, ModelInfer...) with the
answer the real model server gave for the very same request bytes: the first time a request is seen, it is passed
upstream and its answer recorded; from then on the recorded bytes are sent back without parsing either side. A
warm-up call per image fills the record, so the measured calls spend no model time, only the transport. The record
holds at most RECORDED answers (the bench's images are few); past that, the oldest is forgotten.

Prints "instant model server on 127.0.0.1:PORT" once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import zlib

import grpc

from bench.load import CHANNEL_OPTIONS

RECORDED = 64


class Recorded(grpc.GenericRpcHandler):
    """Every unary method, by the bytes of its request (their length and CRC-32: a fifth of a millisecond for a
    1080p call's tensor, where a cryptographic hash takes four times that on the core shared with the load
    generator): the upstream's answer, recorded on first sight."""

    def __init__(self, upstream: grpc.aio.Channel) -> None:
        self._upstream = upstream
        self._answers: collections.OrderedDict[tuple[str, int, int], bytes] = collections.OrderedDict()
        self.passed_upstream = 0

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method

        async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            key = (method, len(request), zlib.crc32(request))
            found = self._answers.get(key)
            if found is not None:
                return found
            call = self._upstream.unary_unary(method)
            try:
                found = await call(request, timeout=120)
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            self.passed_upstream += 1
            self._answers[key] = found
            while len(self._answers) > RECORDED:
                self._answers.popitem(last=False)
            return found

        return grpc.unary_unary_rpc_method_handler(answer)


async def serve(upstream_target: str, port: int) -> None:
    upstream = grpc.aio.insecure_channel(upstream_target, options=CHANNEL_OPTIONS)
    server = grpc.aio.server(handlers=[Recorded(upstream)], options=CHANNEL_OPTIONS)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"instant model server on 127.0.0.1:{bound}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1)
    await upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instant", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the real model server, HOST:PORT")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.upstream, args.port))


if __name__ == "__main__":
    main()
