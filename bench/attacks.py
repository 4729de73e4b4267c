"""python -m bench.attacks [--source DIR] [--model-base DIR] [--only NAME ...]

The attacks of docs/reliability.md's "Security" section, each against a gateway process of its own on loopback:
two models at one modelserver (make run's profile and labels), two bearer tokens (team-a may call `deeplab`,
team-b `deeplab-b`), a quota of 2 images per caller, 9 MP at most per image, --http-listen on; read and header
timeouts of 2 s where the gateway has them. Prints one JSON line: for each attack what the attacker got (status
codes), how long until it was refused or let go, and how much the gateway's peak RSS (VmHWM) grew.

--source runs the gateway of another checkout with this one's virtual environment, so that one script gives the
figures before and after a change (a gateway without the identity features gets a tokens file of plain tokens).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import numpy as np

from bench import hostile, photos
from bench.plans import IMAGES, LABELS, PROFILE
from bench.run import export
from deploy.local import GATEWAY_READY, ROOT, ServerProcess, memory_mb, start_modelserver, start_process
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

TOKENS = {"a": "a-secret-token-0123456789", "b": "b-secret-token-0123456789"}
MAX_PIXELS = 9_000_000
# What a slow client is given before an attack is called off (a gateway without time limits keeps it open).
PATIENCE_S = 8.0
SEND_OPTIONS = [("grpc.max_send_message_length", 1 << 27), ("grpc.use_local_subchannel_pool", 1)]
PATH = "/segmentation.v1.SegmentationService/"
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass
class Arena:
    """A gateway started for one attack, and what the attack needs to know about it."""

    gateway: ServerProcess
    http_port: int
    tokens_file: pathlib.Path
    identity: bool  # the gateway names callers from credentials (the features this script measures)
    log_start: int = 0

    @property
    def target(self) -> str:
        return self.gateway.target

    def hwm_mb(self) -> float:
        return memory_mb(self.gateway.process.pid)["VmHWM"]

    def log(self) -> str:
        return "".join(self.gateway.lines[self.log_start :])


def metadata(token: str | None = None, tenant: str | None = None) -> list[tuple[str, str]]:
    found = [("authorization", f"Bearer {TOKENS[token]}")] if token else []
    return found + ([("x-tenant", tenant)] if tenant else [])


def code_of(work: Callable[[], object]) -> str:
    try:
        work()
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


@dataclass
class Outcome:
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0  # until the last attacker was answered or let go
    rss_growth_mb: float = 0.0
    notes: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "codes": dict(sorted(self.codes.items())),
            "seconds": round(self.seconds, 2),
            "rss_growth_mb": round(self.rss_growth_mb, 1),
            **self.notes,
        }


@contextmanager
def held_stream(arena: Arena, token: str, tenant: str, image: bytes) -> Iterator[object]:
    """A stream of two images whose answers (raw masks at the photo's size: 2 MB at 1080p) are never read, on a
    connection whose flow-control window stays at 64 KiB: it holds its caller's two places of quota (the answers
    wait in gRPC) until it is cancelled."""
    options = [*SEND_OPTIONS, ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 << 10)]
    channel = grpc.insecure_channel(arena.target, options=options)
    request = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RAW)
    item = pb.SegmentImageStreamRequest(request=request)
    release = threading.Event()

    def items() -> Iterator[pb.SegmentImageStreamRequest]:
        yield item
        yield item
        release.wait(60)

    call = pb_grpc.SegmentationServiceStub(channel).SegmentImageStream(
        items(), metadata=metadata(token, tenant), timeout=60
    )
    time.sleep(3)  # both images worked on, their answers waiting to be read
    try:
        yield call
    finally:
        release.set()
        call.cancel()
        channel.close()


def _unary(arena: Arena, request: pb.SegmentImageRequest, md: list[tuple[str, str]], timeout: float = 30) -> str:
    with grpc.insecure_channel(arena.target, options=SEND_OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        return code_of(lambda: stub.SegmentImage(request, metadata=md, timeout=timeout))


def made_up_tenants(arena: Arena) -> Outcome:
    """Team a holds its quota of 2 with a stream naming itself x0, then calls five times, each naming another
    made-up tenant: a gateway that believes x-tenant runs all five."""
    image = photos.jpeg(_photo(1920, 1080))
    outcome = Outcome()
    start = time.monotonic()
    with held_stream(arena, "a", "x0", image):
        request = pb.SegmentImageRequest(image=image)
        with ThreadPoolExecutor(5) as pool:
            codes = pool.map(lambda i: _unary(arena, request, metadata("a", f"x{i}")), range(1, 6))
            outcome.codes.update(codes)
    outcome.seconds = time.monotonic() - start
    return outcome


def tenant_taken_by_another_token(arena: Arena) -> Outcome:
    """Team b holds two images naming team a's tenant; then team a calls: a gateway that believes x-tenant counts
    b's images against a, whose call waits for its quota and is refused."""
    image = photos.jpeg(_photo(1920, 1080))
    outcome = Outcome()
    with held_stream(arena, "b", "team-a", image):
        start = time.monotonic()
        outcome.codes[_unary(arena, pb.SegmentImageRequest(image=image), metadata("a", "team-a"))] += 1
        outcome.seconds = time.monotonic() - start
    return outcome


