"""The items of an ISO base media image file (HEIF, AVIF) as its `meta` box describes them: type, coded size
(`ispe`) and where their data lies (`iloc`), read without a decoder (ISO/IEC 14496-12 §8.11, 23008-12 §9).

Only what the size checks need is read; anything this reader cannot follow is BoxError, which the probe refuses:
a file the gateway cannot check is a file it does not decode.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_BOXES = 10_000
MAX_ITEMS = 1_000  # libheif's own default limit


class BoxError(Exception):
    """A `meta` box this reader cannot follow; the message says where."""


def boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes between start and end; stops at one that runs past end."""
    for _ in range(MAX_BOXES):
        if start + 8 > end:
            return
        size, kind, header = int.from_bytes(data[start : start + 4], "big"), data[start + 4 : start + 8], 8
        if size == 1 and start + 16 <= end:
            size, header = int.from_bytes(data[start + 8 : start + 16], "big"), 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        start += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for found, begin, finish in boxes(data, start, end):
        if found == kind:
            return begin, finish
    return None


def _uint(data: bytes, position: int, size: int, end: int) -> tuple[int, int]:
    if position + size > end:
        raise BoxError("a box is truncated")
    return int.from_bytes(data[position : position + size], "big"), position + size


@dataclass
class Item:
    id: int
    type: bytes = b""  # b"av01", b"hvc1", b"grid", b"Exif", ...
    extents: list[tuple[int, int]] = field(default_factory=list)  # (start, length) in the file
    sizes: list[tuple[int, int]] = field(default_factory=list)  # its `ispe` properties, (width, height)


def _item_types(data: bytes, start: int, end: int, items: dict[int, Item]) -> None:
    version = data[start] if start < end else 0
    count, position = _uint(data, start + 4, 2 if version == 0 else 4, end)
    if count > MAX_ITEMS:
        raise BoxError(f"iinf lists {count} items")
    for kind, begin, finish in boxes(data, position, end):
        if kind != b"infe" or begin >= finish or data[begin] < 2:  # versions 0 and 1 carry no item type
            continue
        item_id, after = _uint(data, begin + 4, 2 if data[begin] == 2 else 4, finish)
        items.setdefault(item_id, Item(item_id)).type = data[after + 2 : after + 6]


def _locations(data: bytes, start: int, end: int, items: dict[int, Item]) -> None:
    if start + 8 > end:
        raise BoxError("iloc is truncated")
    version = data[start]
    sizes = _uint(data, start + 4, 2, end)[0]
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    count, position = _uint(data, start + 6, 2 if version < 2 else 4, end)
    if count > MAX_ITEMS:
        raise BoxError(f"iloc locates {count} items")
    idat = None
    for _ in range(count):
        item_id, position = _uint(data, position, 2 if version < 2 else 4, end)
        method = 0
        if version in (1, 2):
            method, position = _uint(data, position, 2, end)
            method &= 15
        reference, position = _uint(data, position, 2, end)
        base, position = _uint(data, position, base_size, end)
        extents, position = _uint(data, position, 2, end)
        item = items.setdefault(item_id, Item(item_id))
        for _ in range(extents):
            position += index_size
            offset, position = _uint(data, position, offset_size, end)
            length, position = _uint(data, position, length_size, end)
            if reference != 0 or method not in (0, 1):
                raise BoxError(f"item {item_id}'s data is in another file or item")
            origin = 0
            if method == 1:
                idat = idat or _idat(data)
                origin = idat
            item.extents.append((origin + base + offset, length))


def _idat(data: bytes) -> int:
    for kind, start, end in boxes(data, 0, len(data)):
        if kind == b"meta":
            found = _child(data, start + 4, end, b"idat")
            if found:
                return found[0]
    raise BoxError("an item lies in an idat box the file does not have")


def _properties(data: bytes, start: int, end: int, items: dict[int, Item]) -> None:
    """Each item's `ispe` properties, through the associations (ipma) of the property container (ipco)."""
    container = _child(data, start, end, b"ipco")
    if container is None:
        return
    sizes: dict[int, tuple[int, int]] = {}  # 1-based property index -> ispe
    for index, (kind, begin, finish) in enumerate(boxes(data, *container), start=1):
        if kind == b"ispe" and finish - begin >= 12:
            sizes[index] = (_uint(data, begin + 4, 4, finish)[0], _uint(data, begin + 8, 4, finish)[0])
    for kind, begin, finish in boxes(data, start, end):
        if kind != b"ipma":
            continue
        version, flags = data[begin], int.from_bytes(data[begin + 1 : begin + 4], "big")
        count, position = _uint(data, begin + 4, 4, finish)
        for _ in range(min(count, MAX_ITEMS)):
            item_id, position = _uint(data, position, 2 if version < 1 else 4, finish)
            associations, position = _uint(data, position, 1, finish)
            for _ in range(associations):
                entry, position = _uint(data, position, 2 if flags & 1 else 1, finish)
                index = entry & (0x7FFF if flags & 1 else 0x7F)
                if index in sizes:
                    items.setdefault(item_id, Item(item_id)).sizes.append(sizes[index])


def read_items(data: bytes) -> list[Item]:
    """The items the file's top-level `meta` box describes; BoxError where it cannot be followed."""
    for kind, start, end in boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        items: dict[int, Item] = {}
        # meta is a full box: version and flags first
        for inner, begin, finish in boxes(data, start + 4, end):
            if inner == b"iinf":
                _item_types(data, begin, finish, items)
            elif inner == b"iloc":
                _locations(data, begin, finish, items)
            elif inner == b"iprp":
                _properties(data, begin, finish, items)
        return list(items.values())
    return []


def coded_sizes(data: bytes) -> list[tuple[int, int]]:
    """(width, height) of every `ispe` property the file carries: what decoding its items allocates, which the
    cropped size libheif reports may hide."""
    sizes = []
    for kind, start, end in boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        iprp = _child(data, start + 4, end, b"iprp")
        container = _child(data, *iprp, b"ipco") if iprp else None
        for prop, begin, finish in boxes(data, *container) if container else ():
            if prop == b"ispe" and finish - begin >= 12:
                sizes.append((_uint(data, begin + 4, 4, finish)[0], _uint(data, begin + 8, 4, finish)[0]))
    return sizes
