"""One call of a route's model, shared by the pipeline and the shadow: the tensor to its backend, and its answer
read as the model's mask."""

from __future__ import annotations

import numpy as np

from service.backends import Prediction
from service.mask.classes import ModelMask, model_mask
from service.routing import Route


async def predict(route: Route, tensor: np.ndarray, timeout: float) -> Prediction:
    """The backend's answer for a [1, h, w, 3] tensor, with every output the route's model needs."""
    interface = route.model.interface
    return await route.backend.predict(route.spec, interface.input_key, tensor, interface.output_keys, timeout)


def read_answer(prediction: Prediction, route: Route, tensor: np.ndarray) -> ModelMask:
    """The answer as the model's mask at the tensor's size (CPU work: call it off the event loop)."""
    return model_mask(prediction, route.model.profile, route.model.interface, (tensor.shape[1], tensor.shape[2]))
