"""TF Serving's REST JSON for Predict: the request's "instances"/"inputs" to arrays, output arrays to JSON.

Mirrors tensorflow_serving/util/json_tensor.cc (tensorflow/serving 9d981c5c), with its error messages, so that a
REST client sees what TF Serving would tell it:
- ParseJson (:473-502): an empty body, a syntax error (rapidjson's words and offset; data after the document is
  ignored, kParseStopWhenDoneFlag), a document that is not an object.
- FillSignature (:505-517), FillPredictRequestFromJson (:653-705): "signature_name", exactly one of "instances"
  (row format) and "inputs" (columnar format).
- FillTensorMapFromInstancesList (:519-607) and FillTensorMapFromInputsMap (:609-649): instances are stacked along
  a new first dimension and must all have one shape; named inputs are objects.
- FillTensorProto and AddValueToTensor (:290-436): the shape comes from the first element at each level
  (GetDenseTensorShape), every value must sit at the leaf level of a list of that size, and have the JSON type of
  the input's dtype (a number for floats, an integer in range for integers, ...); {"b64": "..."} for DT_STRING.
- MakeRowFormatJsonFromTensors / MakeColumnarFormatJsonFromTensors (:975-1048) and AddSingleValueAndAdvance
  (:888-950): {"predictions": [...]} (one item per batch element, objects when there are several outputs) or
  {"outputs": ...}, laid out as rapidjson's PrettyWriter lays them out; floats as WriteDecimal writes them (:125-170);
  string outputs whose alias ends in "_bytes" as {"b64": ...} (:879-885).

Arrays are converted with NumPy where the JSON is plainly well formed; anything else goes through a walk that
follows FillTensorProto step by step and so fails with TF Serving's message.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from modelserver.errors import ServingError, invalid
from modelserver.tensors import dtype_name, tf_dtype

INSTANCES = "instances"
INPUTS = "inputs"
SIGNATURE_NAME = "signature_name"
BASE64_KEY = "b64"
BYTES_SUFFIX = "_bytes"
MAX_DEBUG_BYTES = 256  # kMaxJsonDebugStringBytes
INDENT = "    "  # rapidjson's PrettyWriter: four spaces a level

# The NumPy dtype each input dtype that JSON can carry becomes.
_NUMPY = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
}
_INT32 = (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8)
_RANGES = {  # rapidjson's IsInt, IsInt64, IsUint, IsUint64
    **dict.fromkeys(_INT32, (-(2**31), 2**31 - 1)),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}


@dataclass(frozen=True)
class PredictInputs:
    """A REST predict request's tensors, and whether the answer is in the row ("predictions") format."""

    arrays: dict[str, np.ndarray]
    row_format: bool


# ---------------------------------------------------------------------------------------------------------------
# The request document


def parse_document(body: bytes) -> dict[str, Any]:
    """ParseJson: the body as a JSON object, or INVALID_ARGUMENT with rapidjson's description of what is wrong."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from exc
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise invalid(f"JSON Parse error: The document is empty. at offset: {start}")
    try:
        # raw_decode stops at the end of the first value, as kParseStopWhenDoneFlag does.
        document, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {_rapidjson_message(exc, text)} at offset: {exc.pos}") from exc
    if not isinstance(document, dict):
        raise invalid(f"JSON Value: {debug_string(document)} Is not object")
    return document


def signature_name(document: dict[str, Any]) -> str:
    """FillSignature: the optional "signature_name" ('' when absent)."""
    if SIGNATURE_NAME not in document:
        return ""
    name = document[SIGNATURE_NAME]
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {debug_string(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def predict_inputs(
    document: dict[str, Any], infos: Mapping[str, meta_graph_pb2.TensorInfo], signature: str, body: bytes
) -> PredictInputs:
    """FillPredictRequestFromJson after the signature is known: the input arrays, keyed by input alias."""
    if not infos:
        raise invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    # A JSON `true` or `false` would pass for 1 or 0 in NumPy's conversion; rapidjson refuses them as numbers.
    fast = b"true" not in body and b"false" not in body
    if INSTANCES in document:
        if INPUTS in document:
            raise invalid(
                f"JSON Value: {debug_string(document)} Not formatted correctly expecting only one of 'inputs' or "
                "'instances' keys to exist "
            )
        instances = document[INSTANCES]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {debug_string(document)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {debug_string(document)} No values in 'instances' array")
        return PredictInputs(_from_instances(instances, infos, fast), row_format=True)
    if INPUTS in document:
        return PredictInputs(_from_inputs(document[INPUTS], infos, fast), row_format=False)
    raise invalid("Missing 'inputs' or 'instances' key")


def _from_instances(
    instances: list[Any], infos: Mapping[str, meta_graph_pb2.TensorInfo], fast: bool
) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    names = sorted(infos)
    if not objects and fast:
        array = _fast_array(instances, infos[names[0]].dtype)
        if array is not None:
            return {names[0]: array}
    builders: dict[str, _Stack] = {}
    for index, element in enumerate(instances):
        if objects:
            _add_object_instance(builders, index, element, infos)
            continue
        if _is_element_object(element):
            raise invalid(f"Expecting value/list but got object at item {index} of input list")
        try:
            _add_instance_item(builders, names[0], element, infos)
        except ServingError as exc:
            raise invalid(
                f"Failed to process element: {index} of 'instances' list. Error: {_status_string(exc)}"
            ) from exc
    return {name: stack.array(len(instances)) for name, stack in builders.items()}


def _add_object_instance(
    builders: dict[str, _Stack], index: int, element: Any, infos: Mapping[str, meta_graph_pb2.TensorInfo]
) -> None:
    """One instance given as an object of named inputs: each is added, then the names must be the inputs'."""
    if not _is_element_object(element):
        raise invalid(f"Expecting object but got list at item {index} of input list")
    for key, value in element.items():
        try:
            _add_instance_item(builders, key, value, infos)
        except ServingError as exc:
            raise invalid(
                f"Failed to process element: {index} key: {key} of 'instances' list. Error: {_status_string(exc)}"
            ) from exc
    if sorted(element) != sorted(infos):
        raise invalid(
            f"Failed to process element: {index} of 'instances' list. JSON object: {debug_string(element)} "
            f"keys must be equal to: {','.join(sorted(infos))}"
        )


