"""A KServe transformer in front of TF Serving's REST API: the benchmark's KServe peer.

Built as KServe's own image-transformer samples are (python/custom_transformer/model.py, docs/samples/v1beta1/
transformer): a `kserve.Model` whose `preprocess` turns the client's v1 request into the predictor's request,
whose `predict` is KServe's own (with --predictor_protocol v1 it POSTs the preprocessed dict, serialised with
orjson, to http://PREDICTOR_HOST/v1/models/MODEL_NAME:predict over a pooled httpx connection), and whose
`postprocess` turns the predictor's answer into the client's. Runs in bench/.venv-kserve (bench/kserve/setup.sh),
never in the project's .venv.

    bench/.venv-kserve/bin/python bench/kserve/transformer.py --model_name deeplab \
        --predictor_host 127.0.0.1:8501 --http_port 8080 [--labels FILE] [--input_size 513 | --fixed_size 257]

Every other flag is kserve.model_server's (--workers, --enable_latency_logging, ...), with one default changed:
KServe's gRPC server (v2 protocol only, port 8081 by default) is off unless --enable_grpc true.

In:  POST /v1/models/deeplab:predict  {"instances": [{"image_bytes": {"b64": "<base64 JPEG/PNG/...>"}}]}
     (TensorFlow's REST convention for binary values, as KServe's TF Serving samples send images.)
Out: {"predictions": [{"image": {"width", "height"},
                       "mask": {"width", "height", "values": [...], "counts": [...]},
                       "classes": [{"class_id", "label", "pixel_count", "fraction",
                                    "bounding_box": {"x", "y", "width", "height"}}, ...]}]}
     The mask is the model-size class-id mask (the tensor's size) as row-major run lengths, runs
     continuing across row ends (the gateway's RunLengths with MASK_SIZE_MODEL); the classes present, by
     descending pixel count, with counts, fractions and boxes in that mask's pixels (the gateway's ClassStat).

Preprocess: base64 decode, OpenCV's full decode (cv2.imdecode, EXIF orientation applied), BGR to RGB, resize so the
longest side is --input_size (aspect kept, bilinear; never enlarged; the gateway's rounding) or, with --fixed_size N,
to exactly N x N (aspect not kept, bilinear: the gateway's deeplab-257 profile), then TF Serving's row
format {"instances": [h x w x 3 nested lists of uint8]} for the signature serving_default (ImageTensor uint8
[1,h,w,3] -> SemanticPredictions int64 [1,h,w]). Postprocess: {"predictions": [h x w nested lists]} back to a
uint8 array, then runs and statistics with NumPy.

Handlers are plain (not async) methods, as in KServe's samples: KServe calls them on its event loop.

--numpy_json true: preprocess writes the predictor's JSON itself with orjson's NumPy support and hands KServe's
predict() the bytes (which it POSTs as they are), instead of nested lists. The wire bytes are the same; it saves
the ~445,000 Python ints and ~150,000 lists of a 513x289 tensor, whose garbage collection, in a process whose heap
holds everything `import kserve` loads (the Kubernetes client among it), costs about 100 ms a call.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import pathlib
from typing import Any

import cv2
import numpy as np
import orjson
from kserve import Model, ModelServer, logging, model_server
from kserve.errors import InvalidInput

# Where preprocess leaves the image's size for postprocess: KServe hands both the same per-request headers dict
# (its custom_transformer sample passes "request-type" the same way); only x-request-id, x-b3-traceid and
# authorization are ever forwarded to the predictor, so nothing here leaves the process.
_SIZE_KEY = "x-deeplab-image-size"


def longest_side_size(width: int, height: int, longest_side: int) -> tuple[int, int]:
    """(width, height) with the longest side at most `longest_side`, aspect ratio kept, never enlarged
    (service/image/resize.py's rule, so that the model sees the same tensor size as behind the gateway)."""
    longest = max(width, height)
    if longest <= longest_side:
        return width, height
    scale = longest_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def run_lengths(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts) of the row-major runs of a 2-D mask; runs continue across row ends."""
    flat = mask.ravel()
    starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
    counts = np.diff(np.append(starts, flat.size))
    return flat[starts], counts


def class_statistics(mask: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Every class present: pixel count, fraction and bounding box, by descending pixel count."""
    counts = np.bincount(mask.ravel(), minlength=256)
    total = mask.size
    present = np.flatnonzero(counts)
    stats = []
    for class_id in sorted(present, key=lambda c: (-counts[c], c)):
        ys, xs = np.nonzero(mask == class_id)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
        stats.append(
            {
                "class_id": int(class_id),
                "label": labels[class_id] if class_id < len(labels) else f"class_{class_id}",
                "pixel_count": int(counts[class_id]),
                "fraction": float(counts[class_id]) / total,
                "bounding_box": {"x": x0, "y": y0, "width": x1 - x0 + 1, "height": y1 - y0 + 1},
            }
        )
    return stats


class DeepLabTransformer(Model):
    """JPEG (or any OpenCV image) in, class-id mask runs and class statistics out; DeepLab at TF Serving between."""

    def __init__(
        self,
        name: str,
        input_size: int = 513,
        labels: list[str] | None = None,
        numpy_json: bool = False,
        fixed_size: int = 0,
    ) -> None:
        super().__init__(name)
        self.input_size = input_size
        self.fixed_size = fixed_size
        self.labels = labels or []
        self.numpy_json = numpy_json
        self.ready = True

    def preprocess(self, payload: dict, headers: dict[str, str] | None = None) -> dict | bytes:
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise InvalidInput('expected {"instances": [{"image_bytes": {"b64": "..."}}]}')
        instances = payload["instances"]
        if len(instances) != 1:
            # The servable's batch dimension is 1 and images differ in size: one image a request.
            raise InvalidInput(f"expected one instance, got {len(instances)}")
        try:
            data = base64.b64decode(instances[0]["image_bytes"]["b64"], validate=True)
        except (KeyError, TypeError) as exc:
            raise InvalidInput('expected {"image_bytes": {"b64": "..."}} in instances[0]') from exc
        except binascii.Error as exc:
            raise InvalidInput(f"image_bytes.b64 is not base64: {exc}") from exc
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InvalidInput("image_bytes is not an image OpenCV can decode")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        if self.fixed_size:
            target = (self.fixed_size, self.fixed_size)
        else:
            target = longest_side_size(width, height, self.input_size)
        if target != (width, height):
            rgb = cv2.resize(rgb, target, interpolation=cv2.INTER_LINEAR)
        if headers is not None:
            headers[_SIZE_KEY] = f"{width}x{height}"
        if self.numpy_json:
            # The same JSON, written by orjson straight from the array; KServe's predict() POSTs bytes as they are.
            return orjson.dumps({"instances": rgb[np.newaxis]}, option=orjson.OPT_SERIALIZE_NUMPY)
        # As KServe's samples do: nested lists, which KServe's predict() serialises with orjson.dumps(payload)
        # (no options, so it takes no arrays).
        return {"instances": [rgb.tolist()]}

    def postprocess(
        self, result: dict, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> dict:
        try:
            mask = np.asarray(result["predictions"][0], dtype=np.uint8)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise InvalidInput(f"unexpected predictor answer: {str(result)[:200]}") from exc
        if mask.ndim != 2:
            raise InvalidInput(f"unexpected predictor answer: a mask of shape {mask.shape}")
        values, counts = run_lengths(mask)
        width, height = (int(v) for v in (headers or {}).get(_SIZE_KEY, "0x0").split("x"))
        answer = {
            "image": {"width": width, "height": height},
            "mask": {
                "width": int(mask.shape[1]),
                "height": int(mask.shape[0]),
                "values": values.tolist(),
                "counts": counts.tolist(),
            },
            "classes": class_statistics(mask, self.labels),
        }
        return {"predictions": [answer]}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--input_size", type=int, default=513, help="longest side of the tensor sent to the model")
    parser.add_argument("--fixed_size", type=int, default=0, help="N: exactly N x N instead (aspect not kept)")
    parser.add_argument("--labels", type=pathlib.Path, default=None, help="class names, one a line, class 0 first")
    parser.add_argument(
        "--numpy_json",
        type=lambda x: x.lower() in ("1", "true", "yes", "on"),
        default=False,
        help="true: write the predictor's JSON from the array (orjson OPT_SERIALIZE_NUMPY) instead of nested lists",
    )
    parser.set_defaults(enable_grpc=False)
    args, _ = parser.parse_known_args()
    if args.predictor_host is None:
        parser.error("--predictor_host HOST:PORT (TF Serving's REST port) is required")
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    labels = args.labels.read_text().splitlines() if args.labels else None
    model = DeepLabTransformer(args.model_name, args.input_size, labels, args.numpy_json, args.fixed_size)
    ModelServer(enable_grpc=args.enable_grpc, grpc_port=args.grpc_port).start([model])


if __name__ == "__main__":
    main()
