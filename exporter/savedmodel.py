"""Writing the SavedModel servable and proving it works. Imports TensorFlow."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from exporter.graph import FULL_SIZE, INPUT_NODE, OUTPUT_NODE, ExportError, find_scores

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

# The image as float32 (what the graph's Cast makes of ImageTensor), the same class ids, the class scores before the
# graph enlarges them, and the network's own size they are enlarged to: what a client needs to decide every pixel
# at any size as the graph does (the gateway reads the size to pick its exact profile: service/profile_detection.py).
SCORES_SIGNATURE_NAME = "serving_scores"
SCORES_INPUT = "image"
SCORES_OUTPUT = "scores"
NETWORK_SIZE_OUTPUT = "network_size"


@dataclass(frozen=True)
class ScoresNote:
    """The network's own size, which serving_scores' scores are enlarged to with aligned corners."""

    height: int
    width: int

    def describe(self) -> str:
        return (
            f"{SCORES_INPUT}: float32 RGB, 0-255, fed past the graph's Cast (any size; {self.width}x{self.height} is "
            f"the network's own). {SCORES_OUTPUT}: the class scores before the graph enlarges them with aligned "
            f"corners to {self.width}x{self.height}, then with half-pixel centres to the input's size, for the "
            f"argmax. {NETWORK_SIZE_OUTPUT}: that size, (height, width)"
        )


# serving_bytes' size: (height, width), FULL_SIZE (the decoded image as it is), or None (LONGEST_SIDE's rule).
BytesSize = tuple[int, int] | str | None


def bytes_note(bytes_size: BytesSize) -> str:
    """What serving_bytes takes, for the exporter's summary."""
    if bytes_size == FULL_SIZE:
        resize = "Not resized before the graph's own nodes; the mask is the graph's answer at the image's size"
    elif isinstance(bytes_size, tuple):
        resize = f"Resized in the graph to exactly {bytes_size[1]}x{bytes_size[0]}; the mask is at that size"
    else:
        resize = f"Resized in the graph to at most {LONGEST_SIDE} on the longest side; the mask is at that size"
    return (
        f"{BYTES_INPUT}: a batch of one string, shape [1]: an encoded JPEG (decoded as libjpeg's default, "
        f'INTEGER_ACCURATE), PNG, BMP or GIF (first frame); over REST {{"b64": ...}}. {resize}'
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


def _decoded_image(image_bytes: tf.Tensor, fixed_size: BytesSize) -> tf.Tensor:
    """uint8 [1,h,w,3] from a [1] string tensor, decoded (a JPEG as libjpeg, Pillow and OpenCV decode it by
    default, not with tf.io.decode_jpeg's faster default), then as it is (FULL_SIZE), resized to `fixed_size`
    (height, width), or, without one, by scaled_size's rule."""
    data = image_bytes[0]
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    if fixed_size == FULL_SIZE:
        return image[tf.newaxis]
    if isinstance(fixed_size, tuple):
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
    bytes_size: BytesSize = None,
) -> ScoresNote | None:
    """Writes graph_def as a SavedModel with the serve tag and a serving_default predict signature (its output cast
    to uint8 in the graph with output_dtype="uint8").

    Where the graph has DeepLab's final resizes (graph.find_scores), also serving_scores: the image as float32 fed
    past the graph's Cast, the same class ids, and the scores before the graph enlarges them. With bytes_signature
    also serving_bytes, which feeds the same nodes from the decoded encoded image, resized to `bytes_size`
    (height, width) or by scaled_size's rule. The weights are stored once. Returns what serving_scores holds, or
    None and says why it was not written.
    """
    if output_dtype not in OUTPUT_DTYPES:
        raise ExportError(f"--output-dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {output_dtype}")
    tap, no_scores_reason = find_scores(graph_def)
    # The TF1 builder keeps the frozen graph as it is (no retracing), the form TF Serving has always loaded.
    with tf.Graph().as_default() as graph:
        # ImageTensor is made anew with the same name, dtype and shape, so serving_default is fed as before. Other
        # signatures feed tensors further on (a fed tensor's inputs are not run): serving_bytes leaves ImageTensor to
        # its default, the decoded image; serving_scores feeds the float image where the graph's Cast was.
        placeholder = next(node for node in graph_def.node if node.name == INPUT_NODE)
        shape = tf.TensorShape(placeholder.attr["shape"].shape) if "shape" in placeholder.attr else None
        if bytes_signature:
            with tf.name_scope(BYTES_SIGNATURE_NAME):
                image_bytes = tf.compat.v1.placeholder(tf.string, shape=[1], name=BYTES_INPUT)
                decoded = _decoded_image(image_bytes, bytes_size)
            image = tf.compat.v1.placeholder_with_default(decoded, shape=shape, name=INPUT_NODE)
        else:
            image = tf.compat.v1.placeholder(tf.uint8, shape=shape, name=INPUT_NODE)
        input_map = {f"{INPUT_NODE}:0": image}
        if tap is not None:
            with tf.name_scope(SCORES_SIGNATURE_NAME):
                float_image = tf.compat.v1.placeholder_with_default(
                    tf.cast(image, tf.float32), shape=shape, name=SCORES_INPUT
                )
                input_map[tap.cast] = float_image
                input_map.update({name: tf.shape(float_image) for name in tap.shapes})
        tf.compat.v1.import_graph_def(_without_node(graph_def, INPUT_NODE), input_map=input_map, name="")
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
        note = None
        if tap is not None:
            scores = graph.get_tensor_by_name(tap.scores)
            network_size = tf.cast(graph.get_tensor_by_name(tap.network_size), tf.int32, name=NETWORK_SIZE_OUTPUT)
            outputs = {OUTPUT_NODE: default_output, SCORES_OUTPUT: scores, NETWORK_SIZE_OUTPUT: network_size}
            signatures[SCORES_SIGNATURE_NAME] = tf.compat.v1.saved_model.predict_signature_def(
                inputs={SCORES_INPUT: float_image}, outputs=outputs
            )
        if bytes_signature:
            signatures[BYTES_SIGNATURE_NAME] = tf.compat.v1.saved_model.predict_signature_def(
                inputs={BYTES_INPUT: image_bytes}, outputs={OUTPUT_NODE: uint8_predictions}
            )
        with tf.compat.v1.Session(graph=graph) as session:
            if tap is not None:
                height, width = (int(side) for side in session.run(tap.network_size))
                note = ScoresNote(height, width)
            builder = tf.compat.v1.saved_model.Builder(str(directory))
            builder.add_meta_graph_and_variables(
                session, [SERVE_TAG], signature_def_map=signatures, strip_default_attrs=True
            )
            builder.save()
    if note is None:
        print(f"exporter: note: no {SCORES_SIGNATURE_NAME} signature: {no_scores_reason}")
    return note


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


