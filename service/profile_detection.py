"""The profile of a model whose configuration leaves it to the gateway (the built-in `auto`, the default), read from
what its backend says of the servable.

Where the servable offers the exporter's scores signature (exporter/savedmodel.py's `serving_scores`: the image as
float32 in; the class ids, the scores behind them and the network's own size out; over the Open Inference Protocol,
a model with those tensors), the model gets the exact path that signature allows: deeplab-257's settings at the
network's size, which the signature's image declares or its `network_size` output says (one Predict of that output
alone, which runs none of the network). Otherwise it gets deeplab-zoo's, whose answers at the photo's size are
approximate; the log and ListModels say why (Profile.approximations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from service.backends import NO_SIGNATURE, Backend, ModelSpec, ModelTensors, TensorInfo
from service.model_check import CLASS_ID_DATATYPES
from service.profiles import DEEPLAB_257, DEEPLAB_ZOO, Profile, pixels

SCORES_SIGNATURE = DEEPLAB_257.signature
NETWORK_SIZE = "network_size"
# What is fed to read the network's size: it is a constant of the graph, so any image will do.
_ANY_IMAGE = np.zeros((1, 1, 1, 3), dtype=np.float32)


@dataclass(frozen=True)
class Detected:
    profile: Profile
    why: str  # for the log


@dataclass(frozen=True)
class ScoresSignature:
    """A signature of the exporter's scores kind: its name ("" where the protocol has none), the image size it
    declares ((width, height); None: any), and whether it says the network's size."""

    name: str
    size: tuple[int, int] | None
    says_size: bool


def _tensor(tensors: tuple[TensorInfo, ...], name: str) -> TensorInfo | None:
    return next((t for t in tensors if t.name == name), None)


def scores_signature(name: str, tensors: ModelTensors) -> ScoresSignature | None:
    """`tensors` as a scores signature, if they are one: a float32 [1, h, w, 3] image in, integer [1, h, w] class
    ids and float32 [1, h', w', classes] scores out."""
    image = _tensor(tensors.inputs, DEEPLAB_257.input_key)
    ids = _tensor(tensors.outputs, DEEPLAB_257.output_key)
    scores = _tensor(tensors.outputs, DEEPLAB_257.scores_key)
    if image is None or ids is None or scores is None or len(tensors.inputs) != 1:
        return None
    if image.datatype != "FP32" or image.shape is None or len(image.shape) != 4:
        return None
    if image.shape[0] not in (1, -1) or image.shape[3] != 3:
        return None
    if ids.datatype not in CLASS_ID_DATATYPES or scores.datatype != "FP32":
        return None
    height, width = image.shape[1:3]
    size = (width, height) if height > 0 and width > 0 else None
    network_size = _tensor(tensors.outputs, NETWORK_SIZE)
    says_size = network_size is not None and network_size.datatype in ("INT32", "INT64")
    return ScoresSignature(name, size, says_size)


def _found(signatures: dict[str, ModelTensors]) -> ScoresSignature | None:
    for name in (SCORES_SIGNATURE, NO_SIGNATURE):
        found = scores_signature(name, signatures[name]) if name in signatures else None
        if found is not None:
            return found
    return None


async def _network_size(backend: Backend, served: str, found: ScoresSignature, timeout: float) -> tuple[int, int]:
    """(width, height) as the signature's network_size output says it; ValueError for a size no model has."""
    spec = ModelSpec(served, found.name or SCORES_SIGNATURE)
    prediction = await backend.predict(spec, DEEPLAB_257.input_key, _ANY_IMAGE, (NETWORK_SIZE,), timeout)
    said = prediction.output(NETWORK_SIZE).ravel().tolist()
    if len(said) != 2:
        raise ValueError(f"{NETWORK_SIZE} is {said}, not (height, width)")
    height, width = (pixels(int(side)) for side in said)
    return width, height


async def read_profile(backend: Backend, served: str, timeout: float) -> Detected:
    """The profile for the model `served` at `backend`, and why; a GatewayError where the backend fails to say."""
    signatures = await backend.signatures(served, timeout)
    if signatures is None:
        return Detected(DEEPLAB_ZOO, "its backend does not describe the model's signatures")
    found = _found(signatures)
    if found is None:
        if NO_SIGNATURE in signatures:
            why = "its tensors are not a scores signature's ('image', 'SemanticPredictions', 'scores')"
        else:
            names = ", ".join(repr(name) for name in sorted(signatures)) or "none"
            why = f"no signature {SCORES_SIGNATURE!r} of the exporter's kind (its signatures: {names})"
        return Detected(DEEPLAB_ZOO, why)
    offered = f"signature {found.name!r}" if found.name else "its tensors"
    size = found.size
    if size is None and found.says_size:
        try:
            size = await _network_size(backend, served, found, timeout)
        except ValueError as exc:
            return Detected(DEEPLAB_ZOO, f"{offered} says an unusable network size: {exc}")
    if size is None:
        return Detected(DEEPLAB_ZOO, f"{offered} takes an image of any size and says no {NETWORK_SIZE}")
    width, height = size
    profile = replace(DEEPLAB_257, width=width, height=height)
    return Detected(profile, f"{offered}: a float32 image at {width}x{height}, class ids and their scores")
