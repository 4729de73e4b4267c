"""TensorFlow Lite versions (`--prefer_tflite_model`), loaded and run as TF Serving's TfLiteSession does.

What is mirrored, from github.com/tensorflow/serving at commit 9d981c5c (paths under
tensorflow_serving/servables/tensorflow/ unless given):
- saved_model_bundle_factory.cc:55 and :85-88: the file is `<version dir>/model.tflite`; :132 and :169-181: it is
  loaded instead of the SavedModel only when the flag is set and that file exists, else the SavedModel is loaded.
- tflite_session.cc:461-468: SignatureDefs are read from the model's `signature_defs_metadata` metadata entry
  (TensorFlow SignatureDefs stored by tensorflow/lite/tools/signature/signature_def_util.cc), not from TFLite's own
  signature runners (`Interpreter.get_signature_list()`), which TF Serving does not look at.
- tflite_session.cc:472-494: the tensor names in such SignatureDefs must exist, or exist without their `:N` suffix
  (FixTfLiteTensorName, :101-118), which then replaces the name.
- tflite_session.cc:494-508: without them, one signature `serving_default` (kDefaultServingSignatureDefKey) with
  method_name `tensorflow/serving/predict`; every input and output is keyed by its tensor name cut at the first
  ':' (TfToTfLiteLegacyTensorName, :91-97); its TensorInfo has the full tensor name, the TF dtype and the tensor's
  current dims (TfLiteTensorToTensorInfo, :120-131; GetTensorInfoMap, :133-153). The shared DeepLab model has no
  signatures, so its signature is `serving_default`: `sub_7` float [1,257,257,3] -> `ResizeBilinear_3`.
- tflite_session.cc:52-89: the TFLite types that have a TF dtype; any other fails the load ("Unknown TfLite type").
- tflite_session.cc:510-516 with tflite_interpreter_pool.h:129-140: a pool of interpreters, each used by one call
  at a time; a call waits for a free one. TF Serving sizes it with --num_tflite_pools (model_servers/server.h:99,
  default: the schedulable CPUs).
- tflite_interpreter_pool.cc:154-155: every interpreter runs single-threaded, to avoid contention between calls.

Differences on purpose:
- Predict checks the dtype and shape of each input against the signature (predict.py) before any interpreter sees
  it. TF Serving's TfLiteSession does not: it resizes the input tensor to the request's dims when dims or byte
  counts differ, then copies the request's bytes in (tflite_session.cc:217-236). A uint8 image is thus read as if
  its bytes were floats, and a rank-3 image resizes the input; with this model, invoking after such a resize
  crashes the process (segmentation fault). Here both are INVALID_ARGUMENT, as for a SavedModel, so no client can
  come to depend on what TF Serving does with them.
- `--tensorflow_intra_op_parallelism`, when set, is each interpreter's thread count (TF Serving always uses 1).
- There is no TFLite batch scheduler (--num_tflite_interpreters_per_pool), so requests are never merged.
"""

from __future__ import annotations

import logging
import pathlib
import queue
import warnings

import numpy as np
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.lite.python import schema_py_generated as tflite_schema

log = logging.getLogger("modelserver")

TFLITE_FILENAME = "model.tflite"
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"  # kSignatureDefsMetadataName in signature_def_util.h

# TfLiteTypeToTfType (tflite_session.cc:52-89), keyed by the NumPy dtype the Python interpreter reports.
_TF_DTYPES = {
    np.dtype(np_type): tf.dtypes.as_dtype(tf_type).as_datatype_enum
    for np_type, tf_type in [
        (np.float32, tf.float32),
        (np.int32, tf.int32),
        (np.uint8, tf.uint8),
        (np.int64, tf.int64),
        (np.bytes_, tf.string),
        (np.bool_, tf.bool),
        (np.int16, tf.int16),
        (np.complex64, tf.complex64),
        (np.int8, tf.int8),
    ]
}


def has_tflite_model(version_dir: pathlib.Path) -> bool:
    return (version_dir / TFLITE_FILENAME).is_file()


