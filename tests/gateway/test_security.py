"""The attacks of docs/reliability.md's "Security" section, each against a gateway process of its own (bench/attacks.py,
the figures' own script) beside the real model server; then, in-process, the ways a caller is named: JWTs, client
certificates and trusted proxies."""

from __future__ import annotations

import datetime
import json
import logging
import pathlib
import time
from collections.abc import Iterator
from dataclasses import replace

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench import attacks
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests import images
from tests.helpers import ROOT, ServerProcess, wait_for
from tests.inprocess import running, split, two_model_config

# Every attack is answered within a second (these bounds only catch hangs: CI machines are slow at times) and
# costs the gateway less than 100 MB (the figures, from `make attacks`, are in docs/reliability.md).
HANG_S = 10.0
RSS_BOUND_MB = 100


@pytest.fixture
def arena(modelserver: ServerProcess) -> Iterator[attacks.Arena]:
    with attacks.arena(ROOT, modelserver.target) as place:
        time.sleep(0.5)  # the health poll has seen the model
        place.before_mb = place.hwm_mb()  # type: ignore[attr-defined]
        yield place


def _growth(arena: attacks.Arena) -> float:
    return arena.hwm_mb() - arena.before_mb  # type: ignore[attr-defined]


def test_made_up_tenants_count_against_the_token_s_own_quota(arena: attacks.Arena) -> None:
    outcome = attacks.made_up_tenants(arena)
    assert outcome.codes == {"RESOURCE_EXHAUSTED": 5}, outcome


def test_a_token_cannot_name_another_team_s_tenant(arena: attacks.Arena) -> None:
    outcome = attacks.tenant_taken_by_another_token(arena)
    assert outcome.codes == {"OK": 1}, outcome


def test_a_caller_calls_and_lists_only_the_models_its_token_grants(arena: attacks.Arena) -> None:
    outcome = attacks.models_beyond_the_grant(arena)
    assert outcome.codes == {"PERMISSION_DENIED": 1}, outcome
    assert outcome.notes == {"message": "this caller may not use model 'deeplab'", "listed": ["deeplab-b"]}


def test_files_that_lie_about_their_size_are_refused_before_they_are_decoded(arena: attacks.Arena) -> None:
    outcome = attacks.lying_files(arena)
    assert outcome.codes == {"INVALID_ARGUMENT": 7}, outcome
    assert outcome.seconds < HANG_S and _growth(arena) < RSS_BOUND_MB, (outcome, _growth(arena))


def test_strangers_large_grpc_messages_are_refused_unread(arena: attacks.Arena) -> None:
    outcome = attacks.strangers_large_messages(arena)
    assert outcome.codes == {"UNAUTHENTICATED": 8}, outcome
    assert outcome.seconds < HANG_S and _growth(arena) < RSS_BOUND_MB, (outcome, _growth(arena))


def test_strangers_large_http_bodies_are_refused_unread(arena: attacks.Arena) -> None:
    outcome = attacks.strangers_large_http_bodies(arena)
    assert outcome.codes == {"401 Unauthorized": 8}, outcome
    assert outcome.seconds < HANG_S and _growth(arena) < RSS_BOUND_MB, (outcome, _growth(arena))


def test_a_stranger_s_almost_complete_messages_are_refused_unread(arena: attacks.Arena) -> None:
    outcome = attacks.almost_complete_messages(arena)
    assert outcome.codes == {"UNAUTHENTICATED": 10}, outcome
    assert outcome.seconds < HANG_S and _growth(arena) < RSS_BOUND_MB, (outcome, _growth(arena))


def test_a_caller_s_almost_complete_messages_hold_its_quota_until_read_timeout(arena: attacks.Arena) -> None:
    # Messages are read only once their call has its caller's quota and a place: two (its quota) at 20 MiB each,
    # for read_timeout (2 s); the others are refused at max_queue_wait, unread.
    outcome = attacks.almost_complete_messages_of_a_caller(arena)
    assert outcome.codes == {"DEADLINE_EXCEEDED": 2, "RESOURCE_EXHAUSTED": 8}, outcome
    assert outcome.seconds < attacks.PATIENCE_S and _growth(arena) < 2 * 21 + 20, (outcome, _growth(arena))


