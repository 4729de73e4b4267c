"""TLS on both hops for real: client --mTLS--> gateway --mTLS--> modelserver started with TF Serving's
--ssl_config_file, all certificates from a CA made at test time."""

from __future__ import annotations

import pathlib

import grpc
import pytest

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests.helpers import start_gateway, start_modelserver
from tests.paths import IMAGES, LABELS, PERSON
from tfs_subset.tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc


def ssl_config(pki: dict[str, pathlib.Path], directory: pathlib.Path, client_verify: bool) -> pathlib.Path:
    """TF Serving's SSLConfig text format: PEM contents, not paths."""

    def quoted(name: str) -> str:
        return '"' + pki[name].read_text().replace("\n", "\\n") + '"'

    path = directory / "ssl.config"
    path.write_text(
        f"server_key: {quoted('server.key')}\nserver_cert: {quoted('server.crt')}\ncustom_ca: {quoted('ca')}\n"
        f"client_verify: {'true' if client_verify else 'false'}\n"
    )
    return path


def test_mutual_tls_on_both_hops(
    pki: dict[str, pathlib.Path], servable_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    modelserver = start_modelserver(
        "--model_name=deeplab",
        f"--model_base_path={servable_base}",
        f"--ssl_config_file={ssl_config(pki, tmp_path, client_verify=True)}",
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[server]\ntls_cert = "{pki["server.crt"]}"\ntls_key = "{pki["server.key"]}"\ntls_client_ca = "{pki["ca"]}"\n'
        f'[[backends]]\nname = "tls"\ntargets = ["{modelserver.target}"]\n'
        f'ca = "{pki["ca"]}"\ncert = "{pki["client.crt"]}"\nkey = "{pki["client.key"]}"\n'
        f'[[models]]\nname = "deeplab"\nlabels = "{LABELS}"\n'
    )
    gateway = start_gateway(None, f"--config={config}")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=pki["client.key"].read_bytes(),
        certificate_chain=pki["client.crt"].read_bytes(),
    )
    try:
        with grpc.secure_channel(gateway.target, credentials) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            request = pb.SegmentImageRequest(image=(IMAGES / "astronaut.png").read_bytes())
            classes = {c.class_id for c in stub.SegmentImage(request, timeout=60).classes}
            assert PERSON in classes
            models = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
            assert models[0].versions[0].state == pb.MODEL_VERSION_STATE_AVAILABLE
        # The model server refuses a plaintext client, as it would a gateway without the backend's `ca`.
        with grpc.insecure_channel(modelserver.target) as plain, pytest.raises(grpc.RpcError) as error:
            status = get_model_status_pb2.GetModelStatusRequest()
            status.model_spec.name = "deeplab"
            model_service_pb2_grpc.ModelServiceStub(plain).GetModelStatus(status, timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        assert gateway.stop() == 0, gateway.output()
        modelserver.stop()


def test_a_bad_ssl_config_file_is_one_line_and_exit_2(tmp_path: pathlib.Path, servable_base: pathlib.Path) -> None:
    bad = tmp_path / "ssl.config"
    bad.write_text('server_key: "x"\n')
    with pytest.raises(RuntimeError) as error:
        start_modelserver("--model_name=deeplab", f"--model_base_path={servable_base}", f"--ssl_config_file={bad}")
    assert "modelserver: error: --ssl_config_file" in str(error.value) and "needs server_key and server_cert" in str(
        error.value
    )
