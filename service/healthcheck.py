"""python -m service.healthcheck: exits 0 when the gateway on this host reports SERVING, 1 otherwise.

For container health checks (the image's HEALTHCHECK): it reads the gateway's own configuration (the file named
by SEGMENTATION_CONFIG, SEGMENTATION_* variables, and any flags given here) to find the port, and asks
grpc.health.v1 there: on health_listen when set, else on listen (plaintext only).
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import Config, ConfigError
from service.flags import load_config


def probe_address(config: Config) -> str:
    """Where to ask: a wildcard listen address is asked on loopback."""
    address = config.health_listen or config.listen
    host, port = address.rsplit(":", 1)
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--service", default="", help="health service name (default '': the gateway as a whole)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    args, gateway_flags = parser.parse_known_args(argv)
    try:
        config = load_config(gateway_flags)
    except ConfigError as exc:
        print(f"healthcheck: error: {exc}", file=sys.stderr)
        return 1
    if config.tls_cert and not config.health_listen:
        print("healthcheck: the gateway's port uses TLS; set health_listen for a plaintext one", file=sys.stderr)
        return 1
    address = probe_address(config)
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            print(f"healthcheck: {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{address}: {status}")
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
