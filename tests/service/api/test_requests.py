"""api/requests.py reads what protobuf reads: the image as a view, every other field as protobuf parses it."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.v1 import segmentation_service_pb2 as pb
from service.api.requests import ImageRequest, StreamItem, read_segment_request, read_stream_item

selectors = st.builds(
    pb.ModelSelector,
    name=st.text(max_size=8),
    version=st.integers(0, 2**40),
    signature_name=st.text(max_size=4),
    variant=st.text(max_size=4),
)
requests = st.builds(
    pb.SegmentImageRequest,
    image=st.binary(max_size=300),
    model=st.none() | selectors,
    mask_format=st.integers(0, 5),
    mask_size=st.integers(0, 4),
    include_overlay=st.booleans(),
)


def _expected(data: bytes) -> tuple[bytes, pb.SegmentImageRequest]:
    whole = pb.SegmentImageRequest.FromString(data)
    image = whole.image
    whole.ClearField("image")
    return image, whole


def _same(found: ImageRequest, data: bytes) -> None:
    image, fields = _expected(data)
    assert isinstance(found.image, memoryview) and found.image.readonly
    assert bytes(found.image) == image
    assert found.fields == fields
    assert found.model == fields.model


@settings(max_examples=300, deadline=None)
@given(st.lists(requests, min_size=1, max_size=3), st.binary(max_size=20))
def test_a_request_reads_as_protobuf_reads_it(parts: list[pb.SegmentImageRequest], unknown: bytes) -> None:
    # Several serialised messages in a row are one message to protobuf: fields repeated, the last image counts.
    data = b"".join(part.SerializeToString() for part in parts)
    _same(read_segment_request(data), data)
    # An unknown field (number 15, length-delimited) is kept, as protobuf keeps it.
    with_unknown = data + b"\x7a" + bytes([len(unknown)]) + unknown
    _same(read_segment_request(with_unknown), with_unknown)


@settings(max_examples=300, deadline=None)
@given(requests, st.text(max_size=10), st.booleans())
def test_a_stream_item_reads_as_protobuf_reads_it(request: pb.SegmentImageRequest, item_id: str, twice: bool) -> None:
    item = pb.SegmentImageStreamRequest(request=request, id=item_id)
    data = item.SerializeToString()
    if twice:  # the request in two pieces, which protobuf merges
        data += pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(mask_size=1)).SerializeToString()
    found = read_stream_item(data)
    whole = pb.SegmentImageStreamRequest.FromString(data)
    assert isinstance(found, StreamItem) and found.id == whole.id
    _same(found.request, whole.request.SerializeToString())


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_any_bytes_read_as_protobuf_reads_them_or_fail_as_it_fails(data: bytes) -> None:
    try:
        expected = _expected(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            read_segment_request(data)
        return
    found = read_segment_request(data)
    assert (bytes(found.image), found.fields) == expected


def test_the_image_is_not_copied() -> None:
    image = bytes(range(256)) * 4096
    data = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE).SerializeToString()
    found = read_segment_request(data)
    assert found.image.obj is not None and len(found.image.obj) == len(data)  # a view of the received bytes
    assert bytes(found.image) == image and found.fields.mask_format == pb.MASK_FORMAT_RLE