def models_beyond_the_grant(arena: Arena) -> Outcome:
    """Team b, granted deeplab-b only, calls deeplab and lists the models."""
    request = pb.SegmentImageRequest(image=photos.jpeg(_photo(640, 480)))
    request.model.name = "deeplab"
    outcome = Outcome()
    with grpc.insecure_channel(arena.target) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        try:
            stub.SegmentImage(request, metadata=metadata("b"), timeout=30)
            outcome.codes["OK"] += 1
        except grpc.RpcError as error:
            outcome.codes[error.code().name] += 1
            outcome.notes["message"] = error.details()
        listed = stub.ListModels(pb.ListModelsRequest(), metadata=metadata("b"), timeout=10)
    outcome.notes["listed"] = [model.name for model in listed.models]
    return outcome


def lying_files(arena: Arena) -> Outcome:
    """Each of bench/hostile.py's files whose header lies about its size, once (team a)."""
    outcome = Outcome(notes={"files": {}})
    for sample in hostile.lying(_photo(2000, 2000)):
        start = time.monotonic()
        code = _unary(arena, pb.SegmentImageRequest(image=sample.data), metadata("a"), timeout=60)
        seconds = time.monotonic() - start
        outcome.codes[code] += 1
        outcome.notes["files"][sample.name] = {"code": code, "seconds": round(seconds, 2), "bytes": len(sample.data)}
        outcome.seconds = max(outcome.seconds, seconds)
    return outcome


def strangers_large_messages(arena: Arena) -> Outcome:
    """Eight callers without a token each send a 30 MB message over gRPC at once."""
    message = pb.SegmentImageRequest(image=os.urandom(30_000_000))

    def one(_: int) -> tuple[str, float]:
        start = time.monotonic()
        return _unary(arena, message, [], timeout=60), time.monotonic() - start

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    return Outcome(collections.Counter(code for code, _ in results), max(seconds for _, seconds in results))


def _http_exchange(port: int, head: bytes, body: bytes = b"") -> tuple[str, float]:
    """Sends a request as curl does a large one: its head with `Expect: 100-continue`, then its body once the server
    says "100 Continue" (or a second passes without an answer). The final status, or how the connection ended, and
    the seconds it took."""
    start = time.monotonic()
    head = head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1) if body else head
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S + 5) as sock:
        try:
            sock.sendall(head)
            sock.settimeout(1.0)
            try:
                answer = sock.recv(256)
            except TimeoutError:
                answer = b""
            sock.settimeout(PATIENCE_S + 5)
            if body and (not answer or answer.startswith(b"HTTP/1.1 100")):
                sock.sendall(body)
                answer = answer.partition(b"\r\n\r\n")[2] or sock.recv(256)
            elif not answer:
                answer = sock.recv(256)
        except (ConnectionResetError, BrokenPipeError):
            return "reset", time.monotonic() - start
        except TimeoutError:
            return "no answer", time.monotonic() - start
    status = answer.split(b"\r\n", 1)[0].decode("latin-1").removeprefix("HTTP/1.1 ") if answer else "closed"
    return status, time.monotonic() - start


def strangers_large_http_bodies(arena: Arena) -> Outcome:
    """Eight callers without a token each POST a 30 MB Connect body (binary, one frame) at once."""
    body = pb.SegmentImageRequest(image=os.urandom(30_000_000)).SerializeToString()
    head = (
        f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _http_exchange(arena.http_port, head, body), range(8)))
    return Outcome(collections.Counter(code for code, _ in results), max(seconds for _, seconds in results))


