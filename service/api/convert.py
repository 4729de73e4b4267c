"""Proto messages to domain types and back: the only place that knows both."""

from __future__ import annotations

from segmentation.v1 import segmentation_service_pb2 as pb
from service.api.requests import ImageRequest
from service.backends import VersionState, VersionStatus
from service.config import ModelConfig
from service.errors import InvalidRequest
from service.mask.cutout import DEFAULT_QUALITY, Cutout, CutoutFormat, CutoutRequest, Edge, Margin, parse_colour
from service.mask.formats import DEFAULT_FORMAT, FORMATS
from service.mask.regions import DEFAULT_TOLERANCE, MAX_TOLERANCE, Region, RegionRequest
from service.pipeline import MaskSize, Options, Segmentation
from service.profiles import ResizePolicy
from service.routing import ModelChoice
from service.shadow import ShadowStats

# The API's MASK_FORMAT_<NAME> for each format of the table (service/mask/formats.py).
_FORMAT_ENUMS = {fmt: pb.MaskFormat.Value(f"MASK_FORMAT_{fmt.name}") for fmt in FORMATS}
_FORMATS = {pb.MASK_FORMAT_UNSPECIFIED: DEFAULT_FORMAT} | {value: fmt for fmt, value in _FORMAT_ENUMS.items()}
_SIZES = {
    pb.MASK_SIZE_UNSPECIFIED: MaskSize.ORIGINAL,
    pb.MASK_SIZE_ORIGINAL: MaskSize.ORIGINAL,
    pb.MASK_SIZE_MODEL: MaskSize.MODEL,
}
_EDGES = {pb.CUTOUT_EDGE_UNSPECIFIED: Edge.HARD, pb.CUTOUT_EDGE_HARD: Edge.HARD, pb.CUTOUT_EDGE_SOFT: Edge.SOFT}
_CUTOUT_FORMAT_ENUMS = {fmt: pb.CutoutFormat.Value(f"CUTOUT_FORMAT_{fmt.name}") for fmt in CutoutFormat}
_CUTOUT_FORMATS = {pb.CUTOUT_FORMAT_UNSPECIFIED: CutoutFormat.PNG} | {v: f for f, v in _CUTOUT_FORMAT_ENUMS.items()}
_STATES = {
    VersionState.UNKNOWN: pb.MODEL_VERSION_STATE_UNSPECIFIED,
    VersionState.START: pb.MODEL_VERSION_STATE_START,
    VersionState.LOADING: pb.MODEL_VERSION_STATE_LOADING,
    VersionState.AVAILABLE: pb.MODEL_VERSION_STATE_AVAILABLE,
    VersionState.UNLOADING: pb.MODEL_VERSION_STATE_UNLOADING,
    VersionState.END: pb.MODEL_VERSION_STATE_END,
}


def model_choice(selector: pb.ModelSelector) -> ModelChoice:
    version_choice = selector.WhichOneof("version_choice")
    return ModelChoice(
        name=selector.name,
        version=selector.version if version_choice == "version" else None,
        version_label=selector.version_label if version_choice == "version_label" else "",
        signature=selector.signature_name,
        variant=selector.variant,
    )


def options(request: pb.SegmentImageRequest | ImageRequest) -> Options:
    fields = request.fields if isinstance(request, ImageRequest) else request
    if fields.mask_format not in _FORMATS:
        known = ", ".join(pb.MaskFormat.Name(value) for value in _FORMAT_ENUMS.values())
        raise InvalidRequest(f"unknown mask_format {fields.mask_format}; use one of {known}")
    if fields.mask_size not in _SIZES:
        raise InvalidRequest(f"unknown mask_size {fields.mask_size}; use MASK_SIZE_ORIGINAL or _MODEL")
    return Options(
        mask_format=_FORMATS[fields.mask_format],
        mask_size=_SIZES[fields.mask_size],
        include_overlay=fields.include_overlay,
        regions=region_request(fields.regions) if fields.HasField("regions") else None,
        probability_classes=tuple(fields.probability_classes),
        cutout=cutout_request(fields.cutout) if fields.HasField("cutout") else None,
    )


def cutout_request(cutout: pb.CutoutOptions) -> CutoutRequest:
    if cutout.edge not in _EDGES:
        raise InvalidRequest(f"unknown cutout.edge {cutout.edge}; use CUTOUT_EDGE_HARD or CUTOUT_EDGE_SOFT")
    if cutout.format not in _CUTOUT_FORMATS:
        known = ", ".join(pb.CutoutFormat.Name(value) for value in _CUTOUT_FORMAT_ENUMS.values())
        raise InvalidRequest(f"unknown cutout.format {cutout.format}; use one of {known}")
    margin = cutout.WhichOneof("crop_margin")
    return CutoutRequest(
        classes=tuple(cutout.classes),
        edge=_EDGES[cutout.edge],
        crop=cutout.crop,
        margin=Margin(
            pixels=cutout.crop_margin_px if margin == "crop_margin_px" else 0,
            percent=cutout.crop_margin_percent if margin == "crop_margin_percent" else 0.0,
        ),
        background=parse_colour(cutout.background_color) if cutout.background_color else None,
        format=_CUTOUT_FORMATS[cutout.format],
        quality=cutout.quality or DEFAULT_QUALITY,
    )


