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


@dataclass(frozen=True)
class SignatureSummary:
    """What the written signature accepts and returns, for the user to read."""

    name: str
    inputs: dict[str, str]
    outputs: dict[str, str]

    def describe(self) -> str:
        ins = ", ".join(f"{k}: {v}" for k, v in self.inputs.items())
        outs = ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        return f"signature '{self.name}' [{SERVE_TAG}]: inputs {{{ins}}} -> outputs {{{outs}}}"


def write_saved_model(graph_def: Any, directory: pathlib.Path) -> None:
    """Writes graph_def as a SavedModel with the serve tag and a serving_default predict signature."""
    # The TF1 builder keeps the frozen graph as it is (no retracing), the form TF Serving has always loaded.
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        image = graph.get_tensor_by_name(f"{INPUT_NODE}:0")
        predictions = graph.get_tensor_by_name(f"{OUTPUT_NODE}:0")
        signature = tf.compat.v1.saved_model.predict_signature_def(
            inputs={INPUT_NODE: image}, outputs={OUTPUT_NODE: predictions}
        )
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(directory))
            builder.add_meta_graph_and_variables(
                session, [SERVE_TAG], signature_def_map={SIGNATURE_NAME: signature}, strip_default_attrs=True
            )
            builder.save()


def _shape(spec: tf.TensorSpec) -> str:
    dims = [-1 if d is None else d for d in spec.shape.as_list()]
    return f"{spec.dtype.name} {dims}"


def verify_saved_model(directory: pathlib.Path, probe_height: int = 97, probe_width: int = 131) -> SignatureSummary:
    """Loads the servable the way a server would and segments a generated image with it."""
    loaded = tf.saved_model.load(str(directory), tags=[SERVE_TAG])
    if SIGNATURE_NAME not in loaded.signatures:
        raise ExportError(f"verification failed: no '{SIGNATURE_NAME}' signature in the written model")
    fn = loaded.signatures[SIGNATURE_NAME]
    input_specs = fn.structured_input_signature[1]
    output_specs = fn.structured_outputs
    rng = np.random.default_rng(0)
    # An odd size catches graphs that only accept their training resolution.
    image = rng.integers(0, 256, size=(1, probe_height, probe_width, 3), dtype=np.uint8)
    result = fn(**{INPUT_NODE: tf.constant(image)})[OUTPUT_NODE].numpy()
    if result.shape != (1, probe_height, probe_width):
        raise ExportError(
            f"verification failed: a {probe_width}x{probe_height} image gave a mask of shape {result.shape}"
        )
    if result.min() < 0:
        raise ExportError("verification failed: the mask holds negative class ids")
    return SignatureSummary(
        name=SIGNATURE_NAME,
        inputs={k: _shape(v) for k, v in input_specs.items()},
        outputs={k: _shape(v) for k, v in output_specs.items()},
    )
