"""Writing the SavedModel servable and proving it works. Imports TensorFlow."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from exporter.graph import INPUT_NODE, OUTPUT_NODE, ExportError

# The TF1 builder API logs a deprecation warning per call; it is the right tool for frozen graphs.
tf.get_logger().setLevel("ERROR")

SERVE_TAG = "serve"
SIGNATURE_NAME = "serving_default"
OUTPUT_DTYPES = ("int64", "uint8")

# --bytes-signature: the encoded image in, decoded and resized in the graph, the same DeepLab nodes, uint8 class ids.
BYTES_SIGNATURE_NAME = "serving_bytes"
BYTES_INPUT = "image_bytes"
LONGEST_SIDE = 513  # the model-zoo graphs' crop size: larger images are shrunk to it, smaller ones kept as they are
UINT8_PREDICTIONS_NODE = f"{OUTPUT_NODE}_uint8"


def bytes_note(bytes_size: tuple[int, int] | None) -> str:
    """What serving_bytes takes, for the exporter's summary."""
    resize = (
        f"to exactly {bytes_size[1]}x{bytes_size[0]}"
        if bytes_size
        else f"to at most {LONGEST_SIDE} on the longest side"
    )
    return (
        f"{BYTES_INPUT}: a batch of one string, shape [1]: an encoded JPEG, PNG, BMP or GIF (first frame); "
        f'over REST {{"b64": ...}}. Resized in the graph {resize}; the mask is at that size'
    )


@dataclass(frozen=True)
class SignatureSummary:
    """What one written signature accepts and returns, for the user to read."""

    name: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    note: str = ""

    def describe(self) -> str:
        ins = ", ".join(f"{k}: {v}" for k, v in self.inputs.items())
        outs = ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        line = f"signature '{self.name}' [{SERVE_TAG}]: inputs {{{ins}}} -> outputs {{{outs}}}"
        return f"{line}\n  {self.note}" if self.note else line


@dataclass(frozen=True)
class ModelSummary:
    """Every signature of the written servable, serving_default first."""

    signatures: tuple[SignatureSummary, ...]

    def describe(self) -> str:
        return "\n".join(s.describe() for s in self.signatures)