def _from_inputs(value: Any, infos: Mapping[str, meta_graph_pb2.TensorInfo], fast: bool) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_base64_object(value):
        if len(infos) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        name = next(iter(infos))
        return {name: _tensor(value, infos[name].dtype, fast)}
    arrays = {}
    for name in sorted(infos):
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _tensor(value[name], infos[name].dtype, fast)
    return arrays


class _Stack:
    """One input's instances: each must have the shape and size of the first (AddInstanceItem)."""

    def __init__(self, shape: tuple[int, ...], size: int) -> None:
        self.shape = shape
        self.size = size
        self.items: list[np.ndarray] = []

    def array(self, count: int) -> np.ndarray:
        return np.stack(self.items).reshape((count, *self.shape))


def _add_instance_item(
    builders: dict[str, _Stack], name: str, value: Any, infos: Mapping[str, meta_graph_pb2.TensorInfo]
) -> None:
    if name not in infos:
        raise invalid(f"JSON object: does not have named input: {name}")
    item = _walk(value, infos[name].dtype)
    stack = builders.get(name)
    if stack is None:
        stack = builders[name] = _Stack(item.shape, item.size)
    elif stack.size != item.size:
        raise invalid(f"Expecting tensor size: {stack.size} but got: {item.size}")
    elif stack.shape != item.shape:
        raise invalid(f"Expecting shape {_shape_string(stack.shape)} but got: {_shape_string(item.shape)}")
    stack.items.append(item)


def _tensor(value: Any, dtype: int, fast: bool) -> np.ndarray:
    if fast:
        array = _fast_array(value, dtype)
        if array is not None:
            return array
    return _walk(value, dtype)


def _fast_array(value: Any, dtype: int) -> np.ndarray | None:
    """NumPy's conversion, when the JSON is a rectangular array of numbers TF Serving would accept as they are."""
    if dtype not in _NUMPY or dtype == types_pb2.DT_BOOL:
        return None
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):  # ragged lists, or integers beyond 64 bits
        return None
    if array.shape != _dense_shape(value):
        return None
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if array.dtype.kind not in "if" or array.dtype == np.uint64:
            return None
        return array.astype(_NUMPY[dtype])
    if array.dtype.kind != "i" or array.size == 0:
        return None
    low, high = _RANGES[dtype]
    if array.min() < low or array.max() > high:
        return None
    # int8, int16 and uint8 take any int32 and keep its low bits, as TensorFlow's conversion from int_val does.
    return array.astype(_NUMPY[dtype])


