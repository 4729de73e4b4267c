"""TF Serving's REST API: a request's method, path and body to the JSON answer, or to TF Serving's error.

Mirrors tensorflow_serving/model_servers/http_rest_api_handler.cc and http_rest_api_util.cc (tensorflow/serving
9d981c5c):
- Paths (http_rest_api_util.cc:31-34, RE2::FullMatch, case-insensitive): POST
  /v1/models/NAME[/versions/N|/labels/L]:(classify|regress|predict); GET /v1/models[/NAME][/versions/N|/labels/L]
  [/metadata]. The model name and label are percent-decoded (DecodeArg, :69-88); a version that is not an int64 is
  "Failed to convert version: ... to numeric." with an empty body, as ProcessRequest returns ParseModelInfo's
  errors before writing any JSON (http_rest_api_handler.cc:80-82). Anything else under /v1/ is
  "Malformed request: METHOD PATH"; the method name after ':' must be lower case (:85-96).
- GET status (:180-202): GetModelStatus as JSON with protobuf's field names (model_version_status, error_code,
  error_message), int64 as strings, enums by name, default values printed (http_rest_api_util.cc:133-145). A label
  in the path is ignored there, as GetModelStatusImpl ignores it.
- GET metadata (:204-226, http_rest_api_util.cc:147-201): {"model_spec": ..., "metadata": {"signature_def": ...}}
  with proto field names.
- POST predict (:152-178): the signature's inputs are found first (GetInfoMap, :228-242: an unknown signature is
  INVALID_ARGUMENT here, where gRPC says FAILED_PRECONDITION), then the JSON is read (json_tensor.py), then the
  same Predict as gRPC's runs.
- Errors (json_tensor.cc:1129-1139, MakeJsonFromStatus): {"error": "<message>"}, pretty-printed by rapidjson.

Differences: :classify and :regress are UNIMPLEMENTED (501), as their gRPC methods are here. The JSON of a
prediction is made from the output arrays, so it is the same with --enable_serialization_as_tensor_content; TF
Serving's MakeJsonFromTensors reads only the typed fields (json_tensor.cc:888-950), which that flag leaves empty,
so its REST predictions are not usable with the flag on.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from modelserver import json_tensor
from modelserver.errors import ServingError, invalid
from modelserver.predict import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD, get_model_metadata, predict_arrays
from modelserver.registry import ModelRegistry

API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)  # kHTTPRestApiHandlerPathRegex: what the REST handler takes
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
_INT64_MAX = 2**63 - 1


class Kind(enum.Enum):
    STATUS = "status"
    METADATA = "metadata"
    PREDICT = "predict"
    CLASSIFY = "classify"
    REGRESS = "regress"


class PathError(ServingError):
    """An error found while reading the path, answered with no body at all (TF Serving writes none for them)."""


@dataclass(frozen=True)
class Call:
    """What a request asks for: one kind of call on a model, maybe at a version or a label."""

    kind: Kind
    model: str
    version: int | None = None
    label: str | None = None

    @property
    def blocking(self) -> bool:
        """Whether it runs TensorFlow (and so belongs on the inference pool) rather than reading states."""
        return self.kind is not Kind.STATUS

    def spec(self) -> model_pb2.ModelSpec:
        """FillModelSpecWithNameVersionAndLabel."""
        spec = model_pb2.ModelSpec(name=self.model)
        if self.version is not None:
            spec.version.value = self.version
        if self.label is not None:
            spec.version_label = self.label
        return spec


def parse(method: str, path: str) -> Call:
    """ParseModelInfo and ProcessRequest's dispatch. Raises ServingError (PathError: no body) when it cannot."""
    malformed = invalid(f"Malformed request: {method} {path}")
    if method == "POST":
        match = _PREDICTION_PATH.fullmatch(path)
    elif method == "GET":
        match = _STATUS_PATH.fullmatch(path)
    else:
        raise malformed
    if match is None:
        raise malformed
    name, version, label, last = match.groups()
    model = _decode(name or "")
    number = None
    if version:
        number = int(version)
        if number > _INT64_MAX:
            raise PathError(grpc.StatusCode.INVALID_ARGUMENT, f"Failed to convert version: {version} to numeric.")
    label = _decode(label) if label else None
    if method == "POST":
        if last not in ("predict", "classify", "regress"):  # the regex is case-insensitive, the dispatch is not
            raise malformed
        return Call(Kind(last), model, number, label)
    kind = Kind.METADATA if last == "metadata" else Kind.STATUS
    if not model:
        raise invalid("Missing model name in request.")
    return Call(kind, model, number, label)


def metric_labels(method: str, path: str) -> tuple[str, str]:
    """The model name and method TF Serving's REST metrics label a call with (http_server.cc:152-203): what
    ParseModelInfo captured, the name decoded, the method as the path spells it after ':' (POST only); "" for what
    its pattern did not match."""
    if method == "POST" and (match := _PREDICTION_PATH.fullmatch(path)):
        return _decode(match[1]), match[4]
    if method == "GET" and (match := _STATUS_PATH.fullmatch(path)):
        return _decode(match[1] or ""), ""
    return "", ""


def _decode(text: str) -> str:
    """curl_easy_unescape: %XX escapes only ('+' stays '+')."""
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def answer(registry: ModelRegistry, call: Call, body: bytes) -> str:
    """The JSON for a successful call; raises ServingError otherwise. Blocking for all but Kind.STATUS."""
    if call.kind is Kind.STATUS:
        return _status(registry, call)
    if call.kind is Kind.METADATA:
        return _metadata(registry, call)
    if call.kind is Kind.PREDICT:
        return _predict(registry, call, body)
    raise ServingError(
        grpc.StatusCode.UNIMPLEMENTED, f"{call.kind.value.capitalize()} is not supported by this model server"
    )


def error_json(error: ServingError) -> str:
    """MakeJsonFromStatus."""
    return '{\n    "error": ' + json.dumps(error.message, ensure_ascii=False) + "\n}"


def _status(registry: ModelRegistry, call: Call) -> str:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=call.spec())
    response = registry.status(request.model_spec)
    return _json(response, proto_names=False) + "\n"


def _metadata(registry: ModelRegistry, call: Call) -> str:
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=call.spec(), metadata_field=[SIGNATURE_DEF_FIELD]
    )
    response = get_model_metadata(registry, request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
    # Concatenated as TF Serving concatenates them (http_rest_api_util.cc:193-198).
    return (
        "{\n"
        f'"model_spec":{_json(response.model_spec, proto_names=True)},\n'
        f'"metadata": {{"signature_def": {_json(signatures, proto_names=True)}}}\n'
        "}\n"
    )


def _json(message: object, proto_names: bool) -> str:
    """protobuf's JSON as TF Serving prints it: one space of indent, default values printed."""
    return json_format.MessageToJson(
        message,  # type: ignore[arg-type]
        preserving_proto_field_name=proto_names,
        indent=1,
        always_print_fields_with_no_presence=True,
    )


def _predict(registry: ModelRegistry, call: Call, body: bytes) -> str:
    document = json_tensor.parse_document(body)
    signature = json_tensor.signature_name(document)
    with registry.acquire(call.spec()) as (model, loaded):
        name = signature or DEFAULT_SIGNATURE
        signature_def = loaded.signature_defs.get(name)
        if signature_def is None:
            raise invalid(f'Serving signature name: "{name}" not found in signature def')
        inputs = json_tensor.predict_inputs(document, signature_def.inputs, signature, body)
        outputs = predict_arrays(model.name, loaded, name, inputs.arrays)
    return json_tensor.predict_json(outputs, inputs.row_format)
