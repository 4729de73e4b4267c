"""The official tensorflow-serving-api client the TF-Serving-fidelity tests drive modelserver with."""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

MAX_MESSAGE = 64 * 1024 * 1024


class Client:
    """The official stubs over one channel."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def predict(
        self,
        image: np.ndarray,
        model: str = "deeplab",
        version: int | None = None,
        label: str | None = None,
        key: str = "ImageTensor",
        **spec: str,
    ) -> predict_pb2.PredictResponse:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        for field, value in spec.items():
            setattr(request.model_spec, field, value)
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
        request.inputs[key].CopyFrom(tf.make_tensor_proto(image[np.newaxis] if image.ndim == 3 else image))
        return self.predictions.Predict(request, timeout=60)

    def status(self, model: str = "deeplab") -> dict[int, get_model_status_pb2.ModelVersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        response = self.models.GetModelStatus(request, timeout=10)
        return {s.version: s for s in response.model_version_status}