def _dense_shape(value: Any) -> tuple[int, ...]:
    """GetDenseTensorShape: the sizes of the first element at each level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _walk(value: Any, dtype: int) -> np.ndarray:
    """FillTensorProto: checks every value against the shape and dtype; raises TF Serving's error for the first
    that does not fit."""
    shape = _dense_shape(value)
    values: list[Any] = []
    _fill(value, 0, shape, dtype, values)
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    if dtype not in _NUMPY:  # only an empty list gets here: _value refuses every value of such a dtype
        return np.zeros(shape, dtype=tf.dtypes.as_dtype(dtype).as_numpy_dtype)
    if dtype in _INT32:
        return np.array(values, dtype=np.int64).astype(_NUMPY[dtype]).reshape(shape)
    return np.array(values, dtype=_NUMPY[dtype]).reshape(shape)


def _fill(value: Any, level: int, shape: tuple[int, ...], dtype: int, values: list[Any]) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype != types_pb2.DT_STRING:
                raise _type_error(value, dtype)
            values.append(_decode_base64(value))
        else:
            values.append(_value(value, dtype))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for element in value:
        _fill(element, level + 1, shape, dtype, values)


def _value(value: Any, dtype: int) -> Any:
    """AddValueToTensor: one JSON scalar as the dtype's value, if its JSON type is the one the dtype takes."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if not (is_int or isinstance(value, float)):
            raise _type_error(value, dtype)
        return value
    if dtype in _RANGES:
        low, high = _RANGES[dtype]
        if not is_int or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode()
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_name(dtype)}",
    )


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid(
        f"JSON Value: {debug_string(value)} Type: {_json_type(value)} is not of expected type: {dtype_name(dtype)}"
    )


def _is_base64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(BASE64_KEY), str)


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_base64_object(value)


