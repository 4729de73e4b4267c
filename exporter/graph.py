"""Reading a DeepLab frozen graph from a .pb file or a model-zoo .tar.gz, and checking its interface.

Pure Python and protobuf only: TensorFlow's GraphDef class is passed in so that this module can be
imported (and its errors raised) before TensorFlow is loaded.
"""

from __future__ import annotations

import pathlib
import tarfile
from typing import Any

INPUT_NODE = "ImageTensor"
OUTPUT_NODE = "SemanticPredictions"
FROZEN_GRAPH_NAME = "frozen_inference_graph.pb"


class ExportError(Exception):
    """A problem with the export that the user can fix; its message is one line."""


def read_graph_bytes(path: pathlib.Path) -> bytes:
    """Returns the serialized GraphDef from a .pb file or from a model-zoo tarball."""
    if not path.exists():
        raise ExportError(f"{path}: no such file")
    if not path.is_file():
        raise ExportError(f"{path}: not a regular file")
    if tarfile.is_tarfile(path):
        return _graph_from_tarball(path)
    return path.read_bytes()


def _graph_from_tarball(path: pathlib.Path) -> bytes:
    # Members are read in memory and never extracted, so a hostile archive cannot write outside a directory.
    try:
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(FROZEN_GRAPH_NAME)]
            if not members:
                raise ExportError(f"{path}: the archive holds no {FROZEN_GRAPH_NAME}")
            if len(members) > 1:
                names = ", ".join(m.name for m in members)
                raise ExportError(f"{path}: the archive holds several frozen graphs ({names}); pass one .pb")
            handle = archive.extractfile(members[0])
            assert handle is not None  # isfile() members always have a payload
            return handle.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ExportError(f"{path}: unreadable archive ({exc})") from exc


def parse_graph(data: bytes, graph_def_class: Any, source: pathlib.Path) -> Any:
    """Parses and checks a GraphDef: it must have the DeepLab uint8 input and the prediction output."""
    graph_def = graph_def_class()
    try:
        graph_def.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError or RuntimeError depending on the backend
        raise ExportError(f"{source}: not a TensorFlow GraphDef ({type(exc).__name__})") from exc
    nodes = {node.name: node for node in graph_def.node}
    missing = [name for name in (INPUT_NODE, OUTPUT_NODE) if name not in nodes]
    if missing:
        raise ExportError(
            f"{source}: not a DeepLab frozen graph: no {' or '.join(m + ':0' for m in missing)} tensor "
            f"(expected {INPUT_NODE}:0 uint8 [1,H,W,3] -> {OUTPUT_NODE}:0)"
        )
    input_node = nodes[INPUT_NODE]
    dtype = input_node.attr["dtype"].type if "dtype" in input_node.attr else None
    uint8 = 4  # tensorflow.DataType.DT_UINT8
    if input_node.op != "Placeholder" or dtype != uint8:
        raise ExportError(f"{source}: {INPUT_NODE}:0 must be a uint8 Placeholder, found {input_node.op}")
    return graph_def
