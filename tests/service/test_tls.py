"""service/tls.py in-process: TLS and mutual TLS on the gateway's port and to the backend, renewed certificates, the
plaintext health port.
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
from dataclasses import replace

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service import reload_failures
from service.config import BackendConfig, Config, ModelConfig
from service.profiles import DEEPLAB_ZOO
from tests import images
from tests.fakes import FakeTFServing, serving
from tests.helpers import free_port, start_gateway, wait_for_health
from tests.inprocess import running, two_model_config

IMAGE = images.png("chelsea.png")


def _secure_stub(target: str, pki: dict[str, pathlib.Path], client: str = "") -> pb_grpc.SegmentationServiceStub:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=pki[f"{client}.key"].read_bytes() if client else None,
        certificate_chain=pki[f"{client}.crt"].read_bytes() if client else None,
    )
    return pb_grpc.SegmentationServiceStub(grpc.secure_channel(target, credentials))


def test_tls_and_mutual_tls_on_the_gateway(pki: dict[str, pathlib.Path]) -> None:
    config, backends = two_model_config(tls_cert=str(pki["server.crt"]), tls_key=str(pki["server.key"]))
    request = pb.SegmentImageRequest(image=IMAGE)
    with running(config, backends) as served:
        assert _secure_stub(served.target, pki).SegmentImage(request, timeout=10).classes
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(request, timeout=5)  # plaintext to a TLS port
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    config = replace(config, tls_client_ca=str(pki["ca"]))
    with running(config, backends) as served:
        assert _secure_stub(served.target, pki, client="client").SegmentImage(request, timeout=10).classes
        for client in ("", "stranger"):  # no certificate, or one a CA the gateway does not trust signed
            with pytest.raises(grpc.RpcError) as error:
                _secure_stub(served.target, pki, client=client).SegmentImage(request, timeout=5)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def _served_copies(pki: dict[str, pathlib.Path], folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The server's certificate and key copied into files of the test's own, which it may then replace."""
    cert, key = folder / "tls.crt", folder / "tls.key"
    cert.write_bytes(pki["server.crt"].read_bytes())
    key.write_bytes(pki["server.key"].read_bytes())
    return cert, key