def region_request(regions: pb.RegionOptions) -> RegionRequest:
    if regions.min_area < 0:
        raise InvalidRequest(f"regions.min_area is {regions.min_area}; it is a number of pixels, 0 or more")
    tolerance = regions.polygon_tolerance if regions.HasField("polygon_tolerance") else DEFAULT_TOLERANCE
    if not 0 <= tolerance <= MAX_TOLERANCE:  # NaN too
        raise InvalidRequest(
            f"regions.polygon_tolerance is {tolerance}; it is in pixels, from 0 (every corner kept) to "
            f"{MAX_TOLERANCE:g}"
        )
    return RegionRequest(
        classes=tuple(regions.classes),
        min_area=max(regions.min_area, 1),
        polygons=regions.include_polygons,
        tolerance=tolerance,
        coco_rle=regions.include_coco_rle,
    )


def segment_response(result: Segmentation) -> pb.SegmentImageResponse:
    encoded = result.mask
    mask = pb.Mask(width=encoded.width, height=encoded.height, format=_FORMAT_ENUMS[encoded.format])
    written = encoded.encoded
    if written.run_values is not None and written.run_counts is not None:
        mask.rle.values.extend(written.run_values.tolist())
        mask.rle.counts.extend(written.run_counts.tolist())
    elif written.data:  # NONE writes neither
        mask.data = written.data
    model = result.route.model
    t = result.timings
    return pb.SegmentImageResponse(
        mask=mask,
        classes=[
            pb.ClassStat(
                class_id=c.class_id,
                label=model.label(c.class_id),
                pixel_count=c.pixel_count,
                fraction=c.fraction,
                bounding_box=pb.BoundingBox(x=c.x, y=c.y, width=c.width, height=c.height),
            )
            for c in encoded.classes
        ],
        model=pb.ModelRef(
            name=model.name,
            version=result.model_version,
            signature_name=result.route.spec.signature,
            variant=result.route.variant,
        ),
        image_width=result.image_width,
        image_height=result.image_height,
        overlay=encoded.overlay,
        timing=pb.Timing(**{f"{stage}_us": us for stage, us in result.timings.stages_us}, total_us=t.total_us),
        regions=[_region(r, encoded.height, encoded.width, model) for r in encoded.regions or ()],
        probabilities=[
            pb.ProbabilityMap(
                class_id=m.class_id, label=model.label(m.class_id), width=m.width, height=m.height, png=m.png
            )
            for m in encoded.probabilities
        ],
        cutout=None if encoded.cutout is None else _cutout(encoded.cutout),
    )


def _cutout(cutout: Cutout) -> pb.Cutout:
    box = cutout.box
    return pb.Cutout(
        width=box.width,
        height=box.height,
        box=pb.BoundingBox(x=box.x, y=box.y, width=box.width, height=box.height),
        format=_CUTOUT_FORMAT_ENUMS[cutout.format],
        image=cutout.image,
        alpha=cutout.alpha,
        subject_pixels=cutout.subject_pixels,
    )


def _region(region: Region, height: int, width: int, model: ModelConfig) -> pb.Region:
    answer = pb.Region(
        class_id=region.class_id,
        label=model.label(region.class_id),
        area=region.area,
        bounding_box=pb.BoundingBox(x=region.x, y=region.y, width=region.width, height=region.height),
        centroid_x=region.centroid_x,
        centroid_y=region.centroid_y,
        polygons=[pb.Polygon(xy=p.xy.ravel().tolist(), hole=p.hole) for p in region.polygons],
    )
    if region.mean_probability is not None:
        answer.mean_probability = region.mean_probability
    if region.coco_counts:
        answer.coco_rle.size.extend((height, width))
        answer.coco_rle.counts = region.coco_counts
    return answer


def model_info(
    model: ModelConfig,
    signature: str,
    *,
    is_default: bool,
    versions: list[VersionStatus] | None,
    backend_error: str,
    shadow: ShadowStats | None,
) -> pb.ModelInfo:
    profile = model.profile
    fixed = profile.resize == ResizePolicy.FIXED
    info = pb.ModelInfo(
        name=model.name,
        is_default=is_default,
        signature_name=signature,
        labels=list(model.labels),
        input_size=profile.largest_side,
        versions=[
            pb.ModelVersion(version=v.version, state=_STATES[v.state], status_message=v.message) for v in versions or ()
        ],
        backend_error=backend_error,
        backend=model.backend,
        served_name=model.name_at_backend,
        input_width=profile.width if fixed else 0,
        input_height=profile.height if fixed else 0,
        variants=[
            pb.ModelVariant(
                name=v.name,
                weight=v.weight,
                served_name=v.model.name_at_backend,
                backend=v.model.backend,
                version=v.model.version or 0,
                version_label=v.model.version_label,
            )
            for v in model.variants
        ],
        exact=not profile.approximations,
        approximations=profile.approximations,
    )
    if model.shadow is not None and shadow is not None:
        info.shadow.CopyFrom(
            pb.ShadowFigures(
                variant=model.shadow.variant,
                percent=model.shadow.percent,
                compared=shadow.compared,
                dropped=shadow.dropped,
                failed=shadow.failed,
                skipped=shadow.skipped,
                pixel_agreement=shadow.pixel_agreement,
                mean_iou=shadow.mean_iou,
            )
        )
    return info
