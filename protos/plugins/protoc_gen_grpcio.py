"""A protoc plugin that delegates to grpcio-tools' bundled protoc.

buf drives code generation through plugins, but grpcio-tools ships its Python, .pyi and gRPC generators
only inside `grpc_tools.protoc`, not as plugin executables. This adapter receives buf's
CodeGeneratorRequest, hands the already-compiled descriptors to grpc_tools.protoc via
--descriptor_set_in, and returns the files it wrote. Using grpcio-tools keeps the generated code's
protobuf version in step with the runtime the project installs.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        descriptor_set = root / "descriptors.binpb"
        descriptor_set.write_bytes(descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString())
        out = root / "out"
        out.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--descriptor_set_in={descriptor_set}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed; see its messages above"
        else:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
