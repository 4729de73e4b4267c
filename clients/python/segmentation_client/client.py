"""SegmentationClient: the deeplab-gateway API over one gRPC channel, with numpy masks and typed errors."""

from __future__ import annotations

import io
import math
import numbers
import os
import pathlib
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from segmentation_client.errors import (
    InvalidImageError,
    SegmentationError,
    code_from_number,
    error_for,
    from_rpc_error,
)
from segmentation_client.masks import decode_mask, decode_probability

ImageInput = bytes | str | os.PathLike[str]
MaskFormat = Literal["png", "raw", "rle", "none"]
MaskSize = Literal["original", "model"]

_FORMATS = {
    "png": pb.MASK_FORMAT_PNG,
    "raw": pb.MASK_FORMAT_RAW,
    "rle": pb.MASK_FORMAT_RLE,
    "none": pb.MASK_FORMAT_NONE,
}
_SIZES = {"original": pb.MASK_SIZE_ORIGINAL, "model": pb.MASK_SIZE_MODEL}
DEFAULT_PORT = 50051  # the service's own, when a target names only a host
# Room for a 20 MiB image and for full-size RAW masks of large photos.
_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Model:
    """Which model to ask for; every field optional (the service's default model, latest version)."""

    name: str = ""
    version: int | None = None
    version_label: str = ""
    signature: str = ""

    def to_proto(self) -> pb.ModelSelector:
        selector = pb.ModelSelector(name=self.name, signature_name=self.signature)
        if self.version is not None:
            selector.version = self.version
        elif self.version_label:
            selector.version_label = self.version_label
        return selector


@dataclass(frozen=True)
class ClassInfo:
    class_id: int
    label: str
    pixel_count: int
    fraction: float
    box: tuple[int, int, int, int]  # x, y, width, height in mask pixels


@dataclass(frozen=True)
class Regions:
    """What to ask of the answer's regions: each class's connected areas (the API's RegionOptions)."""

    classes: tuple[str, ...] = ()  # labels or ids; none: every class but 0 (the background)
    min_area: int = 0  # regions of fewer pixels are left out
    polygons: bool = False  # each region's outline
    tolerance: float | None = None  # pixels an outline may stray from the boundary; None: the service's (1)
    coco_rle: bool = False  # each region as COCO RLE

    def to_proto(self) -> pb.RegionOptions:
        options = pb.RegionOptions(
            classes=list(self.classes),
            min_area=self.min_area,
            include_polygons=self.polygons,
            include_coco_rle=self.coco_rle,
        )
        if self.tolerance is not None:
            options.polygon_tolerance = self.tolerance
        return options


CutoutFormat = Literal["png", "webp", "jpeg+alpha", "alpha"]
_CUTOUT_FORMATS: dict[str, int] = {
    "png": pb.CUTOUT_FORMAT_PNG,
    "webp": pb.CUTOUT_FORMAT_WEBP,
    "jpeg+alpha": pb.CUTOUT_FORMAT_JPEG_AND_ALPHA,
    "alpha": pb.CUTOUT_FORMAT_ALPHA,
}


@dataclass(frozen=True)
class Cutout:
    """What to ask of a cut-out of the photo (the API's CutoutOptions)."""

    classes: tuple[str, ...] = ()  # the subject's labels or ids; none: every class but 0 (the background)
    soft: bool = False  # the alpha from the model's probability (soft edges) rather than the mask
    crop: bool = False  # to the subject's box
    margin: int | str = 0  # around a cropped subject: pixels, or "N%" of the subject's box
    background: str = ""  # hex RGB ("#81d4fa") instead of transparency
    format: CutoutFormat = "png"
    quality: int = 0  # WebP's and JPEG's, 1 to 100; 0: the service's (90)

    def to_proto(self) -> pb.CutoutOptions:
        if self.format not in _CUTOUT_FORMATS:
            raise ValueError(f"a cut-out's format is one of {sorted(_CUTOUT_FORMATS)}, not {self.format!r}")
        options = pb.CutoutOptions(
            classes=list(self.classes),
            edge=pb.CUTOUT_EDGE_SOFT if self.soft else pb.CUTOUT_EDGE_HARD,
            crop=self.crop,
            background_color=self.background,
            format=_CUTOUT_FORMATS[self.format],  # type: ignore[arg-type]
            quality=self.quality,
        )
        if isinstance(self.margin, str) and self.margin.endswith("%"):
            options.crop_margin_percent = float(self.margin[:-1])
        elif self.margin:
            options.crop_margin_px = int(str(self.margin).removesuffix("px"))
        return options


