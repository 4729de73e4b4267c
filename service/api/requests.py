"""The segmenting calls' requests, read with their image left where gRPC received it.

protobuf's parser copies a bytes field into the message, and each Python read of `request.image` copies it again:
every image would be held twice for the whole call (a 4K JPEG: 2.3 MB a copy), plus once more for each read.
Here the image is a view of the bytes gRPC received, and every other field is parsed by protobuf as usual, from
the same message with the image field left out. Anything unusual (a wire type protobuf would not expect, a
truncated field, a stream item whose request comes in pieces) goes to protobuf's parser whole, so what is accepted
and refused is protobuf's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

_LENGTH_DELIMITED = 2
_IMAGE_FIELD = pb.SegmentImageRequest.DESCRIPTOR.fields_by_name["image"].number
_REQUEST_FIELD = pb.SegmentImageStreamRequest.DESCRIPTOR.fields_by_name["request"].number


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """A SegmentImageRequest: its image, a read-only view of the received bytes, and its other fields."""

    image: memoryview
    fields: pb.SegmentImageRequest  # every field but the image

    @property
    def model(self) -> pb.ModelSelector:
        return self.fields.model


@dataclass(frozen=True, slots=True)
class StreamItem:
    """A SegmentImageStreamRequest: its request, read as ImageRequest, and its id."""

    request: ImageRequest
    id: str


class _Unusual(Exception):
    """The message is not one this reader takes apart; protobuf's parser reads it whole."""


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        if position >= len(data):
            raise _Unusual
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return value, position
        shift += 7
    raise _Unusual


def _split(data: memoryview, field_number: int) -> tuple[list[memoryview], bytes]:
    """The payloads of every length-delimited occurrence of `field_number`, and the message without them."""
    found: list[memoryview] = []
    rest: list[memoryview] = []
    position = 0
    while position < len(data):
        start = position
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(data, position)
            if number == field_number:
                if position + length > len(data):
                    raise _Unusual
                found.append(data[position : position + length])
                position += length
                continue
            position += length
        elif wire_type == 5:
            position += 4
        else:  # groups, or not protobuf at all
            raise _Unusual
        if position > len(data) or number == field_number:
            raise _Unusual
        rest.append(data[start:position])
    return found, b"".join(rest)


def _image_request(data: memoryview) -> ImageRequest:
    images, rest = _split(data, _IMAGE_FIELD)
    # A singular field sent more than once: the last one counts, as protobuf reads it.
    return ImageRequest(images[-1] if images else memoryview(b""), pb.SegmentImageRequest.FromString(rest))


def read_segment_request(data: bytes) -> ImageRequest:
    """SegmentImage's request deserializer."""
    try:
        return _image_request(memoryview(data).toreadonly())
    except _Unusual:
        whole = pb.SegmentImageRequest.FromString(data)
        image = memoryview(whole.image)
        whole.ClearField("image")
        return ImageRequest(image, whole)


def read_stream_item(data: bytes) -> StreamItem:
    """SegmentImageStream's request deserializer."""
    try:
        requests, rest = _split(memoryview(data).toreadonly(), _REQUEST_FIELD)
        if len(requests) > 1:  # protobuf merges the pieces of a message field: leave that to it
            raise _Unusual
        item = pb.SegmentImageStreamRequest.FromString(rest)
        request = _image_request(requests[0]) if requests else ImageRequest(memoryview(b""), pb.SegmentImageRequest())
        return StreamItem(request, item.id)
    except _Unusual:
        whole = pb.SegmentImageStreamRequest.FromString(data)
        image = memoryview(whole.request.image)
        whole.request.ClearField("image")
        return StreamItem(ImageRequest(image, whole.request), whole.id)


def add_to_server(servicer: pb_grpc.SegmentationServiceServicer, server: grpc.aio.Server) -> None:
    """The generated registration, with these readers for the two calls that carry images."""
    handlers = {
        "SegmentImage": grpc.unary_unary_rpc_method_handler(
            servicer.SegmentImage,
            request_deserializer=read_segment_request,
            response_serializer=pb.SegmentImageResponse.SerializeToString,
        ),
        "SegmentImageStream": grpc.stream_stream_rpc_method_handler(
            servicer.SegmentImageStream,
            request_deserializer=read_stream_item,
            response_serializer=pb.SegmentImageStreamResponse.SerializeToString,
        ),
        "ListModels": grpc.unary_unary_rpc_method_handler(
            servicer.ListModels,
            request_deserializer=pb.ListModelsRequest.FromString,
            response_serializer=pb.ListModelsResponse.SerializeToString,
        ),
    }
    service = pb.DESCRIPTOR.services_by_name["SegmentationService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
