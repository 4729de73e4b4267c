"""Profiles: what a model takes and returns, and how exactly the gateway reproduces the model's own answer.

A profile says which signature and tensors to call, the input tensor's type, scaling and size, what the model
answers (class ids or scores, and optionally the scores behind its class ids), and the options that trade the
answer's agreement with the model's own output for speed (`decode`, `input_dtype`, `upscale`;
docs/performance.md, "Agreement"). A model names a built-in profile or one its config file declares.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from service.settings import at_most, finite, nonempty, positive, setting


class InputDtype(enum.StrEnum):
    UINT8 = "uint8"  # rounded: the model sees other pixels than it would make itself from the photo
    FLOAT32 = "float32"


class ResizePolicy(enum.StrEnum):
    # Longest side scaled to `longest_side`, aspect ratio kept, never upscaled (DeepLab model-zoo graphs).
    LONGEST_SIDE = "longest_side"
    # Exactly width x height, aspect ratio not kept (models with a fixed input shape, e.g. TFLite).
    FIXED = "fixed"


class OutputKind(enum.StrEnum):
    CLASS_IDS = "class_ids"  # [1, h, w] integer class ids
    SCORES = "scores"  # [1, h, w, C] float scores; the gateway takes the argmax


class Decode(enum.StrEnum):
    # Every pixel, as the model's authors decode the photo before giving it to the model.
    FULL = "full"
    # JPEG at 1/2, 1/4 or 1/8 scale inside the decoder where that still leaves about the model's input size:
    # faster, but the model sees other pixels.
    REDUCED = "reduced"


class Upscale(enum.StrEnum):
    # Pixels at the original size decided from the model's scores, as the model decides them
    # (docs/performance.md, "Agreement"); class ids enlarged where the model gave no scores.
    SCORES = "scores"
    # Class ids enlarged by nearest neighbour: no scores needed, different from the model at class boundaries.
    NEAREST = "nearest"


# A model input side: far above any segmentation model's, far below what would exhaust memory per call.
pixels = at_most(8192, " pixels")


@dataclass(frozen=True)
class Profile:
    """What a model takes and returns: its input tensor's type, scaling and size, and its output's kind."""

    input_dtype: InputDtype = setting(
        InputDtype.UINT8, "the input tensor's type: uint8 (RGB as it is) or float32 (scaled as below)"
    )
    input_offset: float = setting(
        0.0, "float32 only: the tensor is (pixel - input_offset) / input_scale; 127.5 and 127.5 give [-1, 1]", finite
    )
    input_scale: float = setting(1.0, "float32 only: see input_offset", positive)
    resize: ResizePolicy = setting(
        ResizePolicy.LONGEST_SIDE,
        "longest_side (aspect ratio kept, never upscaled) or fixed (exactly width x height, aspect ratio not kept)",
    )
    longest_side: int = setting(
        513,
        "longest side of the model input in pixels, for resize = longest_side (aspect ratio kept; smaller images "
        "go as they are)",
        pixels,
        flag="input-size",
    )
    width: int = setting(0, "the input's width, for resize = fixed", pixels, shown="none")
    height: int = setting(0, "the input's height, for resize = fixed", pixels, shown="none")
    output: OutputKind = setting(
        OutputKind.CLASS_IDS, "class_ids ([1,h,w] integers) or scores ([1,h,w,C] floats, the gateway takes the argmax)"
    )
    decode: Decode = setting(Decode.FULL, "full, or reduced: a JPEG decoded at 1/2-1/8 scale (faster, other pixels)")
    upscale: Upscale = setting(
        Upscale.SCORES,
        "scores: pixels at the original size decided from the model's scores; nearest: class ids enlarged",
    )
    # The signature and tensor aliases to call; a model's own settings win.
    signature: str = setting("serving_default", "the signature to call", nonempty)
    input_key: str = setting("ImageTensor", "the input tensor's alias", nonempty)
    output_key: str = setting("SemanticPredictions", "the class ids' (or scores') alias", nonempty)
    # An output with the class scores behind class ids (CLASS_IDS only): [1, h, w, C] at the mask's size, or on a
    # coarser grid that the model enlarges to the mask's size with aligned corners (DeepLab's logits).
    scores_key: str = setting("", "the alias of the scores behind the class ids; empty: none", nonempty, shown="none")
    # Not a key: the built-in `auto` profile, these settings until the servable's signatures are read
    # (service/profile_detection.py), then the profile they call for.
    detect: bool = field(default=False, repr=False)

    @property
    def largest_side(self) -> int:
        """The longest side, in pixels, of any tensor sent to the model."""
        return self.longest_side if self.resize == ResizePolicy.LONGEST_SIDE else max(self.width, self.height)

    @property
    def gives_scores(self) -> bool:
        """Whether the model's answer holds the scores that decide pixels at the original size."""
        return self.output == OutputKind.SCORES or bool(self.scores_key)

    @property
    def approximations(self) -> tuple[str, ...]:
        """Why answers at the photo's size may differ from the model's own on the whole photo, one reason a
        setting; none: they are the model's own (docs/performance.md, "Agreement")."""
        if self.detect:
            return (
                "the profile is not known yet: it is read from the servable's signatures once its backend serves it",
            )
        reasons = []
        if self.decode == Decode.REDUCED:
            reasons.append("a JPEG is decoded at reduced scale (decode = reduced)")
        if self.input_dtype == InputDtype.UINT8:
            reasons.append(
                "the model gets the photo resized and rounded to uint8 by the gateway (input_dtype = uint8), not "
                "resized by its own graph"
            )
        if not self.gives_scores or self.upscale == Upscale.NEAREST:
            reasons.append(
                "pixels at the photo's size are the model's class ids enlarged by nearest neighbour, not decided from "
                "its scores (no scores_key, or upscale = nearest)"
            )
        return tuple(reasons)


# DeepLab model-zoo graphs: uint8 RGB of any size (513 on the longest side), int64 class ids out.
DEEPLAB_ZOO = Profile()
# The servable `make export` writes from a DeepLab graph that works at 257 x 257 inside (the shared MobileNetV2
# graph): its serving_scores signature takes the image as float32, exactly at that size, as the graph's own resize
# makes it, and returns the class ids with the scores behind them, so every pixel at the original size is decided
# as the graph decides it.
DEEPLAB_257 = Profile(
    input_dtype=InputDtype.FLOAT32,
    resize=ResizePolicy.FIXED,
    width=257,
    height=257,
    signature="serving_scores",
    input_key="image",
    scores_key="scores",
)
# The default: deeplab-zoo's settings until the servable's signatures are read, then deeplab-257's where the
# servable offers the exporter's serving_scores (exact answers), else deeplab-zoo's.
AUTO = Profile(detect=True)
BUILTIN_PROFILES = {"auto": AUTO, "deeplab-zoo": DEEPLAB_ZOO, "deeplab-257": DEEPLAB_257}
