"""Reading a DeepLab frozen graph from a .pb file or a model-zoo .tar.gz, and checking its interface.

Pure Python and protobuf only: TensorFlow's GraphDef class is passed in so that this module can be
imported (and its errors raised) before TensorFlow is loaded, and `GRAPH_DEF_SUBSET` checks a file before then.
"""

from __future__ import annotations

import pathlib
import tarfile
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

INPUT_NODE = "ImageTensor"
OUTPUT_NODE = "SemanticPredictions"
FROZEN_GRAPH_NAME = "frozen_inference_graph.pb"
# --bytes-signature-size full: the decoded image goes to the graph at its own size.
FULL_SIZE = "full"


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


def _graph_def_subset() -> Any:
    """tensorflow.GraphDef as far as parse_graph reads it (each node's name, op and attr map, an attr's type), with
    the same field numbers and wire types; the rest is kept as unknown fields. In a pool of its own, so that it
    never meets TensorFlow's own GraphDef."""
    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    proto = descriptor_pb2.FileDescriptorProto(name="exporter_graph_subset.proto", package="subset", syntax="proto3")
    attr_value = proto.message_type.add(name="AttrValue")
    attr_value.field.add(name="type", number=6, type=field.TYPE_INT32, label=optional)  # an enum on the wire
    node = proto.message_type.add(name="NodeDef")
    node.field.add(name="name", number=1, type=field.TYPE_STRING, label=optional)
    node.field.add(name="op", number=2, type=field.TYPE_STRING, label=optional)
    attr_entry = ".subset.NodeDef.AttrEntry"
    node.field.add(name="attr", number=5, type=field.TYPE_MESSAGE, label=repeated, type_name=attr_entry)
    entry = node.nested_type.add(name="AttrEntry", options=descriptor_pb2.MessageOptions(map_entry=True))
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=optional, type_name=".subset.AttrValue")
    graph = proto.message_type.add(name="GraphDef")
    graph.field.add(name="node", number=1, type=field.TYPE_MESSAGE, label=repeated, type_name=".subset.NodeDef")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("subset.GraphDef"))


# Checks a frozen graph before TensorFlow is loaded (seconds): a file that is not one is told at once. What the
# subset accepts, TensorFlow's GraphDef parses again, with the same checks.
GRAPH_DEF_SUBSET = _graph_def_subset()


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


@dataclass(frozen=True)
class ScoresTap:
    """Where a DeepLab graph's class scores can be read, and where a float image can be fed past its Cast.

    The graph computes SemanticPredictions = ArgMax(resize_half_pixel(resize_aligned(scores), input size)). A client
    given `scores` and the class ids at the network's own size decides every pixel at any size as the graph does.
    """

    cast: str  # the tensor that is ImageTensor cast to float ("Cast:0"), replaced by the float input
    shapes: tuple[str, ...]  # tensors that are ImageTensor's shape ("Shape:0"), replaced by the float input's
    scores: str  # the scores before the graph enlarges them ("ResizeBilinear_1:0"), [1, h, w, classes]
    network_size: str  # the aligned resize's size input, the network's own (height, width)


def _tensor(name: str) -> str:
    return name.lstrip("^") if ":" in name else f"{name.lstrip('^')}:0"


def _node(name: str) -> str:
    return name.lstrip("^").split(":")[0]


def find_scores(graph_def: Any) -> tuple[ScoresTap | None, str]:
    """The graph's ScoresTap, or None and why the graph does not have DeepLab's final resizes."""
    nodes = {node.name: node for node in graph_def.node}
    node = nodes[OUTPUT_NODE]
    while node.op == "Identity" and node.input:
        node = nodes[_node(node.input[0])]
    if node.op != "ArgMax":
        return None, f"{OUTPUT_NODE} is not an ArgMax over class scores"
    final = nodes[_node(node.input[0])]
    if final.op != "ResizeBilinear" or not final.attr["half_pixel_centers"].b or final.attr["align_corners"].b:
        return None, "the scores are not enlarged to the input's size by a half-pixel ResizeBilinear before the ArgMax"
    inner = nodes[_node(final.input[0])]
    if inner.op != "ResizeBilinear" or not inner.attr["align_corners"].b:
        return None, "the scores are not enlarged to the network's size by an aligned-corners ResizeBilinear"
    consumers = [n for n in graph_def.node if any(_node(i) == INPUT_NODE for i in n.input)]
    casts = [n for n in consumers if n.op == "Cast" and n.attr["DstT"].type == 1]  # DT_FLOAT
    shapes = [n for n in consumers if n.op == "Shape"]
    if len(casts) != 1 or len(casts) + len(shapes) != len(consumers):
        return None, f"{INPUT_NODE} is read by other nodes than one Cast to float and Shape ops"
    return (
        ScoresTap(
            cast=f"{casts[0].name}:0",
            shapes=tuple(f"{n.name}:0" for n in shapes),
            scores=_tensor(inner.input[0]),
            network_size=_tensor(inner.input[1]),
        ),
        "",
    )