def test_renewed_certificate_files_are_used_by_new_connections(
    pki: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    cert, key = _served_copies(pki, tmp_path)
    config, backends = two_model_config(tls_cert=str(cert), tls_key=str(key))
    request = pb.SegmentImageRequest(image=IMAGE)
    renewed_ca = trustme.CA()
    with running(config, backends) as served:
        assert _secure_stub(served.target, pki).SegmentImage(request, timeout=10).classes
        renewed = renewed_ca.issue_cert("127.0.0.1")
        renewed.private_key_pem.write_to_path(str(key))
        renewed.cert_chain_pems[0].write_to_path(str(cert))
        renewed_ca.cert_pem.write_to_path(str(tmp_path / "renewed-ca"))
        trusting_renewed = {"ca": tmp_path / "renewed-ca"}
        assert _secure_stub(served.target, trusting_renewed).SegmentImage(request, timeout=10).classes
        with pytest.raises(grpc.RpcError):
            _secure_stub(served.target, pki).SegmentImage(request, timeout=5)


def test_tls_and_mutual_tls_to_the_backend(pki: dict[str, pathlib.Path], caplog: pytest.LogCaptureFixture) -> None:
    tf_serving = FakeTFServing()
    credentials = grpc.ssl_server_credentials(
        [(pki["server.key"].read_bytes(), pki["server.crt"].read_bytes())],
        root_certificates=pki["ca"].read_bytes(),
        require_client_auth=True,
    )
    request = pb.SegmentImageRequest(image=IMAGE)
    with serving(tf_serving, credentials) as target:
        mutual = BackendConfig(
            targets=(target,), ca=str(pki["ca"]), cert=str(pki["client.crt"]), key=str(pki["client.key"])
        )
        # The model's profile chosen: one read from the servable waits for a backend that answers.
        zoo = (ModelConfig(profile=DEEPLAB_ZOO),)
        with running(Config(listen="127.0.0.1:0", backends=(mutual,), models=zoo)) as served:
            assert served.stub.SegmentImage(request, timeout=10).model.version == 1
        # The backend requires a client certificate: without one the handshake fails, and the caller is told.
        one_way = replace(mutual, cert="", key="")
        with running(Config(listen="127.0.0.1:0", backends=(one_way,), models=zoo)) as served:
            with pytest.raises(grpc.RpcError) as error:
                served.stub.SegmentImage(request, timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE and target not in error.value.details()
        # The log has where the backend is and what the channel said; the caller, the request id that finds them.
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(target in line and "unavailable" in line for line in warnings), warnings

    assert len(tf_serving.metadata) == 1


def _healthcheck(*flags: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTATION_")}
    command = [sys.executable, "-m", "service.healthcheck", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environ, check=False)


def test_the_health_port_answers_probes_in_plaintext_beside_a_tls_port(
    pki: dict[str, pathlib.Path], fake_tf_serving: tuple[str, FakeTFServing], tmp_path: pathlib.Path
) -> None:
    # Kubernetes' gRPC probes and container health checks speak no TLS: they ask health_listen.
    target, _ = fake_tf_serving
    health_port = free_port()
    (tmp_path / "tokens").write_text("s3cret\n")
    tls = (f"--tls-cert={pki['server.crt']}", f"--tls-key={pki['server.key']}", f"--auth-tokens={tmp_path / 'tokens'}")
    gateway = start_gateway(target, "--listen=127.0.0.1:0", f"--health-listen=127.0.0.1:{health_port}", *tls)
    try:
        assert f"health on 127.0.0.1:{health_port} (plaintext)" in gateway.output()
        wait_for_health(f"127.0.0.1:{health_port}", health_pb2.HealthCheckResponse.SERVING, service="")
        ok = _healthcheck(f"--health-listen=127.0.0.1:{health_port}", *tls)
        assert (ok.returncode, ok.stdout) == (0, f"127.0.0.1:{health_port}: SERVING\n"), ok.stderr
        refused = _healthcheck(f"--listen={gateway.target}", *tls)  # no health port: it will not guess
        assert refused.returncode == 1 and "set health_listen" in refused.stderr
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:  # health alone, nothing else
            with pytest.raises(grpc.RpcError) as error:
                pb_grpc.SegmentationServiceStub(channel).SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=5)
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        gateway.stop()
    down = _healthcheck(f"--health-listen=127.0.0.1:{health_port}")
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr


def test_a_certificate_without_its_own_key_is_not_taken_up_and_is_told(
    pki: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    cert, key = _served_copies(pki, tmp_path)
    config, backends = two_model_config(tls_cert=str(cert), tls_key=str(key))
    request = pb.SegmentImageRequest(image=IMAGE)
    failed_before = reload_failures.counts()["tls"]
    with running(config, backends) as served:
        # A renewal half done: the new certificate beside the old key. gRPC would take the bytes and keep the old
        # certificate without a word; the gateway says so, and the metrics tell an alert.
        trustme.CA().issue_cert("127.0.0.1").cert_chain_pems[0].write_to_path(str(cert))
        assert _secure_stub(served.target, pki).SegmentImage(request, timeout=10).classes  # the old one still
        assert reload_failures.counts()["tls"] > failed_before and reload_failures.unreadable()["tls"]
        cert.write_bytes(pki["client.crt"].read_bytes())  # mended: a certificate and its key, of the same CA
        key.write_bytes(pki["client.key"].read_bytes())
        with pytest.raises(grpc.RpcError):  # its name is not 127.0.0.1: proof it was taken up
            _secure_stub(served.target, pki).SegmentImage(request, timeout=5)
        assert not reload_failures.unreadable()["tls"]