def slow_headers(arena: Arena) -> Outcome:
    """A request whose headers come a byte every half second: how long the connection stays open."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", arena.http_port), timeout=2) as sock:
        sock.sendall(b"POST " + PATH.encode() + b"SegmentImage HTTP/1.1\r\nHost: x\r\n")
        try:
            while time.monotonic() - start < PATIENCE_S:
                sock.sendall(b"X")
                time.sleep(0.5)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        return Outcome(collections.Counter({"closed": 1}), time.monotonic() - start)
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        except (ConnectionResetError, BrokenPipeError):
            return Outcome(collections.Counter({"closed": 1}), time.monotonic() - start)
    return Outcome(collections.Counter({"still open": 1}), time.monotonic() - start)


def slow_body(arena: Arena) -> Outcome:
    """Team a's request that announces a 100 kB body, sends 100 bytes and stalls."""
    head = (
        f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\n"
        f"Authorization: Bearer {TOKENS['a']}\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
    ).encode()
    status, seconds = _http_exchange(arena.http_port, head + b"\x0a" + bytes(99))
    return Outcome(collections.Counter({status: 1}), seconds)


class _H2Calls:
    """SegmentImage calls on one HTTP/2 connection made by hand (h2), each sending a gRPC message's 5-byte prefix
    announcing `announced` bytes and then `sent` zero bytes, as flow control lets them through."""

    def __init__(
        self, sock: socket.socket, arena: Arena, token: str | None, *, streams: int, announced: int, sent: int
    ) -> None:
        import h2.config  # noqa: PLC0415  (the dev extra's; only these attacks need it)
        import h2.connection  # noqa: PLC0415

        self.sock = sock
        self.connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.connection.initiate_connection()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", PATH + "SegmentImage"),
            (":authority", arena.target),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *metadata(token),
        ]
        self.prefix = {1 + 2 * i: b"\x00" + struct.pack(">I", announced) for i in range(streams)}
        self.left = dict.fromkeys(self.prefix, sent)
        self.ended: dict[int, str] = {}
        for stream in self.prefix:
            self.connection.send_headers(stream, headers)

    def send(self) -> int:
        """Sends what flow control lets through now; the bytes sent."""
        total = 0
        for stream in self.prefix:
            while stream not in self.ended:
                window = self.connection.local_flow_control_window(stream)
                size = min(window, self.connection.max_outbound_frame_size, 5 + self.left[stream])
                if self.prefix[stream] and window >= 5:
                    data, self.prefix[stream] = self.prefix[stream], b""
                elif not self.prefix[stream] and self.left[stream] and size > 0:
                    data = bytes(min(size, self.left[stream]))
                    self.left[stream] -= len(data)
                else:
                    break
                self.connection.send_data(stream, data)
                total += len(data)
        self.sock.sendall(self.connection.data_to_send())
        return total

    def receive(self) -> bool:
        """Reads what the server sent, for a moment; False once the connection is gone."""
        import h2.events  # noqa: PLC0415

        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.ended.update({stream: "connection closed" for stream in self.prefix if stream not in self.ended})
            return False
        for event in self.connection.receive_data(data):
            if isinstance(event, h2.events.TrailersReceived | h2.events.ResponseReceived):
                found = dict(event.headers)
                if "grpc-status" in found:
                    self.ended[event.stream_id] = _CODE_NAMES.get(int(found["grpc-status"]), found["grpc-status"])
            elif isinstance(event, h2.events.StreamReset) and event.stream_id not in self.ended:
                self.ended[event.stream_id] = "reset"
        return True


def _h2_calls(arena: Arena, token: str | None, streams: int, announced: int, sent: int) -> Outcome:
    """What each of the calls ends with (its grpc-status, or "still open" after PATIENCE_S), and how long until the
    last ended."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", arena.gateway.port), timeout=0.05) as sock:
        calls = _H2Calls(sock, arena, token, streams=streams, announced=announced, sent=sent)
        while len(calls.ended) < streams and time.monotonic() - start < PATIENCE_S:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                calls.send()
            if not calls.receive():
                break
    codes = collections.Counter(calls.ended.values())
    codes["still open"] += streams - len(calls.ended)
    return Outcome(+codes, time.monotonic() - start)


def stalled_grpc_message(arena: Arena) -> Outcome:
    """Team a's call that announces a 1 MB message, sends half of it and stalls: how long until it is let go."""
    return _h2_calls(arena, "a", streams=1, announced=1_000_000, sent=500_000)


def almost_complete_messages(arena: Arena) -> Outcome:
    """One connection of a stranger (no token) with ten calls, each announcing a 40 MiB message and sending all of
    it but 1 KiB, then stalling."""
    return _h2_calls(arena, None, streams=10, announced=40 << 20, sent=(40 << 20) - 1024)


