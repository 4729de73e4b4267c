"""Whether a model's tensors, as its backend describes them, are the ones its profile sends and reads."""

from __future__ import annotations

from service.backends import NO_SIGNATURE, ModelTensors, TensorInfo
from service.config import ModelConfig
from service.profiles import InputDtype, OutputKind, ResizePolicy

ANY = -1  # in a backend's shape: a size that varies; in the gateway's: sent at sizes that vary, or read at any size
CLASS_ID_DATATYPES = ("INT64", "INT32", "UINT8")


def _fits(declared: tuple[int, ...] | None, wanted: tuple[int, ...], role: str) -> bool:
    """Whether the tensors the gateway sends (`wanted`, for an input) fit a declared shape, or whether a declared
    output has a shape the gateway reads (any size where `wanted` says ANY). A shape of any rank fits."""
    if declared is None:
        return True
    if len(declared) != len(wanted):
        return False
    if role == "input":
        return all(have in (ANY, want) for have, want in zip(declared, wanted, strict=True))
    return all(want in (ANY, have) for have, want in zip(declared, wanted, strict=True))


def _spelled(datatypes: tuple[str, ...], shape: tuple[int, ...] | None) -> str:
    sizes = "of any rank" if shape is None else f"[{', '.join('any' if size == ANY else str(size) for size in shape)}]"
    return f"{' or '.join(datatypes)} {sizes}"


def _problem(role: str, tensor: TensorInfo, datatypes: tuple[str, ...], shape: tuple[int, ...]) -> str | None:
    if tensor.datatype in datatypes and _fits(tensor.shape, shape, role):
        return None
    served, needed = _spelled((tensor.datatype,), tensor.shape), _spelled(datatypes, shape)
    return f"{role} {tensor.name!r} is {served}; the gateway needs {needed}"


def mismatch(model: ModelConfig, signatures: dict[str, ModelTensors]) -> str | None:
    """One line naming the first difference between what `model` sends and reads and what the backend serves
    (`signatures`, as Backend.signatures describes them); None when they agree."""
    profile, interface = model.profile, model.interface
    at = f"model {model.name!r} ({model.name_at_backend!r} at backend {model.backend!r})"
    tensors = signatures.get(NO_SIGNATURE) or signatures.get(interface.signature)
    if tensors is None:
        others = ", ".join(repr(name) for name in sorted(signatures)) or "none"
        return (
            f"{at}: has no signature {interface.signature!r} (its signatures: {others}); set the model's signature "
            "or use another profile"
        )
    if profile.resize == ResizePolicy.FIXED:
        height, width = profile.height, profile.width
    else:
        height = width = ANY
    input_datatype = "FP32" if profile.input_dtype == InputDtype.FLOAT32 else "UINT8"
    if profile.output == OutputKind.SCORES:
        output_wanted: tuple[tuple[str, ...], tuple[int, ...]] = (("FP32",), (ANY, ANY, ANY, ANY))
    else:
        output_wanted = (CLASS_ID_DATATYPES, (ANY, ANY, ANY))
    wanted = {
        ("input", interface.input_key): ((input_datatype,), (1, height, width, 3), "input_key"),
        ("output", interface.output_key): (*output_wanted, "output_key"),
    }
    if interface.scores_key:
        wanted[("output", interface.scores_key)] = (("FP32",), (ANY, ANY, ANY, ANY), "scores_key")
    served = {("input", t.name): t for t in tensors.inputs} | {("output", t.name): t for t in tensors.outputs}
    for (role, name), (datatypes, shape, key) in wanted.items():
        tensor = served.get((role, name))
        if tensor is None:
            others = ", ".join(repr(n) for r, n in served if r == role) or "none"
            return f"{at}: has no {role} {name!r} (its {role}s: {others}); set the model's {key} or use another profile"
        problem = _problem(role, tensor, datatypes, shape)
        if problem:
            return f"{at}: {problem}"
    return None