def test_a_grpc_message_that_stalls_is_let_go_at_read_timeout(arena: attacks.Arena) -> None:
    outcome = attacks.stalled_grpc_message(arena)
    assert outcome.codes == {"DEADLINE_EXCEEDED": 1}, outcome
    assert 1.5 < outcome.seconds < attacks.PATIENCE_S, outcome  # read_timeout is 2 s there


def test_slow_http_headers_and_bodies_are_let_go(arena: attacks.Arena) -> None:
    headers = attacks.slow_headers(arena)
    assert headers.codes == {"closed": 1} and headers.seconds < attacks.PATIENCE_S, headers
    body = attacks.slow_body(arena)
    assert body.codes == {"408 Request Timeout": 1} and body.seconds < attacks.PATIENCE_S, body


def test_request_ids_cannot_carry_control_bytes_or_forge_log_fields(arena: attacks.Arena) -> None:
    outcome = attacks.request_id_control_bytes(arena)
    assert outcome.codes["500 Internal Server Error"] == 0, outcome
    assert not outcome.notes["raw_control_bytes_in_log"] and not outcome.notes["forged_field_in_log"], outcome
    assert "x-request-id abc\\x5d\\x20caller=team-b" in arena.log()  # the refused id, escaped, under a new one


def test_a_header_that_is_not_utf8_is_a_bad_request(arena: attacks.Arena) -> None:
    assert attacks.non_utf8_header(arena).codes == {"400 Bad Request": 1}


def test_a_revoked_token_and_an_empty_tokens_file_stop_calls_within_two_seconds(arena: attacks.Arena) -> None:
    outcome = attacks.revocation(arena)
    assert outcome.codes == {"a refused": 1, "b refused": 1}, outcome
    assert outcome.notes["one_revoked_s"] < 2.5 and outcome.notes["all_revoked_s"] < 2.5, outcome
    assert "lists none: every call is refused" in arena.log()


def test_callers_are_not_told_internal_addresses(arena: attacks.Arena) -> None:
    outcome = attacks.internal_addresses(arena)
    assert outcome.codes == {"UNAVAILABLE": 1} and not outcome.notes["names_an_address"], outcome
    message = str(outcome.notes["message"])
    assert message.startswith("the model backend is unavailable; try again later (request id "), message
    request_id = message.rsplit(" ", 1)[1].rstrip(")")
    # The log has what the caller is not told, under the id it was given.
    assert any(request_id in line and "127.0.0.1:" in line for line in arena.log().splitlines()), arena.log()


# In-process: the other credentials, and a trusted proxy.

REQUEST = pb.SegmentImageRequest(image=images.png("chelsea.png"))


def _names(served, metadata=()) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.name for m in served.stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10).models]


