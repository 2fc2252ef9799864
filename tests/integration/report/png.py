"""A tiny PNG decoder (zlib + struct + numpy, no image library): enough to tell a rendered page from
a blank one. 8-bit greyscale, RGB, grey+alpha and RGBA, non-interlaced: what Chromium writes."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["Image", "read_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    pixels: NDArray[np.uint8]  # (height, width, channels)

    def distinct_colours(self) -> int:
        flat = self.pixels.reshape(-1, self.pixels.shape[2]).astype(np.uint32)
        packed = np.zeros(flat.shape[0], dtype=np.uint32)
        for c in range(min(flat.shape[1], 3)):
            packed |= flat[:, c] << (8 * c)
        return int(np.unique(packed).size)


def _paeth_row(line: bytearray, prev: bytes, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        line[i] = (line[i] + pred) & 0xFF


def _avg_row(line: bytearray, prev: bytes, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        line[i] = (line[i] + ((a + prev[i]) >> 1)) & 0xFF


def read_png(path: Path) -> Image:
    """Decode ``path``; raises ValueError on anything but a plain 8-bit non-interlaced PNG."""
    data = path.read_bytes()
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = _CHANNELS[colour]
    stride = width * bpp
    raw = zlib.decompress(bytes(idat))
    if len(raw) != height * (stride + 1):
        raise ValueError("truncated image data")
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1)
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel, modulo 256
            row = (
                (np.cumsum(line.reshape(width, bpp).astype(np.uint32), axis=0) & 0xFF)
                .astype(np.uint8)
                .ravel()
            )
        elif kind == 2:  # Up
            row = line + prev
        elif kind in (3, 4):  # Average, Paeth: sequential, done byte by byte
            buf = bytearray(line.tobytes())
            (_avg_row if kind == 3 else _paeth_row)(buf, prev.tobytes(), bpp)
            row = np.frombuffer(bytes(buf), dtype=np.uint8)
        else:
            raise ValueError(f"unknown filter type {kind} on row {y}")
        out[y] = row
        prev = out[y]
    return Image(width, height, out.reshape(height, width, bpp))
