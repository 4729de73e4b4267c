"""python -m bench.fidelity: how far the gateway's masks agree with each model's own output, photo by photo.

The reference is each model as its authors run it, in TensorFlow, on the whole decoded photo (Pillow's decoder,
EXIF orientation applied as a viewer shows it): the frozen graph, which resizes the photo inside and enlarges its
scores back to the photo's size before the argmax; the TFLite model on the photo resized by TensorFlow's bilinear
resize, its scores enlarged to the photo's size the same way. The gateway answers through a modelserver serving
what `make export` writes, configured by examples/multi-model.toml (both models: the targets are theirs).

For each case, at the photo's size: agreement (the share of pixels with the same class) and mean IoU (per class
present in either mask, averaged). Also whether the model-size mask (MASK_SIZE_MODEL) equals the model's own output
for the very tensor the gateway sent, and whether that tensor is the one the graph makes from the photo itself.
With --levers, also the gateway's speed options (LEVERS: the profile options that trade agreement for speed) and
its model-size answer enlarged by the client; with --peers, the bench's in-graph peers (the bytes to TF Serving,
decoded and resized in the graph). For each case too, the regions of the default model's answer against its own
mask (bench/regions.py: COCO RLE decoded by pycocotools, outlines drawn back). Prints a table, worst cases first,
and a last line of JSON; `--report` writes the tables as Markdown.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import cv2
import grpc
import numpy as np
import pillow_heif
import skimage.data
from PIL import Image, ImageOps

from bench import regions
from bench.regions import RegionOutcome
from deploy.local import ROOT, ServerProcess, start_gateway, start_modelserver
from exporter.graph import find_scores
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.config import Limits, ModelConfig
from service.config_file import read_config_file
from service.image.decode import decode
from service.image.probe import probe
from service.image.resize import model_size, resize_to
from service.image.tensor import model_input
from service.profiles import Decode

SHARED = ROOT.parent / "shared"
MODEL_DIR = SHARED / "models" / "deeplabv3_mnv2_pascal"
FROZEN_GRAPH = MODEL_DIR / "frozen_inference_graph.pb"
TFLITE = MODEL_DIR / "deeplabv3_257_mv_gpu.tflite"
EXAMPLE = ROOT / "examples" / "multi-model.toml"

# Real photos: the shared ones, then scikit-image's (files in its wheel), colour and grayscale.
SHARED_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
SKIMAGE_PHOTOS = (
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "camera.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
)
ORIENTATIONS = (2, 3, 4, 5, 6, 7, 8)
# The transpose that stores an oriented image so that EXIF orientation N shows it upright again.
_STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
# HEIC (libheif) and AVIF (libavif) copies, upright and turned by the container's rotation (irot) for orientation 6.
ISO_MEDIA_VARIANTS = ("heic", "heic-6", "avif", "avif-6")
VARIANTS = ("as-given", *(f"exif-{n}" for n in ORIENTATIONS), "png", "webp", *ISO_MEDIA_VARIANTS, "1080p", "4k")
PLANS = {
    # Every photo, each as given, rotated by every EXIF orientation, as PNG and WebP copies, at 1080p and 4K.
    "full": (SHARED_PHOTOS + SKIMAGE_PHOTOS, VARIANTS),
    # The short form `make test` runs.
    "short": (SHARED_PHOTOS, ("as-given", "exif-6", "webp", "heic-6", "avif-6", "1080p")),
}
TARGET_MIN, TARGET_MEAN = 0.995, 0.999
SHIPPED = ("deeplab", "deeplab-lite")  # the models the example configures: the targets are theirs

# The gateway's speed options, each a model beside the shipped ones: "deeplab" with one profile option changed
# (docs/performance.md, "Agreement"), against the frozen graph. "deeplab-fast" has all of them: the gateway before
# exactness.
_FIXED = 'resize = "fixed", width = 257, height = 257'
_SCORES = 'input_dtype = "float32", signature = "serving_scores", input_key = "image", scores_key = "scores"'
LEVERS = {
    "deeplab-reduced": f'{{ {_FIXED}, {_SCORES}, decode = "reduced" }}',
    "deeplab-nearest": f'{{ {_FIXED}, {_SCORES}, upscale = "nearest" }}',
    # uint8 pixels go to serving_default, which gives no scores: the ids are enlarged by nearest neighbour too.
    "deeplab-uint8": f"{{ {_FIXED} }}",
    "deeplab-fast": f'{{ {_FIXED}, decode = "reduced", upscale = "nearest" }}',
}
# "deeplab" answering at the model's size (MASK_SIZE_MODEL), enlarged by the client.
MODEL_SIZE = "deeplab/model-size"
SUBJECTS_REFERENCE = {
    MODEL_SIZE: "deeplab",
    **dict.fromkeys(LEVERS, "deeplab"),
    "ingraph": "deeplab",
    "ingraph-exact": "deeplab",
}


@dataclass(frozen=True)
class Case:
    photo: str
    variant: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    subject: str  # a model of the example, a lever, or a peer
    photo: str
    variant: str
    width: int
    height: int
    agreement: float | None  # None: no answer (a peer that cannot decode the case, or shows it unrotated)
    mean_iou: float | None
    model_size_exact: bool | None  # None: not checked (a gateway this run did not start)
    tensor_exact: bool | None  # the tensor sent is the one the graph makes itself (the frozen graph only)
    ms: float  # the answer's round trip: the gateway's call, or the peer's run here


pillow_heif.register_heif_opener()  # HEIF in Pillow: for the HEIC copies and the reference decode


def _photo_paths() -> dict[str, pathlib.Path]:
    bundled = pathlib.Path(skimage.data.__file__).parent
    paths = {name: SHARED / "images" / name for name in SHARED_PHOTOS}
    paths.update({name: bundled / name for name in SKIMAGE_PHOTOS})
    return paths


def _encode(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def _variant(original: bytes, image: Image.Image, variant: str) -> bytes:
    if variant == "as-given":
        return original
    if variant.startswith("exif-"):
        orientation = int(variant.removeprefix("exif-"))
        exif = Image.Exif()
        exif[0x0112] = orientation
        return _encode(image.transpose(_STORED_AS[orientation]), "JPEG", quality=90, exif=exif.tobytes())
    if variant == "png":
        return _encode(image, "PNG")
    if variant.startswith(("heic", "avif")):
        kind, _, turned = variant.partition("-")
        exif = Image.Exif()
        if turned:
            # Written as irot/imir by the encoder, beside the EXIF tag: a viewer shows the photo upright.
            exif[0x0112] = int(turned)
            image = image.transpose(_STORED_AS[int(turned)])
        return _encode(image, "HEIF" if kind == "heic" else "AVIF", quality=90, exif=exif.tobytes())
    if variant == "webp":
        return _encode(image, "WEBP", quality=90)
    height = {"1080p": 1080, "4k": 2160}[variant]
    width = round(image.width * height / image.height)
    return _encode(image.resize((width, height), Image.Resampling.LANCZOS), "JPEG", quality=90)


def cases(photos: tuple[str, ...], variants: tuple[str, ...]) -> Iterator[Case]:
    """Each photo in each variant, made now from the photo's pixels (nothing is stored)."""
    paths = _photo_paths()
    for photo in photos:
        original = paths[photo].read_bytes()
        image = Image.open(io.BytesIO(original))
        image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
        for variant in variants:
            yield Case(photo, variant, _variant(original, image, variant))