def _decode_base64(value: dict[str, Any]) -> bytes:
    if not _is_base64_object(value):
        raise invalid(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    text = value[BASE64_KEY]
    try:
        # absl::Base64Unescape takes the standard alphabet, with or without the trailing '='.
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid("Unable to base64 decode") from exc


def _status_string(error: ServingError) -> str:
    """absl::Status::ToString of an error, as TF Serving nests one message in another."""
    return f"{error.code.name}: {error.message}"


def _shape_string(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"


# ---------------------------------------------------------------------------------------------------------------
# The response


def predict_json(outputs: Mapping[str, np.ndarray], row_format: bool) -> str:
    """MakeJsonFromTensors: {"predictions": ...} or {"outputs": ...}, laid out as TF Serving's PrettyWriter does."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if row_format:
        return _row_format(outputs, names)
    if len(names) == 1:
        body = _multi_line(_tokens(names[0], outputs[names[0]]), 1)
    else:
        members = [f"\n{INDENT * 2}{_key(name)}: {_multi_line(_tokens(name, outputs[name]), 2)}" for name in names]
        body = "{" + ",".join(members) + f"\n{INDENT}}}"
    return f'{{\n{INDENT}"outputs": {body}\n}}'


def _row_format(outputs: Mapping[str, np.ndarray], names: list[str]) -> str:
    batch = -1
    for name in names:
        shape = outputs[name].shape
        if not shape:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and shape[0] != batch:
            raise invalid(f"Tensor name: {name} has inconsistent batch size: {shape[0]} expecting: {batch}")
        batch = shape[0]
    tokens = {name: _tokens(name, outputs[name]) for name in names}
    if len(names) == 1:
        # Every item is written in the single-line array format, so the items follow one another on one line.
        items = ", ".join(_single_line(item) for item in tokens[names[0]])
        return f'{{\n{INDENT}"predictions": {_closed(items)}\n}}'
    objects = []
    for item in range(batch):
        members = ",".join(f"\n{INDENT * 3}{_key(name)}: {_single_line(tokens[name][item])}" for name in names)
        objects.append(f"\n{INDENT * 2}{{{members}\n{INDENT * 2}}}")
    return f'{{\n{INDENT}"predictions": {_closed(",".join(objects))}\n}}'


def _closed(items: str) -> str:
    """The outer array of the row format, closed on a line of its own unless it is empty."""
    return f"[{items}\n{INDENT}]" if items else "[]"


def _tokens(name: str, array: np.ndarray) -> np.ndarray:
    """Every value of an output as its JSON text, in an array of the output's shape."""
    dtype = tf_dtype(array)
    flat = array.ravel()
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        texts = _decimals(flat, np.float32 if dtype == types_pb2.DT_FLOAT else np.float64)
    elif dtype in _INT32 or dtype in (types_pb2.DT_INT64, types_pb2.DT_UINT32, types_pb2.DT_UINT64):
        texts = flat.astype(str).tolist()
    elif dtype == types_pb2.DT_BOOL:
        texts = ["true" if v else "false" for v in flat.tolist()]
    elif dtype == types_pb2.DT_STRING:
        if name.endswith(BYTES_SUFFIX):
            texts = [f'{{"{BASE64_KEY}": "{base64.b64encode(_bytes(v)).decode()}"}}' for v in flat.tolist()]
        else:
            texts = [json.dumps(_bytes(v).decode("utf-8", "replace"), ensure_ascii=False) for v in flat.tolist()]
    else:
        raise invalid(f"Failed to write JSON value for tensor type: {dtype_name(dtype)}")
    tokens = np.empty(len(texts), dtype=object)
    tokens[:] = texts
    return tokens.reshape(array.shape)


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _decimals(values: np.ndarray, kind: type[np.floating]) -> list[str]:
    """WriteDecimal: printf's %g (six digits) when it reads back as the same value, else all the digits the type
    needs; '.0' added to whole numbers; NaN, Infinity and -Infinity as rapidjson writes them."""
    digits = 9 if kind is np.float32 else 17  # std::numeric_limits<T>::max_digits10
    texts = [f"{v:g}" for v in values.tolist()]
    finite = np.isfinite(values)
    with np.errstate(over="ignore"):
        exact = np.array(texts, dtype=kind) == values
    for i in np.flatnonzero(finite & ~exact):
        texts[i] = f"{values[i]:.{digits}g}"
    for i, text in enumerate(texts):
        if not finite[i]:
            texts[i] = "NaN" if math.isnan(values[i]) else ("-Infinity" if values[i] < 0 else "Infinity")
        elif "." not in text and "e" not in text:
            texts[i] = text + ".0"
    return texts


def _single_line(tokens: Any) -> str:
    if not isinstance(tokens, np.ndarray):
        return str(tokens)
    if tokens.ndim == 0:
        return str(tokens[()])
    if tokens.ndim == 1:
        return "[" + ", ".join(tokens.tolist()) + "]"
    return "[" + ", ".join(_single_line(sub) for sub in tokens) + "]"


def _multi_line(tokens: np.ndarray, level: int) -> str:
    """rapidjson's default format: every array element on its own line, indented by its depth."""
    if tokens.ndim == 0:
        return str(tokens[()])
    if tokens.shape[0] == 0:
        return "[]"
    inner = "\n" + INDENT * (level + 1)
    elements = tokens.tolist() if tokens.ndim == 1 else [_multi_line(sub, level + 1) for sub in tokens]
    return "[" + inner + ("," + inner).join(elements) + "\n" + INDENT * level + "]"


# ---------------------------------------------------------------------------------------------------------------
# Values in messages


def _json_type(value: Any) -> str:
    """JsonTypeString."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def debug_string(value: Any) -> str:
    """JsonValueToDebugString: rapidjson's PrettyWriter with single-line arrays, cut once 256 bytes are written
    (the writer refuses any further token then, so the text may end mid-structure)."""
    out: list[str] = []
    size = 0
    for piece in _pretty(value, 0, ""):
        if size >= MAX_DEBUG_BYTES:
            break
        out.append(piece)
        size += len(piece.encode())
    return "".join(out)


def _pretty(value: Any, level: int, prefix: str) -> Iterator[str]:
    """The writer's calls for one value, each with what rapidjson writes before it (`prefix` for the first)."""
    if isinstance(value, dict):
        yield prefix + "{"
        for index, (key, member) in enumerate(value.items()):
            separator = "\n" if index == 0 else ",\n"
            yield f"{separator}{INDENT * (level + 1)}{json.dumps(key, ensure_ascii=False)}"
            yield from _pretty(member, level + 1, ": ")
        yield f"\n{INDENT * level}}}" if value else "}"
    elif isinstance(value, list):
        yield prefix + "["
        for index, element in enumerate(value):
            yield from _pretty(element, level + 1, ", " if index else "")
        yield "]"
    else:
        yield prefix + _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


# Python's json messages -> rapidjson's (GetParseError_En), for the errors both parsers detect.
_PARSE_ERRORS = [
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid control character", "Invalid encoding in string."),
]
_OPENERS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _rapidjson_message(error: json.JSONDecodeError, text: str) -> str:
    for python, rapidjson in _PARSE_ERRORS:
        if error.msg.startswith(python):
            return rapidjson
    if error.msg.startswith("Expecting ',' delimiter"):
        # Python says the same inside objects and arrays; rapidjson names the bracket it expected.
        stack = []
        for match in _OPENERS.finditer(text, 0, error.pos):
            token = match.group()
            if token in "[{":
                stack.append(token)
            elif token in "]}" and stack:
                stack.pop()
        if stack and stack[-1] == "{":
            return "Missing a comma or '}' after an object member."
        return "Missing a comma or ']' after an array element."
    return "Invalid value."