@dataclass(frozen=True)
class CutoutImage:
    """The photo cut out along its subject, as the service encoded it."""

    box: tuple[int, int, int, int]  # x, y, width, height: where it lies in the photo
    format: CutoutFormat
    image: bytes  # PNG, WebP or JPEG; empty for "alpha"
    alpha_png: bytes  # the alpha as a grayscale PNG, for "jpeg+alpha" and "alpha"; empty otherwise
    subject_pixels: int  # 0: the photo has none of the subject's classes

    def rgba(self) -> np.ndarray:
        """(height, width, 4) uint8 RGBA (RGB over a background colour, alpha 255); for "alpha", the alpha alone
        as (height, width)."""
        from PIL import Image  # noqa: PLC0415

        if self.format == "alpha":
            return self.alpha()
        picture = Image.open(io.BytesIO(self.image))
        if self.format == "jpeg+alpha":
            picture = picture.convert("RGB")
            picture.putalpha(Image.open(io.BytesIO(self.alpha_png)).convert("L"))
        return np.asarray(picture.convert("RGBA"))

    def alpha(self) -> np.ndarray:
        """(height, width) uint8: 255 opaque."""
        return self.rgba()[:, :, 3] if self.format in ("png", "webp") else _gray(self.alpha_png)

    def files(self, name: str) -> dict[str, bytes]:
        """The files to write for it under a base `name`: the picture by its format's suffix, the alpha PNG."""
        suffix = {"png": ".png", "webp": ".webp", "jpeg+alpha": ".jpg"}
        out = {f"{name}.cutout{suffix[self.format]}": self.image} if self.image else {}
        return out | ({f"{name}.cutout-alpha.png": self.alpha_png} if self.alpha_png else {})


def _gray(png: bytes) -> np.ndarray:
    from PIL import Image  # noqa: PLC0415

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


@dataclass(frozen=True)
class RegionPolygon:
    points: np.ndarray  # (n, 2) int32 x, y along the boundary pixels' edges (COCO's coordinates), in order, closed
    hole: bool


@dataclass(frozen=True)
class RegionInfo:
    """One connected region of a class in the mask."""

    class_id: int
    label: str
    area: int  # pixels
    box: tuple[int, int, int, int]  # x, y, width, height in mask pixels
    centroid: tuple[float, float]  # x, y: the mean column and row of its pixels
    polygons: list[RegionPolygon]  # the outer boundary first, then the holes'; empty unless asked for
    coco_rle: dict[str, object] | None  # {"size": [height, width], "counts": str} as pycocotools reads it
    mean_probability: float | None = None  # of its class over its pixels; None where the model gives no scores

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "class_id": self.class_id,
            "label": self.label,
            "area": self.area,
            "box": dict(zip(("x", "y", "width", "height"), self.box, strict=True)),
            "centroid": {"x": round(self.centroid[0], 3), "y": round(self.centroid[1], 3)},
        }
        if self.polygons:
            out["polygons"] = [{"xy": p.points.ravel().tolist(), "hole": p.hole} for p in self.polygons]
        if self.coco_rle is not None:
            out["coco_rle"] = self.coco_rle
        if self.mean_probability is not None:
            out["mean_probability"] = round(self.mean_probability, 6)
        return out


