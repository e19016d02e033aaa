"""Small valid PNG and JPEG images built with the standard library, for the Rekognition lab and its tests.

Labs and tests must not download pictures, and Pillow is not a course dependency. The PNG writer is
complete (8-bit RGB). The JPEG writer is a minimal baseline encoder for greyscale images made of flat
8x8 blocks: a flat block has only a DC coefficient, so no DCT is needed and any JPEG decoder reads it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

Rgb = tuple[int, int, int]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, pixel: Callable[[int, int], Rgb] | None = None) -> bytes:
    """An 8-bit RGB PNG; `pixel(x, y)` gives each colour (default: a diagonal colour gradient)."""
    if width < 1 or height < 1:
        raise ValueError("an image needs at least one pixel")
    pixel = pixel or (lambda x, y: (x * 255 // width, y * 255 // height, 128))
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows, 9))
            + _png_chunk(b"IEND", b""))


# One Huffman table each: the standard luminance DC table (JPEG Annex K.3), and an AC table that only
# needs end-of-block, because every block of these images is flat.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))
_AC_BITS = (1,) + (0,) * 15
_AC_VALUES = (0x00,)
_QUANT = 8  # a flat block's DC coefficient is 8 x (level - 128), so this makes DC = level - 128 exactly


def _huffman_codes(bits: tuple[int, ...], values: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Symbol -> (code, length), assigned canonically as JPEG decoders rebuild them (Annex C)."""
    codes, code, index = {}, 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[index]] = (code, length)
            code += 1
            index += 1
        code <<= 1
    return codes


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def write(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> shift) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0x00)  # byte stuffing: 0xFF in entropy data must not look like a marker
                self.acc = self.n = 0

    def flush(self) -> bytes:
        if self.n:
            self.write((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1-bits
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def jpeg(width: int, height: int, shade: Callable[[int, int], int] | None = None) -> bytes:
    """A baseline greyscale JPEG; `shade(block_x, block_y)` gives each 8x8 block's level 0-255
    (default: a checkerboard of dark and light blocks)."""
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise ValueError("JPEG sides must be 1-65535 pixels")
    shade = shade or (lambda bx, by: 40 if (bx + by) % 2 else 215)
    dc, ac = _huffman_codes(_DC_BITS, _DC_VALUES), _huffman_codes(_AC_BITS, _AC_VALUES)
    bits, previous = _BitWriter(), 0
    for by in range((height + 7) // 8):
        for bx in range((width + 7) // 8):
            level = max(0, min(255, int(shade(bx, by)))) - 128
            diff, previous = level - previous, level
            size = abs(diff).bit_length()
            bits.write(*dc[size])
            if size:
                bits.write(diff if diff > 0 else diff + (1 << size) - 1, size)
            bits.write(*ac[0x00])
    jfif = b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0)
    tables = b"".join(
        bytes([table_class]) + bytes(counts) + bytes(values)
        for table_class, counts, values in ((0x00, _DC_BITS, _DC_VALUES), (0x10, _AC_BITS, _AC_VALUES))
    )
    return (
        b"\xff\xd8"
        + _segment(0xE0, jfif)
        + _segment(0xDB, b"\x00" + bytes([_QUANT] * 64))
        + _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + _segment(0xC4, tables)
        + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + bits.flush()
        + b"\xff\xd9"
    )


def sample(name: str, width: int = 128, height: int = 96) -> bytes:
    """The course's sample image for a file name: a JPEG for .jpg/.jpeg, a PNG for .png."""
    suffix = name.lower().rsplit(".", 1)[-1]
    if suffix in {"jpg", "jpeg"}:
        return jpeg(width, height)
    if suffix == "png":
        return png(width, height)
    raise ValueError(f"{name!r}: sample images are .png, .jpg or .jpeg")