def _new_interpreter(model: bytes, num_threads: int) -> tf.lite.Interpreter:
    with warnings.catch_warnings():
        # TensorFlow 2.21 still ships tf.lite.Interpreter and warns on every construction that LiteRT replaces it;
        # the warning says nothing about this model and would fill the log once per version and interpreter.
        warnings.filterwarnings(
            "ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated", category=UserWarning
        )
        try:
            interpreter = tf.lite.Interpreter(model_content=model, num_threads=num_threads)
        except ValueError as exc:
            raise tf.errors.InvalidArgumentError(
                None, None, f"Cannot build FlatBufferModel from buffer. {exc}"
            ) from exc
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:
        raise tf.errors.InternalError(None, None, f"Failed to allocate tensors: {exc}") from exc
    return interpreter


def _tensor_info(detail: dict) -> meta_graph_pb2.TensorInfo:
    dtype = _TF_DTYPES.get(np.dtype(detail["dtype"]))
    if dtype is None:
        raise tf.errors.InternalError(None, None, f"Unknown TfLite type: {np.dtype(detail['dtype']).name}")
    info = meta_graph_pb2.TensorInfo(name=detail["name"], dtype=dtype)
    for size in detail["shape"]:
        info.tensor_shape.dim.add(size=int(size))
    return info


def _tensor_map(details: list[dict], kind: str) -> dict[str, tuple[meta_graph_pb2.TensorInfo, int]]:
    """Tensor name -> (TensorInfo, tensor index), as GetTensorInfoMap builds it."""
    tensors: dict[str, tuple[meta_graph_pb2.TensorInfo, int]] = {}
    for detail in details:
        name = detail["name"]
        if not name:
            raise tf.errors.InternalError(None, None, f"{kind} name missing for tensor index: {detail['index']}")
        if name in tensors:
            raise tf.errors.AlreadyExistsError(None, None, f"{kind} tensor name: {name} has multiple indices")
        tensors[name] = (_tensor_info(detail), int(detail["index"]))
    return tensors


def _legacy_name(name: str) -> str:
    """TfToTfLiteLegacyTensorName: older converters dropped the ':0' of TensorFlow tensor names."""
    return name.split(":", 1)[0]


def _fix_name(tensors: dict[str, tuple[meta_graph_pb2.TensorInfo, int]], name: str) -> str:
    if name in tensors:
        return name
    if _legacy_name(name) in tensors:
        return _legacy_name(name)
    raise KeyError(f"Unknown tensor '{name}'.")


def _stored_signature_defs(model: bytes) -> dict[str, meta_graph_pb2.SignatureDef]:
    """tflite::GetSignatureDefMap: the SignatureDefs in the `signature_defs_metadata` entry, if there is one."""
    root = tflite_schema.Model.GetRootAsModel(model, 0)
    for i in range(root.MetadataLength()):
        metadata = root.Metadata(i)
        if metadata.Name() != SIGNATURE_DEFS_METADATA.encode():
            continue
        data = root.Buffers(metadata.Buffer()).DataAsNumpy()
        try:
            serialized = flexbuffers.GetRoot(bytes(data)).AsMap
            signatures = {}
            for key, value in zip(serialized.Keys, serialized.Values, strict=True):
                signatures[key.AsKey] = meta_graph_pb2.SignatureDef.FromString(value.AsStringBytes)
        except Exception as exc:  # any malformed buffer is the file's fault, reported as TF Serving reports it
            raise tf.errors.InvalidArgumentError(
                None, None, f"Invalid SignatureDefs found in TfLite model: Error reading signature def map: {exc}"
            ) from exc
        return signatures
    return {}


