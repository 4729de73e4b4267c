"""KServe's own model server (kserve 0.21, bench/.venv-kserve) serving a stand-in segmentation model over the Open
Inference Protocol's gRPC API, for tests/gateway/test_kserve_v2.py: a second real server for the kserve-v2 backend,
another implementation of the protocol than Triton's, which names no model versions.

    bench/.venv-kserve/bin/python tests/kserve_side/predictor.py --grpc_port PORT --http_port PORT

The model, "deeplab", takes what the deeplab-257 profile sends (`image`, FP32 [1, h, w, 3], RGB pixel values) and
answers class 15 where the red channel is above 127 and 0 elsewhere (`SemanticPredictions`, INT64 [1, h, w]),
with one-hot `scores` (FP32 [1, h, w, 21]).
"""

from __future__ import annotations

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server

CLASSES = 21
PERSON = 15


class RedIsPerson(Model):
    def __init__(self) -> None:
        super().__init__("deeplab")
        self.ready = True

    def get_input_types(self) -> list[dict]:
        return [{"name": "image", "datatype": "FP32", "shape": [1, -1, -1, 3]}]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": "SemanticPredictions", "datatype": "INT64", "shape": [1, -1, -1]},
            {"name": "scores", "datatype": "FP32", "shape": [1, -1, -1, CLASSES]},
        ]

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        image = payload.inputs[0].as_numpy()
        ids = np.where(image[..., 0] > 127, PERSON, 0).astype(np.int64)
        scores = np.eye(CLASSES, dtype=np.float32)[ids]
        outputs = [
            InferOutput("SemanticPredictions", list(ids.shape), "INT64", ids),
            InferOutput("scores", list(scores.shape), "FP32", scores),
        ]
        return InferResponse(payload.id or "", self.name, outputs)


if __name__ == "__main__":
    args = model_server.parser.parse_args()
    ModelServer(grpc_port=args.grpc_port, http_port=args.http_port, enable_grpc=True).start([RedIsPerson()])