def _verify_scores(
    loaded: Any, note: ScoresNote, image: np.ndarray, mask: np.ndarray, *, output_dtype: str, rng: np.random.Generator
) -> None:
    """serving_scores gives serving_default's class ids for the same pixels, and its scores, enlarged as the note
    says, give those class ids at the network's size."""
    fn, default_fn = loaded.signatures[SCORES_SIGNATURE_NAME], loaded.signatures[SIGNATURE_NAME]
    size = image.shape[1:3]
    what = f"a {size[1]}x{size[0]} image as float32"
    same = _mask(
        fn, SCORES_SIGNATURE_NAME, {SCORES_INPUT: image.astype(np.float32)}, size=size, dtype=output_dtype, what=what
    )
    if not np.array_equal(same, mask):
        raise ExportError(
            f"verification failed: {SCORES_SIGNATURE_NAME} and {SIGNATURE_NAME} differ on the same pixels"
        )
    native = rng.integers(0, 256, size=(1, note.height, note.width, 3), dtype=np.uint8)
    size = (note.height, note.width)
    what = f"a {note.width}x{note.height} image"
    mask = _mask(default_fn, SIGNATURE_NAME, {INPUT_NODE: native}, size=size, dtype=output_dtype, what=what)
    found = fn(**{SCORES_INPUT: tf.constant(native.astype(np.float32))})[SCORES_OUTPUT]
    if found.shape.rank != 4 or found.shape[0] != 1 or found.dtype != tf.float32:
        raise ExportError(
            f"verification failed: {SCORES_OUTPUT} is {found.dtype.name} {found.shape}, not float32 [1,h,w,c]"
        )
    said = fn(**{SCORES_INPUT: tf.zeros((1, 1, 1, 3), tf.float32)})[NETWORK_SIZE_OUTPUT].numpy()
    if said.tolist() != [note.height, note.width]:
        raise ExportError(f"verification failed: {NETWORK_SIZE_OUTPUT} is {said.tolist()}, not {list(size)}")
    enlarged = tf.compat.v1.image.resize_bilinear(found, size, align_corners=True)
    if not np.array_equal(tf.argmax(enlarged, axis=-1).numpy(), mask):
        raise ExportError(
            f"verification failed: {SCORES_OUTPUT} enlarged to {note.width}x{note.height} with aligned corners do not "
            f"give {SIGNATURE_NAME}'s class ids"
        )


def verify_saved_model(
    directory: pathlib.Path,
    output_dtype: str = "int64",
    bytes_signature: bool = False,
    bytes_size: BytesSize = None,
    scores: ScoresNote | None = None,
    *,
    probe_height: int = 97,
    probe_width: int = 131,
) -> ModelSummary:
    """Loads the servable the way a server would and segments a generated image with each signature."""
    loaded = tf.saved_model.load(str(directory), tags=[SERVE_TAG])
    expected = [
        SIGNATURE_NAME,
        *([SCORES_SIGNATURE_NAME] if scores else []),
        *([BYTES_SIGNATURE_NAME] if bytes_signature else []),
    ]
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
    if scores is not None:
        _verify_scores(loaded, scores, image, mask, output_dtype=output_dtype, rng=rng)
        summaries.append(_summary(SCORES_SIGNATURE_NAME, loaded.signatures[SCORES_SIGNATURE_NAME], scores.describe()))
    if bytes_signature:
        fn = loaded.signatures[BYTES_SIGNATURE_NAME]
        # The same pixels as a lossless PNG, small enough not to be resized (or, at a fixed size, given to
        # serving_default resized as serving_bytes resizes them): the same nodes give the same class ids (all but a
        # few near-ties, which separately optimised functions may break differently).
        png = tf.io.encode_png(image[0]).numpy()
        if isinstance(bytes_size, tuple):
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
        # A tall image is shrunk to LONGEST_SIDE on its long side (or to the fixed size, or kept at its own).
        tall = rng.integers(0, 256, size=(2 * LONGEST_SIDE, probe_width, 3), dtype=np.uint8)
        png = tf.io.encode_png(tall).numpy()
        what = f"a {probe_width}x{2 * LONGEST_SIDE} PNG"
        if bytes_size == FULL_SIZE:
            size = tall.shape[:2]
        else:
            size = bytes_size if isinstance(bytes_size, tuple) else scaled_size(*tall.shape[:2])
        _mask(fn, BYTES_SIGNATURE_NAME, {BYTES_INPUT: [png]}, size=size, dtype="uint8", what=what)
        summaries.append(_summary(BYTES_SIGNATURE_NAME, fn, bytes_note(bytes_size)))
    return ModelSummary(tuple(summaries))