def viewed(data: bytes) -> np.ndarray:
    """The photo as a viewer shows it: Pillow's decoder (HEIF: pillow-heif's, the container's transforms applied and
    the EXIF tag then reset), EXIF orientation applied, RGB."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


def compare(found: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Agreement and mean IoU of two class-id masks of one size."""
    pairs = np.bincount(found.ravel().astype(np.int64) * 256 + reference.ravel(), minlength=256 * 256)
    confusion = pairs.reshape(256, 256)
    intersection = np.diagonal(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    present = union > 0
    return float(intersection.sum() / found.size), float((intersection[present] / union[present]).mean())


class Graph:
    """The shared frozen graph in TensorFlow, as its authors run it."""

    def __init__(self) -> None:
        import tensorflow as tf  # noqa: PLC0415

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(FROZEN_GRAPH.read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        self.graph_def = graph_def
        self.session = tf.compat.v1.Session(graph=graph)

    def reference(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The class of every pixel of the photo, and the float image the graph resized it to for its network."""
        mask, resized = self.session.run(
            ["SemanticPredictions:0", "resize/ResizeBilinear:0"], {"ImageTensor:0": rgb[np.newaxis]}
        )
        return mask[0].astype(np.uint8), resized[0]

    def probability_levels(self, rgb: np.ndarray, class_ids: list[int]) -> list[np.ndarray]:
        """Issue 31's probability maps of the photo as TensorFlow computes them from the graph's own logits: enlarged
        with aligned corners to the network's size (as the graph does), the softmax, each class's plane enlarged to
        the photo with half-pixel centres, round(255 x p)."""
        import tensorflow as tf  # noqa: PLC0415

        tap, _ = find_scores(self.graph_def)
        assert tap is not None
        logits, network = self.session.run([tap.scores, tap.network_size], {"ImageTensor:0": rgb[np.newaxis]})
        scores = tf.raw_ops.ResizeBilinear(images=logits, size=network, align_corners=True, half_pixel_centers=False)
        probabilities = tf.nn.softmax(scores, axis=-1)
        levels = []
        for class_id in class_ids:
            plane = probabilities[..., class_id : class_id + 1]
            enlarged = tf.raw_ops.ResizeBilinear(
                images=plane, size=rgb.shape[:2], align_corners=False, half_pixel_centers=True
            )
            levels.append(np.clip(np.rint(enlarged.numpy()[0, ..., 0] * 255), 0, 255).astype(np.uint8))
        return levels

    def for_tensor(self, tensor: np.ndarray) -> np.ndarray:
        """The graph's output for a float image given where its own Cast of the uint8 input would be."""
        tensor = tensor.astype(np.float32)
        feeds = {"Cast:0": tensor, "Shape:0": np.array(tensor.shape, np.int32)}
        return self.session.run("SemanticPredictions:0", feeds)[0].astype(np.uint8)


class Lite:
    """The shared TFLite model in TensorFlow Lite: the photo resized by TensorFlow, the scores enlarged by it."""

    def __init__(self, offset: float, scale: float) -> None:
        import tensorflow as tf  # noqa: PLC0415

        self.tf = tf
        self.interpreter = tf.lite.Interpreter(model_path=str(TFLITE), num_threads=2)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.offset, self.scale = offset, scale

    def scores(self, tensor: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], tensor.astype(np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def reference(self, rgb: np.ndarray) -> tuple[np.ndarray, None]:
        tf = self.tf
        height, width = self.input["shape"][1:3]
        resized = tf.image.resize(tf.constant(rgb[np.newaxis], tf.float32), (height, width), method="bilinear")
        scores = self.scores(((resized - self.offset) / self.scale).numpy())
        enlarged = tf.image.resize(scores, rgb.shape[:2], method="bilinear")
        return tf.argmax(enlarged, axis=-1)[0].numpy().astype(np.uint8), None

    def for_tensor(self, tensor: np.ndarray) -> np.ndarray:
        return np.argmax(self.scores(tensor)[0], axis=-1).astype(np.uint8)


def gateway_tensor(data: bytes, model: ModelConfig) -> np.ndarray:
    """The tensor the gateway sends for this image: its own stages (service/image), as its pipeline runs them."""
    profile = model.profile
    info = probe(data, Limits())
    decoded = decode(data, info, model_size(*info.oriented_size, profile) if profile.decode == Decode.REDUCED else None)
    return model_input(resize_to(decoded.bgr, model_size(decoded.width, decoded.height, profile)), profile)


def segment(stub: pb_grpc.SegmentationServiceStub, data: bytes, model: str, size: int) -> tuple[np.ndarray, float]:
    request = pb.SegmentImageRequest(
        image=data, model=pb.ModelSelector(name=model), mask_format=pb.MASK_FORMAT_RAW, mask_size=size
    )
    start = time.perf_counter()
    mask = stub.SegmentImage(request, timeout=120).mask
    elapsed = (time.perf_counter() - start) * 1000
    return np.frombuffer(mask.data, np.uint8).reshape(mask.height, mask.width), elapsed


def enlarged(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A model-size mask at the photo's size, as a client enlarges one: nearest neighbour, pixel centres aligned."""
    if mask.shape == shape[:2]:
        return mask
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST_EXACT)


class Peer:
    """An in-graph peer: the encoded bytes to an exported servable's serving_bytes (decode and resize in the graph),
    run here in TensorFlow as TF Serving runs it. TensorFlow's decoders apply no EXIF orientation and know no
    WebP: those cases are the peer's failures, counted apart."""

    def __init__(self, servable: pathlib.Path) -> None:
        import tensorflow as tf  # noqa: PLC0415

        self.tf = tf
        self.fn = tf.saved_model.load(str(servable), tags=["serve"]).signatures["serving_bytes"]

    def answer(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray | None:
        try:
            mask = self.fn(image_bytes=self.tf.constant([data]))["SemanticPredictions"].numpy()[0]
        except self.tf.errors.InvalidArgumentError:
            return None
        if mask.shape != (257, 257) and mask.shape != shape[:2]:
            return None  # the photo as stored, not as shown: a mask that does not fit it
        return enlarged(mask.astype(np.uint8), shape)


def export_peers(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """The bench's in-graph peers, exported now: the model-size answer (resized to 257 x 257 in the graph) and the
    graph's own full-size answer."""
    peers = {"ingraph": "257x257", "ingraph-exact": "full"}
    found = {}
    for name, size in peers.items():
        base = directory / name
        command = [sys.executable, "-m", "exporter", f"--frozen-graph={FROZEN_GRAPH}", f"--export-dir={base}"]
        command += ["--version=1", "--output-dtype=uint8", "--bytes-signature", f"--bytes-signature-size={size}"]
        subprocess.run(command, check=True, capture_output=True, timeout=600, cwd=ROOT)
        found[name] = base / "1"
    return found


def _outcome(
    case: Case,
    expected: dict[str, tuple[np.ndarray, np.ndarray | None]],
    subject: str,
    found: np.ndarray | None,
    elapsed: float,
    *,
    model_exact: bool | None = None,
    tensor_exact: bool | None = None,
) -> Outcome:
    """One subject's answer for one case against its reference, printed as it comes."""
    mask = expected[SUBJECTS_REFERENCE.get(subject, subject)][0]
    if found is not None and found.shape != mask.shape:
        raise AssertionError(f"{subject} {case.photo} {case.variant}: mask {found.shape}, model {mask.shape}")
    agreement, iou = compare(found, mask) if found is not None else (None, None)
    height, width = mask.shape
    result = Outcome(
        subject, case.photo, case.variant, width, height, agreement, iou, model_exact, tensor_exact, elapsed
    )
    print(_row(result), file=sys.stderr, flush=True)
    return result


def measure(
    stub: pb_grpc.SegmentationServiceStub,
    plan: str,
    models: dict[str, ModelConfig],
    *,
    own: bool,
    levers: bool = False,
    peers: dict[str, pathlib.Path] | None = None,
) -> tuple[list[Outcome], list[RegionOutcome]]:
    """Every case of the plan with every model the example configures, against each model's own output; `own`: the
    gateway runs this checkout's code (its tensors are known). With `levers`, the gateway's speed options (LEVERS)
    and the model-size answer enlarged; with `peers`, the in-graph peers, each against the frozen graph. Beside
    them, the regions of "deeplab"'s answer against its mask (bench/regions.py)."""
    lite = models["deeplab-lite"].profile
    references = {"deeplab": Graph(), "deeplab-lite": Lite(lite.input_offset, lite.input_scale)}
    runs = {name: Peer(path) for name, path in (peers or {}).items()}
    photos, variants = PLANS[plan]
    outcomes = []
    region_outcomes = []
    for case in cases(photos, variants):
        rgb = viewed(case.data)
        expected = {name: reference.reference(rgb) for name, reference in references.items()}
        # The graph's most frequent classes, at most as many maps as an answer carries.
        present = np.bincount(expected["deeplab"][0].ravel(), minlength=256)
        mapped = [int(c) for c in np.argsort(-present)[: Limits().max_probability_maps] if present[c]]
        exact, simplified = (
            stub.SegmentImage(
                pb.SegmentImageRequest(image=case.data, mask_format=pb.MASK_FORMAT_RAW, regions=options, **outputs),
                timeout=120,
            )
            for options, outputs in (
                (regions.EXACT, {"cutout": regions.MATTE, "probability_classes": [str(c) for c in mapped]}),
                (regions.SIMPLIFIED, {}),
            )
        )
        mask = np.frombuffer(exact.mask.data, np.uint8).reshape(exact.mask.height, exact.mask.width)
        theirs = references["deeplab"].probability_levels(rgb, mapped)  # type: ignore[attr-defined]
        region_outcomes.append(regions.check(exact, simplified, mask, case.photo, case.variant, their_levels=theirs))

        for name, reference in references.items():
            found, elapsed = segment(stub, case.data, name, pb.MASK_SIZE_ORIGINAL)
            model_exact = tensor_exact = None
            if own:
                tensor = gateway_tensor(case.data, models[name])
                small, _ = segment(stub, case.data, name, pb.MASK_SIZE_MODEL)
                model_exact = bool(np.array_equal(small, reference.for_tensor(tensor)))
                graph_tensor = expected[name][1]
                if graph_tensor is not None:
                    tensor_exact = bool(np.array_equal(tensor[0], graph_tensor))
            outcomes.append(
                _outcome(case, expected, name, found, elapsed, model_exact=model_exact, tensor_exact=tensor_exact)
            )
        if levers:
            small, elapsed = segment(stub, case.data, "deeplab", pb.MASK_SIZE_MODEL)
            outcomes.append(_outcome(case, expected, MODEL_SIZE, enlarged(small, rgb.shape), elapsed))
            for name in LEVERS:
                found, elapsed = segment(stub, case.data, name, pb.MASK_SIZE_ORIGINAL)
                outcomes.append(_outcome(case, expected, name, found, elapsed))
        for name, peer in runs.items():
            start = time.perf_counter()
            found = peer.answer(case.data, rgb.shape)
            outcomes.append(_outcome(case, expected, name, found, (time.perf_counter() - start) * 1000))
    return outcomes, region_outcomes


def _percent(value: float | None, digits: int) -> str:
    return "no answer" if value is None else f"{100 * value:.{digits}f} %"


def _row(o: Outcome) -> str:
    def flag(value: bool | None) -> str:
        return "-" if value is None else "yes" if value else "NO"

    return (
        f"| {o.subject} | {o.photo} | {o.variant} | {o.width}x{o.height} | {_percent(o.agreement, 3)} | "
        f"{_percent(o.mean_iou, 2)} | {flag(o.model_size_exact)} | {flag(o.tensor_exact)} | {o.ms:.0f} |"
    )


TABLE_HEAD = (
    "| subject | photo | variant | size | agreement | mean IoU | model-size mask exact | tensor exact | ms |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _figures(outcomes: list[Outcome]) -> dict:
    def least(values: list[float]) -> float | None:
        return round(min(values), 6) if values else None

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 6) if values else None

    agreements = [o.agreement for o in outcomes if o.agreement is not None]
    ious = [o.mean_iou for o in outcomes if o.mean_iou is not None]
    # TensorFlow's decoders ignore EXIF orientation: the peers' figures on the photos stored upright, apart.
    upright = [o.agreement for o in outcomes if o.agreement is not None and not o.variant.startswith("exif-")]
    return {
        "min_agreement": least(agreements),
        "mean_agreement": mean(agreements),
        "min_mean_iou": least(ious),
        "mean_mean_iou": mean(ious),
        "min_agreement_upright": least(upright),
        "mean_agreement_upright": mean(upright),
        "cases": len(outcomes),
        "unanswered": len(outcomes) - len(agreements),
    }


def summary(outcomes: list[Outcome]) -> dict:
    """The shipped models' figures (the targets are theirs) as the keys make bench reports, and every subject's."""
    shipped = [o for o in outcomes if o.subject in SHIPPED]
    figures = _figures(shipped)
    checked = [o.model_size_exact for o in shipped if o.model_size_exact is not None]
    result: dict = {
        "fidelity_min_agreement": figures["min_agreement"],
        "fidelity_mean_agreement": figures["mean_agreement"],
        "fidelity_min_mean_iou": figures["min_mean_iou"],
        "fidelity_mean_mean_iou": figures["mean_mean_iou"],
        "fidelity_cases": figures["cases"],
        "fidelity_model_size_exact": f"{sum(checked)}/{len(checked)}" if checked else None,
        "subjects": {
            name: _figures([o for o in outcomes if o.subject == name])
            for name in dict.fromkeys(o.subject for o in outcomes)
        },
    }
    met = figures["unanswered"] == 0 and (figures["min_agreement"] or 0) >= TARGET_MIN
    result["targets_met"] = met and (figures["mean_agreement"] or 0) >= TARGET_MEAN
    return result


def example_config(directory: pathlib.Path, target: str, levers: bool) -> pathlib.Path:
    """examples/multi-model.toml as shipped, pointed at this run's model server; with `levers`, LEVERS beside."""
    text = EXAMPLE.read_text()
    shipped = 'targets = ["localhost:8500"]'
    if text.count(shipped) != 1:
        raise RuntimeError(f"{EXAMPLE} no longer has its one backend at localhost:8500")
    labels = str(MODEL_DIR / "labels.txt")
    text = text.replace(shipped, f'targets = ["{target}"]')
    text = text.replace("../../shared/models/deeplabv3_mnv2_pascal/labels.txt", labels)
    if levers:
        # Before the example's [profiles.*] tables, after which a [[models]] table would not be top-level.
        head, _, profiles = text.partition("\n[profiles.")
        added = "".join(
            f'\n[[models]]\nname = "{name}"\nserved_name = "deeplab"\nlabels = "{labels}"\nprofile = {profile}\n'
            for name, profile in LEVERS.items()
        )
        text = head + added + ("\n[profiles." + profiles if profiles else "")
    path = directory / "multi-model.toml"
    path.write_text(text)
    return path


def models_config(directory: pathlib.Path, deeplab: pathlib.Path, lite: pathlib.Path) -> pathlib.Path:
    path = directory / "models.config"
    path.write_text(
        "model_config_list {\n"
        f'  config {{ name: "deeplab" base_path: "{deeplab.resolve()}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "deeplab-lite" base_path: "{lite.resolve()}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    return path


def run(
    plan: str,
    model_base: pathlib.Path,
    lite_base: pathlib.Path,
    *,
    gateway: str = "",
    levers: bool = False,
    peers: bool = False,
) -> tuple[list[Outcome], list[RegionOutcome]]:
    """Starts a model server and the gateway (unless given a running gateway's address) and measures the plan."""
    models = {m.name: m for m in read_config_file(EXAMPLE).models}
    servers: list[ServerProcess] = []
    with tempfile.TemporaryDirectory() as work:
        try:
            if not gateway:
                config = models_config(pathlib.Path(work), model_base, lite_base)
                servers.append(start_modelserver(f"--model_config_file={config}", "--prefer_tflite_model=true"))
                example = example_config(pathlib.Path(work), servers[0].target, levers)
                servers.append(start_gateway(f"--config={example}"))
                gateway = servers[1].target
            servables = export_peers(pathlib.Path(work)) if peers else None
            options = [("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30)]
            with grpc.insecure_channel(gateway, options=options) as channel:
                grpc.channel_ready_future(channel).result(timeout=60)
                stub = pb_grpc.SegmentationServiceStub(channel)
                _wait_until_answering(stub)
                return measure(stub, plan, models, own=bool(servers), levers=levers and bool(servers), peers=servables)
        finally:
            for server in reversed(servers):
                server.stop()


def _wait_until_answering(stub: pb_grpc.SegmentationServiceStub, timeout: float = 120) -> None:
    """Until both models' versions are available at the backend (the gateway starts before they load)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
        ready = {m.name for m in listed if any(v.state == pb.MODEL_VERSION_STATE_AVAILABLE for v in m.versions)}
        if {"deeplab", "deeplab-lite"} <= ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the models did not become available within {timeout} s: {listed}")
        time.sleep(0.5)


def report(outcomes: list[Outcome], result: dict, path: pathlib.Path) -> None:
    rows = [_row(o) for o in sorted(outcomes, key=_worst_first)]
    subjects = "\n".join(
        f"| {name} | {_percent(f['min_agreement'], 3)} | {_percent(f['mean_agreement'], 3)} | "
        f"{_percent(f['mean_mean_iou'], 2)} | {_percent(f['min_agreement_upright'], 3)} | "
        f"{_percent(f['mean_agreement_upright'], 3)} | {f['cases']} | {f['unanswered']} |"
        for name, f in result["subjects"].items()
    )
    path.write_text(
        "# Fidelity: the gateway's masks against each model's own output\n\n"
        "Made by `make fidelity` (`python -m bench.fidelity`); how the reference is computed is in its docstring "
        'and docs/performance.md ("Agreement"). Per subject (upright photos: the cases without an EXIF orientation, '
        "which TensorFlow's decoders, and so the in-graph peers, ignore), then every case, worst first.\n\n"
        f"```\n{json.dumps(result)}\n```\n\n"
        "| subject | min agreement | mean agreement | mean IoU | min, upright photos | mean, upright photos | cases "
        "| no answer |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{subjects}\n\n{_regions_line(result.get('regions'))}{TABLE_HEAD}\n" + "\n".join(rows) + "\n"
    )


def _regions_line(figures: dict | None) -> str:
    if not figures:
        return ""
    return (
        f"Regions of the default model's answers (every class but the background): {figures['regions']} regions "
        f"in {figures['cases']} cases; COCO RLE decoded to exactly the mask in {figures['rle_exact']}; exact "
        f"outlines drawn back to exactly the regions in {figures['outlines_exact']}; outlines at 1 px drawn back, "
        f"IoU with the regions min {_percent(figures['min_polygon_iou_1px'], 2)}, mean "
        f"{_percent(figures['mean_polygon_iou_1px'], 2)}. The hard cut-out's alpha is the mask in "
        f"{figures.get('cutout_alpha_exact', 'none')}; the probability maps of each photo's classes are at most "
        f"{figures.get('probability_max_levels_apart', '-')} level from TensorFlow's, with "
        f"{_percent(figures.get('probability_pixels_apart'), 4)} of their pixels apart.\n\n"
    )


def _worst_first(o: Outcome) -> tuple:
    return (o.agreement if o.agreement is not None else -1.0, o.subject, o.photo, o.variant)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=tuple(PLANS), default="full")
    parser.add_argument("--model-base", type=pathlib.Path, default=ROOT / "models" / "deeplab")
    parser.add_argument("--lite-base", type=pathlib.Path, default=ROOT / "models" / "deeplab-lite")
    parser.add_argument("--gateway", default="", help="a running gateway's address (with examples/multi-model.toml)")
    parser.add_argument("--levers", action="store_true", help="also the gateway's speed options (LEVERS)")
    parser.add_argument("--peers", action="store_true", help="also the bench's in-graph peers")
    parser.add_argument("--report", type=pathlib.Path, default=None, help="write the tables here (Markdown)")
    parser.add_argument("--outcomes", type=pathlib.Path, default=None, help="write every case's figures here (JSON)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    outcomes, region_outcomes = run(
        args.plan, args.model_base, args.lite_base, gateway=args.gateway, levers=args.levers, peers=args.peers
    )
    result = summary(outcomes)
    result["regions"] = regions.figures(region_outcomes)
    result["targets_met"] = result["targets_met"] and result["regions"]["targets_met"]
    print(TABLE_HEAD)
    for outcome in sorted((o for o in outcomes if o.subject in SHIPPED), key=_worst_first)[:10]:
        print(_row(outcome))
    if args.report:
        report(outcomes, result, args.report)
    if args.outcomes:
        args.outcomes.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    print(json.dumps(result), flush=True)
    return 0 if result["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
