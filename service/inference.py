"""One call of a route's model, shared by the pipeline and the shadow: the tensor to its backend, and its answer
read as the model's mask."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from service.backends import Prediction
from service.mask.classes import ModelMask, model_mask
from service.routing import Route


async def predict(route: Route, tensor: np.ndarray, timeout: float, scores: bool) -> Prediction:
    """The backend's answer for a [1, h, w, 3] tensor: the class ids, and the scores behind them when they will
    decide pixels at another size (`scores`) and the model gives them apart."""
    interface = route.model.interface
    outputs = interface.output_keys if scores else interface.output_keys[:1]
    return await route.backend.predict(route.spec, interface.input_key, tensor, outputs, timeout)


def read_answer(prediction: Prediction, route: Route, tensor: np.ndarray, scores: bool) -> ModelMask:
    """The answer as the model's mask at the tensor's size, with the scores if they were asked for (CPU work: call
    it off the event loop)."""
    interface = route.model.interface if scores else replace(route.model.interface, scores_key="")
    return model_mask(prediction, route.model.profile, interface, (tensor.shape[1], tensor.shape[2]))