@dataclass(frozen=True)
class Segmentation:
    """One segmented image."""

    mask: np.ndarray | None  # (height, width) uint8 class ids; None when asked for mask_format="none"
    classes: list[ClassInfo]  # present classes, largest first
    model_name: str
    model_version: int
    image_size: tuple[int, int]  # width, height after EXIF orientation
    timings_us: dict[str, int]
    overlay_png: bytes = b""
    mask_png: bytes = b""  # the PNG as the service sent it, when the format was PNG
    source: str = ""
    # width, height of the mask the classes were counted in (the mask's shape, where there is a mask)
    mask_size: tuple[int, int] = (0, 0)
    regions: list[RegionInfo] = field(default_factory=list)  # when asked for, by class id then area
    # (height, width) float32 in [0, 1] by class id, for the classes asked for (`probabilities=`)
    probability_maps: dict[int, np.ndarray] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)  # the labels of the maps' classes
    cutout: CutoutImage | None = None  # when asked for (`cutout=`)

    def probability(self, name: str | int) -> np.ndarray:
        """The probability map of a class asked for, by its label or id; KeyError for one not asked for."""
        for class_id, label in self.labels.items():
            if name in (label, class_id, str(class_id)):
                return self.probability_maps[class_id]
        raise KeyError(f"no probability map of {name!r}: ask for it with probabilities=({name!r},)")

    def summary(self) -> dict[str, object]:
        """A JSON-ready description without the mask pixels."""
        return {
            "source": self.source,
            "model": {"name": self.model_name, "version": self.model_version},
            "image": {"width": self.image_size[0], "height": self.image_size[1]},
            "mask": {"width": self.mask_size[0], "height": self.mask_size[1]},
            "classes": [
                {
                    "class_id": c.class_id,
                    "label": c.label,
                    "pixel_count": c.pixel_count,
                    "fraction": round(c.fraction, 6),
                    "box": dict(zip(("x", "y", "width", "height"), c.box, strict=True)),
                }
                for c in self.classes
            ],
            "timings_us": self.timings_us,
            **({"regions": [r.summary() for r in self.regions]} if self.regions else {}),
            **({"cutout": self._cutout_summary()} if self.cutout else {}),
        }

    def _cutout_summary(self) -> dict[str, object]:
        assert self.cutout is not None
        box = dict(zip(("x", "y", "width", "height"), self.cutout.box, strict=True))
        return {"box": box, "format": self.cutout.format, "subject_pixels": self.cutout.subject_pixels}


@dataclass(frozen=True)
class StreamItem:
    """One answer of segment_many: exactly one of result and error is set."""

    index: int
    source: str
    result: Segmentation | None = None
    error: SegmentationError | None = field(default=None)


@dataclass(frozen=True)
class ModelVersionInfo:
    version: int
    state: str  # "AVAILABLE", "LOADING", ...


@dataclass(frozen=True)
class ModelInfo:
    name: str
    is_default: bool
    signature: str
    labels: list[str]
    input_size: int
    versions: list[ModelVersionInfo]
    backend_error: str


def _read(image: ImageInput) -> tuple[bytes, str]:
    """The image's bytes and a name for it; InvalidImageError for an input that cannot be read (a missing file, a
    folder, neither bytes nor a path), as the service's refusal of an image that is not one."""
    if isinstance(image, bytes | bytearray):
        return bytes(image), ""
    try:
        if not isinstance(image, str | os.PathLike):
            raise TypeError(f"an image is bytes or a path, not {type(image).__name__}")
        path = pathlib.Path(image)
        return path.read_bytes(), str(path)
    except (OSError, TypeError, ValueError) as exc:  # ValueError: a path the OS cannot take ("a\0b.jpg")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise InvalidImageError(grpc.StatusCode.INVALID_ARGUMENT, f"cannot read {image}: {reason}") from exc


def _unreadable(position: int, image: object, error: SegmentationError) -> StreamItem:
    """The item of an input segment_many could not read."""
    name = "bytes" if isinstance(image, bytes | bytearray) else str(image)
    return StreamItem(position, name, error=error)


def _segmentation(response: pb.SegmentImageResponse, source: str) -> Segmentation:
    return Segmentation(
        mask=None if response.mask.format == pb.MASK_FORMAT_NONE else decode_mask(response.mask),
        classes=[
            ClassInfo(
                c.class_id,
                c.label,
                c.pixel_count,
                c.fraction,
                (c.bounding_box.x, c.bounding_box.y, c.bounding_box.width, c.bounding_box.height),
            )
            for c in response.classes
        ],
        model_name=response.model.name,
        model_version=response.model.version,
        image_size=(response.image_width, response.image_height),
        timings_us={f.name: getattr(response.timing, f.name) for f in response.timing.DESCRIPTOR.fields},
        overlay_png=response.overlay,
        mask_png=response.mask.data if response.mask.format == pb.MASK_FORMAT_PNG else b"",
        source=source,
        mask_size=(response.mask.width, response.mask.height),
        regions=[_region(r) for r in response.regions],
        probability_maps={m.class_id: decode_probability(m) for m in response.probabilities},
        labels={m.class_id: m.label for m in response.probabilities},
        cutout=_cutout(response.cutout) if response.HasField("cutout") else None,
    )


