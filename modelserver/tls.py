"""TF Serving's --ssl_config_file: an SSLConfig in protobuf text format (PEM contents, not paths) for the gRPC port.

The pip package of the TF Serving API does not ship ssl_config_pb2, so the message is declared here from
tensorflow_serving/config/ssl_config.proto (same package, names and field numbers) and parsed with protobuf's
own text format. As in TF Serving, only the gRPC port uses it; the REST port stays plaintext.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from modelserver.options import OptionsError, read_text_proto


def _ssl_config_class() -> type:
    file = descriptor_pb2.FileDescriptorProto(
        name="modelserver/ssl_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    message = file.message_type.add(name="SSLConfig")
    string, boolean = descriptor_pb2.FieldDescriptorProto.TYPE_STRING, descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    for number, (name, kind) in enumerate(
        (("server_key", string), ("server_cert", string), ("custom_ca", string), ("client_verify", boolean)), 1
    ):
        message.field.add(name=name, number=number, type=kind, label=optional)
    pool = descriptor_pool.DescriptorPool()  # its own pool: never clashes with a real ssl_config_pb2
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


SSLConfig = _ssl_config_class()


def server_credentials(path: str) -> grpc.ServerCredentials:
    """Server credentials from an SSLConfig file; with client_verify, clients must present a certificate that
    custom_ca signed."""
    config = read_text_proto(path, "--ssl_config_file", SSLConfig())
    if not config.server_key or not config.server_cert:
        raise OptionsError(f"--ssl_config_file {path}: needs server_key and server_cert (PEM contents)")
    if config.client_verify and not config.custom_ca:
        raise OptionsError(f"--ssl_config_file {path}: client_verify needs custom_ca")
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )
