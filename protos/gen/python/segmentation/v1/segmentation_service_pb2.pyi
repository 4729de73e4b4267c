from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MaskFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MASK_FORMAT_UNSPECIFIED: _ClassVar[MaskFormat]
    MASK_FORMAT_PNG: _ClassVar[MaskFormat]
    MASK_FORMAT_RAW: _ClassVar[MaskFormat]
    MASK_FORMAT_RLE: _ClassVar[MaskFormat]
    MASK_FORMAT_NONE: _ClassVar[MaskFormat]

class MaskSize(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MASK_SIZE_UNSPECIFIED: _ClassVar[MaskSize]
    MASK_SIZE_ORIGINAL: _ClassVar[MaskSize]
    MASK_SIZE_MODEL: _ClassVar[MaskSize]

class ModelVersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_VERSION_STATE_UNSPECIFIED: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_START: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_LOADING: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_AVAILABLE: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_UNLOADING: _ClassVar[ModelVersionState]
    MODEL_VERSION_STATE_END: _ClassVar[ModelVersionState]

class CutoutEdge(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUTOUT_EDGE_UNSPECIFIED: _ClassVar[CutoutEdge]
    CUTOUT_EDGE_HARD: _ClassVar[CutoutEdge]
    CUTOUT_EDGE_SOFT: _ClassVar[CutoutEdge]

class CutoutFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUTOUT_FORMAT_UNSPECIFIED: _ClassVar[CutoutFormat]
    CUTOUT_FORMAT_PNG: _ClassVar[CutoutFormat]
    CUTOUT_FORMAT_WEBP: _ClassVar[CutoutFormat]
    CUTOUT_FORMAT_JPEG_AND_ALPHA: _ClassVar[CutoutFormat]
    CUTOUT_FORMAT_ALPHA: _ClassVar[CutoutFormat]
MASK_FORMAT_UNSPECIFIED: MaskFormat
MASK_FORMAT_PNG: MaskFormat
MASK_FORMAT_RAW: MaskFormat
MASK_FORMAT_RLE: MaskFormat
MASK_FORMAT_NONE: MaskFormat
MASK_SIZE_UNSPECIFIED: MaskSize
MASK_SIZE_ORIGINAL: MaskSize
MASK_SIZE_MODEL: MaskSize
MODEL_VERSION_STATE_UNSPECIFIED: ModelVersionState
MODEL_VERSION_STATE_START: ModelVersionState
MODEL_VERSION_STATE_LOADING: ModelVersionState
MODEL_VERSION_STATE_AVAILABLE: ModelVersionState
MODEL_VERSION_STATE_UNLOADING: ModelVersionState
MODEL_VERSION_STATE_END: ModelVersionState
CUTOUT_EDGE_UNSPECIFIED: CutoutEdge
CUTOUT_EDGE_HARD: CutoutEdge
CUTOUT_EDGE_SOFT: CutoutEdge
CUTOUT_FORMAT_UNSPECIFIED: CutoutFormat
CUTOUT_FORMAT_PNG: CutoutFormat
CUTOUT_FORMAT_WEBP: CutoutFormat
CUTOUT_FORMAT_JPEG_AND_ALPHA: CutoutFormat
CUTOUT_FORMAT_ALPHA: CutoutFormat

class ModelSelector(_message.Message):
    __slots__ = ("name", "version", "version_label", "signature_name", "variant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_LABEL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    version_label: str
    signature_name: str
    variant: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., version_label: _Optional[str] = ..., signature_name: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class SegmentImageRequest(_message.Message):
    __slots__ = ("image", "model", "mask_format", "mask_size", "include_overlay", "regions", "probability_classes", "cutout")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MASK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OVERLAY_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CUTOUT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    model: ModelSelector
    mask_format: MaskFormat
    mask_size: MaskSize
    include_overlay: bool
    regions: RegionOptions
    probability_classes: _containers.RepeatedScalarFieldContainer[str]
    cutout: CutoutOptions
    def __init__(self, image: _Optional[bytes] = ..., model: _Optional[_Union[ModelSelector, _Mapping]] = ..., mask_format: _Optional[_Union[MaskFormat, str]] = ..., mask_size: _Optional[_Union[MaskSize, str]] = ..., include_overlay: _Optional[bool] = ..., regions: _Optional[_Union[RegionOptions, _Mapping]] = ..., probability_classes: _Optional[_Iterable[str]] = ..., cutout: _Optional[_Union[CutoutOptions, _Mapping]] = ...) -> None: ...

class CutoutOptions(_message.Message):
    __slots__ = ("classes", "edge", "crop", "crop_margin_px", "crop_margin_percent", "background_color", "format", "quality")
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    EDGE_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    CROP_MARGIN_PX_FIELD_NUMBER: _ClassVar[int]
    CROP_MARGIN_PERCENT_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_COLOR_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedScalarFieldContainer[str]
    edge: CutoutEdge
    crop: bool
    crop_margin_px: int
    crop_margin_percent: float
    background_color: str
    format: CutoutFormat
    quality: int
    def __init__(self, classes: _Optional[_Iterable[str]] = ..., edge: _Optional[_Union[CutoutEdge, str]] = ..., crop: _Optional[bool] = ..., crop_margin_px: _Optional[int] = ..., crop_margin_percent: _Optional[float] = ..., background_color: _Optional[str] = ..., format: _Optional[_Union[CutoutFormat, str]] = ..., quality: _Optional[int] = ...) -> None: ...

class RegionOptions(_message.Message):
    __slots__ = ("classes", "min_area", "include_polygons", "polygon_tolerance", "include_coco_rle")
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    MIN_AREA_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_POLYGONS_FIELD_NUMBER: _ClassVar[int]
    POLYGON_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_COCO_RLE_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedScalarFieldContainer[str]
    min_area: int
    include_polygons: bool
    polygon_tolerance: float
    include_coco_rle: bool
    def __init__(self, classes: _Optional[_Iterable[str]] = ..., min_area: _Optional[int] = ..., include_polygons: _Optional[bool] = ..., polygon_tolerance: _Optional[float] = ..., include_coco_rle: _Optional[bool] = ...) -> None: ...

class RunLengths(_message.Message):
    __slots__ = ("values", "counts")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class Mask(_message.Message):
    __slots__ = ("width", "height", "format", "data", "rle")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RLE_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    format: MaskFormat
    data: bytes
    rle: RunLengths
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[_Union[MaskFormat, str]] = ..., data: _Optional[bytes] = ..., rle: _Optional[_Union[RunLengths, _Mapping]] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class ClassStat(_message.Message):
    __slots__ = ("class_id", "label", "pixel_count", "fraction", "bounding_box")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PIXEL_COUNT_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    BOUNDING_BOX_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    label: str
    pixel_count: int
    fraction: float
    bounding_box: BoundingBox
    def __init__(self, class_id: _Optional[int] = ..., label: _Optional[str] = ..., pixel_count: _Optional[int] = ..., fraction: _Optional[float] = ..., bounding_box: _Optional[_Union[BoundingBox, _Mapping]] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("name", "version", "signature_name", "variant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    signature_name: str
    variant: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., signature_name: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class Timing(_message.Message):
    __slots__ = ("probe_us", "decode_us", "resize_us", "pack_us", "predict_us", "unpack_us", "postprocess_us", "encode_us", "total_us")
    PROBE_US_FIELD_NUMBER: _ClassVar[int]
    DECODE_US_FIELD_NUMBER: _ClassVar[int]
    RESIZE_US_FIELD_NUMBER: _ClassVar[int]
    PACK_US_FIELD_NUMBER: _ClassVar[int]
    PREDICT_US_FIELD_NUMBER: _ClassVar[int]
    UNPACK_US_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESS_US_FIELD_NUMBER: _ClassVar[int]
    ENCODE_US_FIELD_NUMBER: _ClassVar[int]
    TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    probe_us: int
    decode_us: int
    resize_us: int
    pack_us: int
    predict_us: int
    unpack_us: int
    postprocess_us: int
    encode_us: int
    total_us: int
    def __init__(self, probe_us: _Optional[int] = ..., decode_us: _Optional[int] = ..., resize_us: _Optional[int] = ..., pack_us: _Optional[int] = ..., predict_us: _Optional[int] = ..., unpack_us: _Optional[int] = ..., postprocess_us: _Optional[int] = ..., encode_us: _Optional[int] = ..., total_us: _Optional[int] = ...) -> None: ...

class SegmentImageResponse(_message.Message):
    __slots__ = ("mask", "classes", "model", "image_width", "image_height", "overlay", "timing", "regions", "probabilities", "cutout")
    MASK_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OVERLAY_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    CUTOUT_FIELD_NUMBER: _ClassVar[int]
    mask: Mask
    classes: _containers.RepeatedCompositeFieldContainer[ClassStat]
    model: ModelRef
    image_width: int
    image_height: int
    overlay: bytes
    timing: Timing
    regions: _containers.RepeatedCompositeFieldContainer[Region]
    probabilities: _containers.RepeatedCompositeFieldContainer[ProbabilityMap]
    cutout: Cutout
    def __init__(self, mask: _Optional[_Union[Mask, _Mapping]] = ..., classes: _Optional[_Iterable[_Union[ClassStat, _Mapping]]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., overlay: _Optional[bytes] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ..., regions: _Optional[_Iterable[_Union[Region, _Mapping]]] = ..., probabilities: _Optional[_Iterable[_Union[ProbabilityMap, _Mapping]]] = ..., cutout: _Optional[_Union[Cutout, _Mapping]] = ...) -> None: ...

class Cutout(_message.Message):
    __slots__ = ("width", "height", "box", "format", "image", "alpha", "subject_pixels")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_PIXELS_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    box: BoundingBox
    format: CutoutFormat
    image: bytes
    alpha: bytes
    subject_pixels: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ..., format: _Optional[_Union[CutoutFormat, str]] = ..., image: _Optional[bytes] = ..., alpha: _Optional[bytes] = ..., subject_pixels: _Optional[int] = ...) -> None: ...

class ProbabilityMap(_message.Message):
    __slots__ = ("class_id", "label", "width", "height", "png")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    label: str
    width: int
    height: int
    png: bytes
    def __init__(self, class_id: _Optional[int] = ..., label: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., png: _Optional[bytes] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("class_id", "label", "area", "bounding_box", "centroid_x", "centroid_y", "polygons", "coco_rle", "mean_probability")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    BOUNDING_BOX_FIELD_NUMBER: _ClassVar[int]
    CENTROID_X_FIELD_NUMBER: _ClassVar[int]
    CENTROID_Y_FIELD_NUMBER: _ClassVar[int]
    POLYGONS_FIELD_NUMBER: _ClassVar[int]
    COCO_RLE_FIELD_NUMBER: _ClassVar[int]
    MEAN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    label: str
    area: int
    bounding_box: BoundingBox
    centroid_x: float
    centroid_y: float
    polygons: _containers.RepeatedCompositeFieldContainer[Polygon]
    coco_rle: CocoRle
    mean_probability: float
    def __init__(self, class_id: _Optional[int] = ..., label: _Optional[str] = ..., area: _Optional[int] = ..., bounding_box: _Optional[_Union[BoundingBox, _Mapping]] = ..., centroid_x: _Optional[float] = ..., centroid_y: _Optional[float] = ..., polygons: _Optional[_Iterable[_Union[Polygon, _Mapping]]] = ..., coco_rle: _Optional[_Union[CocoRle, _Mapping]] = ..., mean_probability: _Optional[float] = ...) -> None: ...

class Polygon(_message.Message):
    __slots__ = ("xy", "hole")
    XY_FIELD_NUMBER: _ClassVar[int]
    HOLE_FIELD_NUMBER: _ClassVar[int]
    xy: _containers.RepeatedScalarFieldContainer[int]
    hole: bool
    def __init__(self, xy: _Optional[_Iterable[int]] = ..., hole: _Optional[bool] = ...) -> None: ...

class CocoRle(_message.Message):
    __slots__ = ("size", "counts")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    size: _containers.RepeatedScalarFieldContainer[int]
    counts: str
    def __init__(self, size: _Optional[_Iterable[int]] = ..., counts: _Optional[str] = ...) -> None: ...

class SegmentImageStreamRequest(_message.Message):
    __slots__ = ("request", "id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    request: SegmentImageRequest
    id: str
    def __init__(self, request: _Optional[_Union[SegmentImageRequest, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class SegmentImageStreamResponse(_message.Message):
    __slots__ = ("index", "id", "result", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    id: str
    result: SegmentImageResponse
    error: ItemError
    def __init__(self, index: _Optional[int] = ..., id: _Optional[str] = ..., result: _Optional[_Union[SegmentImageResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "state", "status_message")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    version: int
    state: ModelVersionState
    status_message: str
    def __init__(self, version: _Optional[int] = ..., state: _Optional[_Union[ModelVersionState, str]] = ..., status_message: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "is_default", "signature_name", "labels", "input_size", "versions", "backend_error", "backend", "served_name", "input_width", "input_height", "variants", "shadow", "exact", "approximations")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ERROR_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SERVED_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    is_default: bool
    signature_name: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    input_size: int
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    backend_error: str
    backend: str
    served_name: str
    input_width: int
    input_height: int
    variants: _containers.RepeatedCompositeFieldContainer[ModelVariant]
    shadow: ShadowFigures
    exact: bool
    approximations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., is_default: _Optional[bool] = ..., signature_name: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., input_size: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., backend_error: _Optional[str] = ..., backend: _Optional[str] = ..., served_name: _Optional[str] = ..., input_width: _Optional[int] = ..., input_height: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[ModelVariant, _Mapping]]] = ..., shadow: _Optional[_Union[ShadowFigures, _Mapping]] = ..., exact: _Optional[bool] = ..., approximations: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelVariant(_message.Message):
    __slots__ = ("name", "weight", "served_name", "backend", "version", "version_label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SERVED_NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    weight: int
    served_name: str
    backend: str
    version: int
    version_label: str
    def __init__(self, name: _Optional[str] = ..., weight: _Optional[int] = ..., served_name: _Optional[str] = ..., backend: _Optional[str] = ..., version: _Optional[int] = ..., version_label: _Optional[str] = ...) -> None: ...

class ShadowFigures(_message.Message):
    __slots__ = ("variant", "percent", "compared", "dropped", "failed", "skipped", "pixel_agreement", "mean_iou")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    PIXEL_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    MEAN_IOU_FIELD_NUMBER: _ClassVar[int]
    variant: str
    percent: float
    compared: int
    dropped: int
    failed: int
    skipped: int
    pixel_agreement: float
    mean_iou: float
    def __init__(self, variant: _Optional[str] = ..., percent: _Optional[float] = ..., compared: _Optional[int] = ..., dropped: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., pixel_agreement: _Optional[float] = ..., mean_iou: _Optional[float] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