def _cutout(cutout: pb.Cutout) -> CutoutImage:
    box = cutout.box
    formats = {value: name for name, value in _CUTOUT_FORMATS.items()}
    return CutoutImage(
        box=(box.x, box.y, box.width, box.height),
        format=formats[cutout.format],  # type: ignore[arg-type]
        image=cutout.image,
        alpha_png=cutout.alpha,
        subject_pixels=cutout.subject_pixels,
    )


def _region(region: pb.Region) -> RegionInfo:
    box = region.bounding_box
    return RegionInfo(
        class_id=region.class_id,
        label=region.label,
        area=region.area,
        box=(box.x, box.y, box.width, box.height),
        centroid=(region.centroid_x, region.centroid_y),
        polygons=[RegionPolygon(np.array(p.xy, dtype=np.int32).reshape(-1, 2), p.hole) for p in region.polygons],
        coco_rle={"size": list(region.coco_rle.size), "counts": region.coco_rle.counts}
        if region.HasField("coco_rle")
        else None,
        mean_probability=region.mean_probability if region.HasField("mean_probability") else None,
    )


# gRPC's target schemes other than a plain host[:port]: their forms are their own.
_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")


def with_default_port(target: str) -> str:
    """host -> host:50051, where gRPC itself would take 443; a target with a port or a scheme is kept."""
    if target.startswith(_SCHEMES):
        return target
    if target.startswith("["):  # an IPv6 address: [::1] or [::1]:50051
        return target if "]:" in target else f"{target}:{DEFAULT_PORT}"
    return target if ":" in target else f"{target}:{DEFAULT_PORT}"  # more than one ":": a bare IPv6 address


# gRPC turns deadlines past about 9e9 s into DEADLINE_EXCEEDED at once; no call needs more than this.
MAX_TIMEOUT_S = 1e9


def checked_timeout(seconds: float) -> float:
    """`seconds` if it is a finite number above 0 and at most MAX_TIMEOUT_S; ValueError otherwise (a deadline of 0,
    a negative, nan or infinite one would fail the call at once with DEADLINE_EXCEEDED, saying nothing of why)."""
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise ValueError(f"timeout must be a number of seconds, not {seconds!r}")
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise ValueError(f"timeout must be above 0 seconds and at most {MAX_TIMEOUT_S:g}, not {seconds!r}")
    return float(seconds)


