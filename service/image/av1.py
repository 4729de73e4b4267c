"""The frame size an AV1 bitstream's sequence headers allow: what an AVIF image decodes to, whatever its container
says.

libavif decodes the whole AV1 frame and then scales it to the container's `ispe` size, so a file that claims
100 x 100 over a 16384 x 16384 frame costs the larger one's memory (AV1 spec §5.5, sequence_header_obu; the
decoder reads the sequence header in the item's data, not the copy in the `av1C` property). A sequence header with
`reduced_still_picture_header` fixes every frame at its maximum size; without it a frame header may give any size
up to 2^bits a side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

_SEQUENCE_HEADER = 1  # OBU type


class Av1Error(Exception):
    """Data that is not an AV1 bitstream as the gateway reads it."""


class _Bits:
    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.position, self.end = data, start * 8, end * 8

    def read(self, count: int) -> int:
        if self.position + count > self.end:
            raise Av1Error("the sequence header is truncated")
        value = 0
        for _ in range(count):
            byte = self.data[self.position >> 3]
            value = (value << 1) | ((byte >> (7 - (self.position & 7))) & 1)
            self.position += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.read(zeros) + (1 << zeros) - 1


def _leb128(data: bytes, position: int, end: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if position + i >= end:
            raise Av1Error("an OBU size is truncated")
        byte = data[position + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, position + i + 1
    raise Av1Error("an OBU size is longer than 8 bytes")


def _obus(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each OBU between start and end."""
    position = start
    while position < end:
        header = data[position]
        if header & 0x80:
            raise Av1Error("an OBU header's forbidden bit is set")
        kind, extension, has_size = (header >> 3) & 15, (header >> 2) & 1, (header >> 1) & 1
        payload = position + 1 + extension
        if has_size:
            size, payload = _leb128(data, payload, end)
        else:
            size = end - payload
        if payload + size > end:
            raise Av1Error("an OBU runs past its item's data")
        yield kind, payload, payload + size
        position = payload + size


@dataclass(frozen=True)
class SequenceHeader:
    max_width: int
    max_height: int
    width_bits: int
    height_bits: int
    reduced_still_picture: bool

    @property
    def largest_frame(self) -> int:
        """The most pixels a frame under this header may have."""
        if self.reduced_still_picture:
            return self.max_width * self.max_height
        return (1 << self.width_bits) * (1 << self.height_bits)


def _sequence_header(data: bytes, start: int, end: int) -> SequenceHeader:
    bits = _Bits(data, start, end)
    bits.read(3)  # seq_profile
    bits.read(1)  # still_picture
    reduced = bool(bits.read(1))
    if reduced:
        bits.read(5)  # seq_level_idx[0]
    else:
        decoder_model_info, buffer_delay_bits = False, 0
        if bits.read(1):  # timing_info_present_flag
            bits.read(32)
            bits.read(32)
            if bits.read(1):  # equal_picture_interval
                bits.uvlc()
            decoder_model_info = bool(bits.read(1))
            if decoder_model_info:
                buffer_delay_bits = bits.read(5) + 1
                bits.read(32)
                bits.read(5)
                bits.read(5)
        initial_display_delay = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            bits.read(12)
            if bits.read(5) > 7:  # seq_level_idx
                bits.read(1)
            if decoder_model_info and bits.read(1):
                bits.read(buffer_delay_bits)
                bits.read(buffer_delay_bits)
                bits.read(1)
            if initial_display_delay and bits.read(1):
                bits.read(4)
    width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
    return SequenceHeader(bits.read(width_bits) + 1, bits.read(height_bits) + 1, width_bits, height_bits, reduced)


def sequence_headers(data: bytes, start: int, end: int) -> list[SequenceHeader]:
    """The sequence headers of the AV1 bitstream between start and end; Av1Error when it is not one."""
    obus = _obus(data, start, end)
    return [_sequence_header(data, begin, finish) for kind, begin, finish in obus if kind == _SEQUENCE_HEADER]