def _signature_defs(
    model: bytes,
    inputs: dict[str, tuple[meta_graph_pb2.TensorInfo, int]],
    outputs: dict[str, tuple[meta_graph_pb2.TensorInfo, int]],
) -> dict[str, meta_graph_pb2.SignatureDef]:
    stored = _stored_signature_defs(model)
    for signature in stored.values():
        for kind, infos, tensors in (("input", signature.inputs, inputs), ("output", signature.outputs, outputs)):
            for alias, info in infos.items():
                try:
                    info.name = _fix_name(tensors, info.name)
                except KeyError as exc:
                    raise tf.errors.InternalError(
                        None, None, f"{exc.args[0]}\n\tSignature {kind} {alias} references an unknown tensor"
                    ) from exc
    if stored:
        return stored
    log.warning("No signature def found in TFLite model. Generating one.")
    signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
    for name, (info, _) in inputs.items():
        signature.inputs[_legacy_name(name)].CopyFrom(info)
    for name, (info, _) in outputs.items():
        signature.outputs[_legacy_name(name)].CopyFrom(info)
    return {DEFAULT_SIGNATURE: signature}


class TfLiteSession:
    """A pool of interpreters for one loaded version, run through the `run(fetches, feed_dict)` of a TF session.

    A tf.lite.Interpreter holds its input and output tensors in itself and is not thread-safe, so each call takes
    an interpreter from the pool for the whole set-invoke-read sequence and returns it afterwards.
    """

    def __init__(self, interpreters: list[tf.lite.Interpreter], inputs: dict[str, int], outputs: dict[str, int]):
        # LIFO, as TF Serving's pool (a vector it pops from the back): the most recently used interpreter is warm.
        self._pool: queue.LifoQueue[tf.lite.Interpreter] = queue.LifoQueue()
        for interpreter in interpreters:
            self._pool.put(interpreter)
        self._inputs = inputs
        self._outputs = outputs
        self.num_interpreters = len(interpreters)

    def run(self, fetches: list[str], feed_dict: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Output arrays for tensor names; feeds are keyed by tensor name and already match the signature."""
        interpreter = self._pool.get()
        try:
            for name, value in feed_dict.items():
                if name not in self._inputs:
                    raise tf.errors.InvalidArgumentError(None, None, f"Missing input TFLite tensor: {name}")
                try:
                    interpreter.set_tensor(self._inputs[name], value)
                except ValueError as exc:  # a dtype or shape that predict.py's checks should have refused
                    raise tf.errors.InvalidArgumentError(None, None, f"input {name}: {exc}") from exc
            try:
                interpreter.invoke()
            except RuntimeError as exc:
                raise tf.errors.InternalError(None, None, f"Failed to invoke TfLite interpreter: {exc}") from exc
            # get_tensor copies, so the arrays stay valid once the interpreter serves another call.
            return [interpreter.get_tensor(self._outputs[name]) for name in fetches]
        finally:
            self._pool.put(interpreter)

    def close(self) -> None:
        """Drops the interpreters. Called once no request uses this version, so all of them are in the pool."""
        while True:
            try:
                self._pool.get_nowait()
            except queue.Empty:
                return


def load_tflite(
    version_dir: pathlib.Path, num_interpreters: int, intra_op: int
) -> tuple[TfLiteSession, dict[str, meta_graph_pb2.SignatureDef]]:
    """Loads `<version_dir>/model.tflite` into a pool of interpreters; returns it and the version's SignatureDefs."""
    model = (version_dir / TFLITE_FILENAME).read_bytes()
    # TF Serving: always 1 (tflite_interpreter_pool.cc:154-155); concurrency comes from the pool, not the threads.
    num_threads = intra_op if intra_op > 0 else 1
    first = _new_interpreter(model, num_threads)
    inputs = _tensor_map(first.get_input_details(), "Input")
    outputs = _tensor_map(first.get_output_details(), "Output")
    signature_defs = _signature_defs(model, inputs, outputs)
    interpreters = [first] + [_new_interpreter(model, num_threads) for _ in range(max(1, num_interpreters) - 1)]
    session = TfLiteSession(
        interpreters,
        {name: index for name, (_, index) in inputs.items()},
        {name: index for name, (_, index) in outputs.items()},
    )
    log.info(
        "TFLite model %s: %d interpreter(s) of %d thread(s); signatures %s",
        version_dir / TFLITE_FILENAME,
        session.num_interpreters,
        num_threads,
        ", ".join(sorted(signature_defs)),
    )
    return session, signature_defs