def almost_complete_messages_of_a_caller(arena: Arena) -> Outcome:
    """The same from team a, with messages of the largest size the gateway takes (20 MiB): what an authenticated
    caller can make the gateway hold, and for how long."""
    return _h2_calls(arena, "a", streams=10, announced=20 << 20, sent=(20 << 20) - 1024)


def request_id_control_bytes(arena: Arena) -> Outcome:
    """Connect calls whose x-request-id holds terminal control bytes, and one that forges a log field."""
    body = pb.SegmentImageRequest(image=photos.jpeg(_photo(320, 240))).SerializeToString()
    outcome = Outcome()
    for given in (b"\x1b[31mred\x07", b"abc] caller=team-b forged=1"):
        head = (
            f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\n"
            f"Authorization: Bearer {TOKENS['a']}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        ).encode()
        status, _ = _http_exchange(arena.http_port, head + b"x-request-id: " + given + b"\r\n\r\n", body)
        outcome.codes[status] += 1
    time.sleep(0.5)
    log = arena.log()
    outcome.notes["raw_control_bytes_in_log"] = "\x1b" in log or "\x07" in log
    outcome.notes["forged_field_in_log"] = "[abc] caller=team-b forged=1]" in log
    return outcome


def non_utf8_header(arena: Arena) -> Outcome:
    """A Connect call with a header value that is not UTF-8."""
    body = pb.SegmentImageRequest(image=photos.jpeg(_photo(320, 240))).SerializeToString()
    head = (
        f"POST {PATH}SegmentImage HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\n"
        f"Authorization: Bearer {TOKENS['a']}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    ).encode()
    status, seconds = _http_exchange(arena.http_port, head + b"x-routing-key: \xff\xfe\r\n\r\n", body)
    return Outcome(collections.Counter({status: 1}), seconds)


def revocation(arena: Arena) -> Outcome:
    """Team a's token taken out of the file, then every token: how long each kept working."""
    image = photos.jpeg(_photo(320, 240))

    def works(token: str) -> bool:
        """Whether the token's call to its own model is answered (team b may call deeplab-b only)."""
        request = pb.SegmentImageRequest(image=image, model=pb.ModelSelector(name=f"deeplab{'-b' * (token == 'b')}"))
        return _unary(arena, request, metadata(token), timeout=10) == "OK"

    def replace(text: str) -> float:
        """Seconds until the file's change shows (up to PATIENCE_S)."""
        fresh = arena.tokens_file.with_suffix(".new")
        fresh.write_text(text)
        os.replace(fresh, arena.tokens_file)
        return time.monotonic()

    outcome = Outcome(notes={})
    lines = arena.tokens_file.read_text().splitlines()
    changed = replace("\n".join(line for line in lines if not line.startswith(TOKENS["a"])) + "\n")
    while works("a") and time.monotonic() - changed < PATIENCE_S:
        time.sleep(0.1)
    outcome.notes["one_revoked_s"] = round(time.monotonic() - changed, 2)
    outcome.codes["a still works" if works("a") else "a refused"] += 1
    changed = replace("# no tokens\n")
    while works("b") and time.monotonic() - changed < PATIENCE_S:
        time.sleep(0.1)
    outcome.notes["all_revoked_s"] = round(time.monotonic() - changed, 2)
    outcome.codes["b still works" if works("b") else "b refused"] += 1
    return outcome


def internal_addresses(arena: Arena) -> Outcome:
    """A call to the model whose backend is down (nothing listens at its address): what the caller is told."""
    request = pb.SegmentImageRequest(image=photos.jpeg(_photo(320, 240)))
    request.model.name = "deeplab-down"
    with grpc.insecure_channel(arena.target) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        try:
            stub.SegmentImage(request, metadata=metadata("a"), timeout=10)
            return Outcome(collections.Counter({"OK": 1}))
        except grpc.RpcError as error:
            code, details = error.code().name, error.details() or ""
    outcome = Outcome(collections.Counter({code: 1}), notes={"message": details})
    outcome.notes["names_an_address"] = "127.0.0.1" in details or "ipv4:" in details
    return outcome


ATTACKS: dict[str, Callable[[Arena], Outcome]] = {
    "made-up-tenants": made_up_tenants,
    "tenant-taken-by-another-token": tenant_taken_by_another_token,
    "models-beyond-the-grant": models_beyond_the_grant,
    "lying-files": lying_files,
    "strangers-large-messages": strangers_large_messages,
    "strangers-large-http-bodies": strangers_large_http_bodies,
    "almost-complete-messages": almost_complete_messages,
    "almost-complete-messages-of-a-caller": almost_complete_messages_of_a_caller,
    "stalled-grpc-message": stalled_grpc_message,
    "slow-headers": slow_headers,
    "slow-body": slow_body,
    "request-id-control-bytes": request_id_control_bytes,
    "non-utf8-header": non_utf8_header,
    "revocation": revocation,
    "internal-addresses": internal_addresses,
}


_PHOTOS: dict[tuple[int, int], np.ndarray] = {}


def _photo(width: int, height: int) -> np.ndarray:
    """A mosaic of the bench's real photos at this size (bench/photos.py), made once."""
    if (width, height) not in _PHOTOS:
        _PHOTOS[width, height] = photos.mosaic(photos.photos(IMAGES), width, height)
    return _PHOTOS[width, height]


def _has_identity(source: pathlib.Path) -> bool:
    return (source / "service" / "auth" / "identity.py").exists()


def config_file(directory: pathlib.Path, backend: str, identity: bool) -> pathlib.Path:
    """The attacks' gateway configuration: two models at one backend, a third at a closed port."""
    tokens = directory / "tokens"
    if identity:
        tokens.write_text(
            f"{TOKENS['a']} tenant=team-a models=deeplab,deeplab-down\n{TOKENS['b']} tenant=team-b models=deeplab-b\n"
        )
    else:
        tokens.write_text(f"{TOKENS['a']}\n{TOKENS['b']}\n")
    timeouts = "read_timeout = 2\nheader_timeout = 2\n" if identity else ""
    path = directory / "gateway.toml"
    path.write_text(
        f"""[server]
auth_tokens = "{tokens}"
max_calls_per_caller = 2
max_queue_wait = 1
max_image_pixels = {MAX_PIXELS}
http_listen = "127.0.0.1:0"
{timeouts}
[[backends]]
name = "modelserver"
targets = ["{backend}"]

[[backends]]
name = "down"
targets = ["127.0.0.1:{_closed_port()}"]

[[models]]
name = "deeplab"
backend = "modelserver"
profile = "{PROFILE}"
labels = "{LABELS}"

[[models]]
name = "deeplab-b"
backend = "modelserver"
served_name = "deeplab"
profile = "{PROFILE}"
labels = "{LABELS}"

[[models]]
name = "deeplab-down"
backend = "down"
served_name = "deeplab"
profile = "{PROFILE}"
"""
    )
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


HTTP_READY = "HTTP (Connect, gRPC-Web) and the web page on http://"


@contextmanager
def arena(source: pathlib.Path, backend: str) -> Iterator[Arena]:
    """A gateway from `source`'s code, configured for the attacks, on loopback."""
    identity = _has_identity(source)
    with tempfile.TemporaryDirectory(prefix="attacks-") as tmp:
        config = config_file(pathlib.Path(tmp), backend, identity)
        gateway = start_process(
            "gateway",
            ["service", "--listen=127.0.0.1:0", f"--config={config}"],
            GATEWAY_READY,
            timeout=60,
            cwd=source,
        )
        try:
            line = next(line for line in gateway.lines if HTTP_READY in line)
            http_port = int(line.rsplit(":", 1)[1].strip(" /\n"))
            yield Arena(gateway, http_port, pathlib.Path(tmp) / "tokens", identity, len(gateway.lines))
        finally:
            gateway.stop()


def run(source: pathlib.Path, backend: str, names: list[str]) -> dict[str, dict[str, object]]:
    results = {}
    for name in names:
        with arena(source, backend) as place:
            time.sleep(1)  # the gateway's health poll has seen the backend
            before = place.hwm_mb()
            outcome = ATTACKS[name](place)
            outcome.rss_growth_mb = place.hwm_mb() - before
            results[name] = outcome.as_dict()
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attacks", description=__doc__)
    parser.add_argument("--source", type=pathlib.Path, default=ROOT, help="the checkout whose gateway to attack")
    parser.add_argument("--model-base", default=None, help="an exported servable (default: export one now)")
    parser.add_argument("--only", nargs="*", choices=tuple(ATTACKS), default=list(ATTACKS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="attacks-model-") as tmp:
        base = args.model_base or str(export(pathlib.Path(tmp), "deeplab"))
        modelserver = start_modelserver("--model_name=deeplab", f"--model_base_path={base}")
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=args.source, capture_output=True, text=True, check=False
            ).stdout.strip()
            results = run(args.source.resolve(), modelserver.target, args.only)
        finally:
            modelserver.stop()
    print(json.dumps({"source": str(args.source), "commit": commit, "attacks": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
