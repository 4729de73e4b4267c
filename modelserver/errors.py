"""Errors answered to clients, worded as TF Serving words them so that clients see the same thing."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """An error with the gRPC status code TF Serving would answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found_latest(model: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({model})")


def not_found_specific(model: str, version: int) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({model}, {version})")


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)