def scaled_size(height: int, width: int, longest_side: int = LONGEST_SIDE) -> tuple[int, int]:
    """The size serving_bytes resizes an image to: the longest side `longest_side`, the aspect ratio kept (the other
    side rounded half up, at least 1), never enlarged. Integer arithmetic, exactly as the graph does it."""
    longest = max(height, width)
    if longest <= longest_side:
        return height, width

    def scale(side: int) -> int:
        return max((2 * side * longest_side + longest) // (2 * longest), 1)

    return scale(height), scale(width)


def _resized(images: tf.Tensor, size: Any) -> tf.Tensor:
    """uint8 [n,h,w,3] of `size` (height, width): the bilinear resize serving_bytes applies."""
    resized = tf.image.resize(images, tf.cast(size, tf.int32), method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _decoded_image(image_bytes: tf.Tensor, fixed_size: tuple[int, int] | None) -> tf.Tensor:
    """uint8 [1,h,w,3] from a [1] string tensor: tf.io.decode_image, then a bilinear resize to `fixed_size`
    (height, width) or, without one, by scaled_size's rule."""
    image = tf.io.decode_image(image_bytes[0], channels=3, expand_animations=False)
    if fixed_size is not None:
        return _resized(image[tf.newaxis], fixed_size)
    size = tf.shape(image, out_type=tf.int64)[:2]
    longest = tf.reduce_max(size)
    scaled = tf.maximum((2 * size * LONGEST_SIDE + longest) // (2 * longest), 1)
    size = tf.where(longest > LONGEST_SIDE, scaled, size)
    return _resized(image[tf.newaxis], size)


def _without_node(graph_def: Any, name: str) -> Any:
    trimmed = type(graph_def)()
    trimmed.CopyFrom(graph_def)
    del trimmed.node[:]
    trimmed.node.extend(node for node in graph_def.node if node.name != name)
    return trimmed


def _class_count(predictions: tf.Tensor) -> int | None:
    """The number of classes the prediction is an argmax over, when the graph says it (the logits' last dimension)."""
    op = predictions.op
    while op.type == "Identity":
        op = op.inputs[0].op
    if op.type != "ArgMax":
        return None
    logits = op.inputs[0].shape
    return logits[-1] if logits.rank else None


def write_saved_model(
    graph_def: Any,
    directory: pathlib.Path,
    output_dtype: str = "int64",
    bytes_signature: bool = False,
    bytes_size: tuple[int, int] | None = None,
) -> None:
    """Writes graph_def as a SavedModel with the serve tag and a serving_default predict signature (its output cast
    to uint8 in the graph with output_dtype="uint8"); with bytes_signature also a serving_bytes signature that feeds
    the same imported nodes from the decoded encoded image, resized to `bytes_size` (height, width) or by
    scaled_size's rule, so the weights are stored once."""
    if output_dtype not in OUTPUT_DTYPES:
        raise ExportError(f"--output-dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {output_dtype}")
    # The TF1 builder keeps the frozen graph as it is (no retracing), the form TF Serving has always loaded.
    with tf.Graph().as_default() as graph:
        if bytes_signature:
            # ImageTensor becomes a PlaceholderWithDefault of the same name, dtype and shape: serving_default feeds it
            # as before (a fed tensor's inputs are not run), serving_bytes leaves it to its default, the decoded image.
            placeholder = next(node for node in graph_def.node if node.name == INPUT_NODE)
            shape = tf.TensorShape(placeholder.attr["shape"].shape) if "shape" in placeholder.attr else None
            with tf.name_scope(BYTES_SIGNATURE_NAME):
                image_bytes = tf.compat.v1.placeholder(tf.string, shape=[1], name=BYTES_INPUT)
                decoded = _decoded_image(image_bytes, bytes_size)
            image = tf.compat.v1.placeholder_with_default(decoded, shape=shape, name=INPUT_NODE)
            tf.compat.v1.import_graph_def(
                _without_node(graph_def, INPUT_NODE), input_map={f"{INPUT_NODE}:0": image}, name=""
            )
        else:
            tf.compat.v1.import_graph_def(graph_def, name="")
            image = graph.get_tensor_by_name(f"{INPUT_NODE}:0")
        predictions = graph.get_tensor_by_name(f"{OUTPUT_NODE}:0")
        signatures: dict[str, Any] = {}
        uint8_predictions = None
        if output_dtype == "uint8" or bytes_signature:
            classes = _class_count(predictions)
            if classes is not None and classes > 256:
                raise ExportError(f"the graph predicts {classes} classes; uint8 class ids hold at most 256")
            uint8_predictions = tf.cast(predictions, tf.uint8, name=UINT8_PREDICTIONS_NODE)
        default_output = uint8_predictions if output_dtype == "uint8" else predictions
        signatures[SIGNATURE_NAME] = tf.compat.v1.saved_model.predict_signature_def(
            inputs={INPUT_NODE: image}, outputs={OUTPUT_NODE: default_output}
        )
        if bytes_signature:
            signatures[BYTES_SIGNATURE_NAME] = tf.compat.v1.saved_model.predict_signature_def(
                inputs={BYTES_INPUT: image_bytes}, outputs={OUTPUT_NODE: uint8_predictions}
            )
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(directory))
            builder.add_meta_graph_and_variables(
                session, [SERVE_TAG], signature_def_map=signatures, strip_default_attrs=True
            )
            builder.save()


def _shape(spec: tf.TensorSpec) -> str:
    dims = [-1 if d is None else d for d in spec.shape.as_list()]
    return f"{spec.dtype.name} {dims}"


def _summary(name: str, fn: Any, note: str = "") -> SignatureSummary:
    return SignatureSummary(
        name=name,
        inputs={k: _shape(v) for k, v in fn.structured_input_signature[1].items()},
        outputs={k: _shape(v) for k, v in fn.structured_outputs.items()},
        note=note,
    )


def _mask(fn: Any, name: str, feeds: dict[str, Any], *, size: tuple[int, int], dtype: str, what: str) -> np.ndarray:
    result = fn(**{k: tf.constant(v) for k, v in feeds.items()})[OUTPUT_NODE].numpy()
    if result.shape != (1, *size):
        raise ExportError(f"verification failed: {name}: {what} gave a mask of shape {result.shape}")
    if result.dtype != np.dtype(dtype):
        raise ExportError(f"verification failed: {name}: the mask is {result.dtype}, expected {dtype}")
    if result.min() < 0:
        raise ExportError(f"verification failed: {name}: the mask holds negative class ids")
    return result


def verify_saved_model(
    directory: pathlib.Path,
    output_dtype: str = "int64",
    bytes_signature: bool = False,
    bytes_size: tuple[int, int] | None = None,
    *,
    probe_height: int = 97,
    probe_width: int = 131,
) -> ModelSummary:
    """Loads the servable the way a server would and segments a generated image with each signature."""
    loaded = tf.saved_model.load(str(directory), tags=[SERVE_TAG])
    expected = [SIGNATURE_NAME, *([BYTES_SIGNATURE_NAME] if bytes_signature else [])]
    for name in expected:
        if name not in loaded.signatures:
            raise ExportError(f"verification failed: no '{name}' signature in the written model")
    fn = default_fn = loaded.signatures[SIGNATURE_NAME]
    rng = np.random.default_rng(0)
    # An odd size catches graphs that only accept their training resolution.
    image = rng.integers(0, 256, size=(1, probe_height, probe_width, 3), dtype=np.uint8)
    size = (probe_height, probe_width)
    what = f"a {probe_width}x{probe_height} image"
    mask = _mask(fn, SIGNATURE_NAME, {INPUT_NODE: image}, size=size, dtype=output_dtype, what=what)
    summaries = [_summary(SIGNATURE_NAME, fn)]
    if bytes_signature:
        fn = loaded.signatures[BYTES_SIGNATURE_NAME]
        # The same pixels as a lossless PNG, small enough not to be resized (or, at a fixed size, given to
        # serving_default resized as serving_bytes resizes them): the same nodes give the same class ids (all but a
        # few near-ties, which separately optimised functions may break differently).
        png = tf.io.encode_png(image[0]).numpy()
        if bytes_size is not None:
            size = bytes_size
            resized = _resized(tf.constant(image), bytes_size).numpy()
            what = f"the image resized to {size[1]}x{size[0]}"
            mask = _mask(default_fn, SIGNATURE_NAME, {INPUT_NODE: resized}, size=size, dtype=output_dtype, what=what)
        what = "the same image as a PNG"
        same = _mask(fn, BYTES_SIGNATURE_NAME, {BYTES_INPUT: [png]}, size=size, dtype="uint8", what=what)
        agreement = float(np.mean(same == mask.astype(np.uint8)))
        if agreement < 0.99:
            raise ExportError(
                f"verification failed: {BYTES_SIGNATURE_NAME} and {SIGNATURE_NAME} agree on {agreement:.1%} of the "
                "pixels of the same image"
            )
        # A tall image is shrunk to LONGEST_SIDE on its long side (or to the fixed size).
        tall = rng.integers(0, 256, size=(2 * LONGEST_SIDE, probe_width, 3), dtype=np.uint8)
        png = tf.io.encode_png(tall).numpy()
        what = f"a {probe_width}x{2 * LONGEST_SIDE} PNG"
        size = bytes_size or scaled_size(*tall.shape[:2])
        _mask(fn, BYTES_SIGNATURE_NAME, {BYTES_INPUT: [png]}, size=size, dtype="uint8", what=what)
        summaries.append(_summary(BYTES_SIGNATURE_NAME, fn, bytes_note(bytes_size)))
    return ModelSummary(tuple(summaries))
