"""The generated test images are real PNG and JPEG files, checked structurally and by an independent decoder."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from lab_scripts import sample_images


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        assert struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def test_png_has_valid_chunks_and_pixels() -> None:
    data = sample_images.png(5, 3, lambda x, y: (x, y, 7))
    chunks = png_chunks(data)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBB", chunks[0][1][:10]) == (5, 3, 8, 2)
    rows = zlib.decompress(chunks[1][1])
    assert len(rows) == 3 * (1 + 5 * 3)
    assert rows[1 + 16:1 + 16 + 6] == bytes([0, 1, 7, 1, 1, 7])  # second row: filter byte, then RGB triples


def test_jpeg_markers_and_frame_header() -> None:
    data = sample_images.jpeg(37, 21)
    assert data[:4] == b"\xff\xd8\xff\xe0" and data[-2:] == b"\xff\xd9"
    sof = data.index(b"\xff\xc0")
    assert struct.unpack(">BHHB", data[sof + 4:sof + 10]) == (8, 21, 37, 1)
    scan = data[data.index(b"\xff\xda") + 10:-2]
    # Entropy-coded data: every 0xFF is stuffed with 0x00, so no marker appears before EOI.
    assert all(scan[i + 1] == 0 for i in range(len(scan) - 1) if scan[i] == 0xFF)


@pytest.mark.skipif(shutil.which("gdk-pixbuf-thumbnailer") is None, reason="needs a JPEG decoder on the machine")
@pytest.mark.parametrize("name", ["a.jpg", "a.png"])
def test_an_independent_decoder_reads_them(tmp_path: Path, name: str) -> None:
    image = tmp_path / name
    image.write_bytes(sample_images.jpeg(40, 24, lambda bx, by: bx * 50 + by * 90) if name.endswith("jpg")
                      else sample_images.png(40, 24))
    result = subprocess.run(["gdk-pixbuf-thumbnailer", "-s", "32", str(image), str(tmp_path / "out.png")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert png_chunks((tmp_path / "out.png").read_bytes())[0][0] == b"IHDR"


def test_bad_sizes_and_names_are_refused() -> None:
    with pytest.raises(ValueError):
        sample_images.png(0, 1)
    with pytest.raises(ValueError):
        sample_images.jpeg(70000, 1)
    with pytest.raises(ValueError, match="sample images are"):
        sample_images.sample("a.gif")