def _callers(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The callers of the calls logged so far, as their log lines name them."""
    lines = [r.getMessage() for r in caplog.records if r.name == "service.api.interceptors"]
    return [line.rsplit("caller=", 1)[1] for line in lines if "caller=" in line]


def test_a_jwt_names_its_tenant_and_grants_its_scope(tmp_path: pathlib.Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES256"}]}))
    config, backends = two_model_config(
        auth_jwks=str(tmp_path / "jwks.json"), auth_jwt_issuer="https://idp.example", auth_jwt_audience="gw"
    )
    claims = {"iss": "https://idp.example", "aud": "gw", "exp": time.time() + 60, "tenant": "team-j"}
    only_lite = jwt.encode({**claims, "scope": "openid model:deeplab-lite"}, key, "ES256", headers={"kid": "k1"})
    bearer = (("authorization", f"Bearer {only_lite}"),)
    with running(config, backends) as served:
        assert _names(served, bearer) == ["deeplab-lite"]
        lite = pb.SegmentImageRequest(image=REQUEST.image, model=pb.ModelSelector(name="deeplab-lite"))
        assert served.stub.SegmentImage(lite, metadata=bearer, timeout=10).model.name == "deeplab-lite"
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(REQUEST, metadata=bearer, timeout=10)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.value.details() == "this caller may not use model 'deeplab'"
        expired = jwt.encode({**claims, "exp": time.time() - 100}, key, "ES256", headers={"kid": "k1"})
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(lite, metadata=(("authorization", f"Bearer {expired}"),), timeout=10)
        assert (error.value.code(), error.value.details()) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "invalid bearer token: the JWT has expired",
        )


def test_grants_narrow_a_split_and_pin_signatures(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tokens").write_text("stable-only models=deeplab/stable\nany-sig models=deeplab/*\n")
    config, backends = two_model_config(auth_tokens=str(tmp_path / "tokens"))
    config = replace(config, models=(split(50, 50), *config.models[1:]))
    stable_only = (("authorization", "Bearer stable-only"),)
    with running(config, backends) as served:
        # Every call that names no variant goes to the one it may use, whatever the split's draw.
        variants = {served.stub.SegmentImage(REQUEST, metadata=stable_only, timeout=10).model.variant for _ in range(8)}
        assert variants == {"stable"}
        for selector, told in (
            (pb.ModelSelector(variant="canary"), "at variant 'canary'"),
            (pb.ModelSelector(version_label="canary"), "at version label 'canary'"),
            (pb.ModelSelector(signature_name="other"), "with signature 'other'"),
        ):
            with pytest.raises(grpc.RpcError) as error:
                request = pb.SegmentImageRequest(image=REQUEST.image, model=selector)
                served.stub.SegmentImage(request, metadata=stable_only, timeout=10)
            assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.value.details() == f"this caller may not use model 'deeplab' {told}"
        with pytest.raises(grpc.RpcError) as error:
            request = pb.SegmentImageRequest(image=REQUEST.image, model=pb.ModelSelector(name="nope"))
            served.stub.SegmentImage(request, metadata=stable_only, timeout=10)
        # Unknown: the models it may use are named, no others.
        assert error.value.details() == "model 'nope' is not configured on this service; configured: deeplab"
        request = pb.SegmentImageRequest(image=REQUEST.image, model=pb.ModelSelector(signature_name="other"))
        answer = served.stub.SegmentImage(request, metadata=(("authorization", "Bearer any-sig"),), timeout=10)
        assert answer.model.signature_name == "other"  # deeplab/* grants any signature


def _certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, common_name: str, uri: str = ""
) -> tuple[bytes, bytes]:
    """A client certificate (PEM) and its key, signed by the CA, with a URI SAN if given."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if uri:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def test_client_certificates_name_callers_and_an_identities_file_says_what_they_may_call(
    pki: dict[str, pathlib.Path], tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.api.interceptors")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test clients")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "clients-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    spiffe = "spiffe://example.org/ns/batch/sa/worker"
    (tmp_path / "identities").write_text(f"{spiffe} tenant=batch models=deeplab-lite\n")
    config, backends = two_model_config(
        tls_cert=str(pki["server.crt"]),
        tls_key=str(pki["server.key"]),
        tls_client_ca=str(tmp_path / "clients-ca.pem"),
        auth_certificates=str(tmp_path / "identities"),
    )
    with running(config, backends) as served:

        def stub(cert: bytes, key: bytes) -> pb_grpc.SegmentationServiceStub:
            credentials = grpc.ssl_channel_credentials(pki["ca"].read_bytes(), key, cert)
            channel = grpc.secure_channel(served.target, credentials)
            return pb_grpc.SegmentationServiceStub(channel)

        worker = stub(*_certificate(ca_key, ca_name, "worker", spiffe))
        listed = worker.ListModels(pb.ListModelsRequest(), timeout=10)
        assert [m.name for m in listed.models] == ["deeplab-lite"]
        lite = pb.SegmentImageRequest(image=REQUEST.image, model=pb.ModelSelector(name="deeplab-lite"))
        assert worker.SegmentImage(lite, timeout=10).classes
        assert wait_for(lambda: "tenant:batch" in _callers(caplog), 5) >= 0, _callers(caplog)
        stranger = stub(*_certificate(ca_key, ca_name, "someone-else"))
        with pytest.raises(grpc.RpcError) as error:
            stranger.SegmentImage(lite, timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_x_tenant_names_the_caller_only_from_a_trusted_proxy(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="service.api.interceptors")
    tenant = (("x-tenant", "team-a"),)
    for proxies, named in (("", "ipv4:127.0.0.1:"), ("10.0.0.0/8", "ipv4:127.0.0.1:"), ("127.0.0.1", "tenant:team-a")):
        caplog.clear()
        config, backends = two_model_config(trusted_proxies=proxies)
        with running(config, backends) as served:
            served.stub.SegmentImage(REQUEST, metadata=tenant, timeout=10)
            wait_for(lambda: _callers(caplog), 5)
        assert _callers(caplog)[0].startswith(named), (proxies, _callers(caplog))