class SegmentationClient:
    """A client over one channel. Use as a context manager, or call close(). A target without a port is on the
    service's own port, 50051 (`target` says which was used)."""

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.timeout = checked_timeout(timeout)
        self.target = target = with_default_port(target)
        options = [
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = pb_grpc.SegmentationServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> SegmentationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _deadline(self, timeout: float | None, default: float | None = None) -> float:
        """A call's own timeout if given, else `default`, else the client's."""
        if timeout is not None:
            return checked_timeout(timeout)
        return self.timeout if default is None else default

    def _request(
        self,
        data: bytes,
        model: Model | str | None,
        mask_format: MaskFormat,
        mask_size: MaskSize,
        overlay: bool,
        *,
        regions: Regions | None = None,
        probabilities: tuple[str | int, ...] = (),
        cutout: Cutout | None = None,
    ) -> pb.SegmentImageRequest:
        if isinstance(model, str):
            model = Model(name=model)
        if mask_format not in _FORMATS:
            raise ValueError(f"mask_format must be one of {sorted(_FORMATS)}, got {mask_format!r}")
        if mask_size not in _SIZES:
            raise ValueError(f"mask_size must be one of {sorted(_SIZES)}, got {mask_size!r}")
        return pb.SegmentImageRequest(
            image=data,
            model=model.to_proto() if model else None,
            mask_format=_FORMATS[mask_format],
            mask_size=_SIZES[mask_size],
            include_overlay=overlay,
            regions=regions.to_proto() if regions else None,
            probability_classes=[str(name) for name in probabilities],
            cutout=cutout.to_proto() if cutout else None,
        )

    def segment(
        self,
        image: ImageInput,
        *,
        model: Model | str | None = None,
        mask_format: MaskFormat = "png",
        mask_size: MaskSize = "original",
        overlay: bool = False,
        regions: Regions | None = None,
        probabilities: tuple[str | int, ...] = (),
        cutout: Cutout | None = None,
        timeout: float | None = None,
    ) -> Segmentation:
        """Segments one image (bytes or a path); `regions` asks for each class's connected regions,
        `probabilities` for the probability maps of classes (labels or ids; `result.probability(name)`), `cutout`
        for the photo cut out along a subject (`result.cutout`)."""
        data, source = _read(image)
        request = self._request(
            data, model, mask_format, mask_size, overlay, regions=regions, probabilities=probabilities, cutout=cutout
        )
        try:
            response = self._stub.SegmentImage(request, timeout=self._deadline(timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return _segmentation(response, source)

    def segment_many(
        self,
        images: Iterable[ImageInput],
        *,
        model: Model | str | None = None,
        mask_format: MaskFormat = "png",
        mask_size: MaskSize = "original",
        overlay: bool = False,
        regions: Regions | None = None,
        probabilities: tuple[str | int, ...] = (),
        cutout: Cutout | None = None,
        timeout: float | None = None,
    ) -> Iterator[StreamItem]:
        """Segments many images over one streaming call, yielding answers in order; a bad image is an item
        with an error, not an exception. An input that cannot be read (a missing file, a folder, neither bytes
        nor a path) is not sent: its item has an InvalidImageError. `timeout` bounds the whole stream (default:
        none). An exception raised by `images` itself comes after the answers to the images before it."""
        # ValueError now, not mid-stream.
        template = self._request(
            b"", model, mask_format, mask_size, overlay, regions=regions, probabilities=probabilities, cutout=cutout
        )
        # gRPC reads `images` through requests() on a thread of its own while this generator reads the answers.
        # That thread only appends: `sent`, the positions in `images` of the requests sent (the service numbers
        # only those) and their sources; `failed`, the items of the inputs not sent, in position order, which
        # only this generator pops. Both are safe to share that way (list.append and indexing, deque.append and
        # popleft are atomic), and the answers are merged back in the order of `images`.
        sent: list[tuple[int, str]] = []
        failed: deque[StreamItem] = deque()
        broken: list[Exception] = []  # what iterating `images` raised, if it did

        def requests() -> Iterator[pb.SegmentImageStreamRequest]:
            try:
                for position, image in enumerate(images):
                    try:
                        data, source = _read(image)
                    except InvalidImageError as error:  # it fails this input alone
                        failed.append(_unreadable(position, image, error))
                        continue
                    request = pb.SegmentImageRequest()
                    request.CopyFrom(template)
                    request.image = data
                    sent.append((position, source))
                    yield pb.SegmentImageStreamRequest(request=request, id=source[-256:])
            except Exception as exc:  # raised by `images`: end the stream there, and raise it to the caller
                broken.append(exc)

        def failed_before(position: int) -> Iterator[StreamItem]:
            while failed and failed[0].index < position:
                yield failed.popleft()

        call = self._stub.SegmentImageStream(requests(), timeout=None if timeout is None else checked_timeout(timeout))
        try:
            for response in call:
                position, source = sent[response.index] if response.index < len(sent) else (-1, response.id)
                yield from failed_before(position)
                if response.WhichOneof("outcome") == "result":
                    yield StreamItem(position, source, result=_segmentation(response.result, source))
                else:
                    error = error_for(code_from_number(response.error.code), response.error.message)
                    yield StreamItem(position, source, error=error)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()  # a caller that stops early stops the reading of `images` too; no-op once it is over
        # The call ends only after requests() has: nothing is appended any more.
        yield from failed_before(sys.maxsize)  # those after the last image sent
        if broken:
            raise broken[0]

    def models(self, timeout: float | None = None) -> list[ModelInfo]:
        try:
            response = self._stub.ListModels(pb.ListModelsRequest(), timeout=self._deadline(timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return [
            ModelInfo(
                name=m.name,
                is_default=m.is_default,
                signature=m.signature_name,
                labels=list(m.labels),
                input_size=m.input_size,
                versions=[
                    ModelVersionInfo(v.version, pb.ModelVersionState.Name(v.state).removeprefix("MODEL_VERSION_STATE_"))
                    for v in m.versions
                ],
                backend_error=m.backend_error,
            )
            for m in response.models
        ]

    def health(self, service: str = "segmentation.v1.SegmentationService", timeout: float | None = None) -> str:
        """ "SERVING", "NOT_SERVING", ... as the service's grpc.health.v1 reports it."""
        try:
            request = health_pb2.HealthCheckRequest(service=service)
            response = self._health.Check(request, timeout=self._deadline(timeout, 5.0))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
