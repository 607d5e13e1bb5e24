"""Decode a member's upload into an RGB picture, or refuse it with :class:`FileRefused`.

Everything here treats the bytes as hostile: the format is sniffed from the bytes (the claimed
MIME type and file name are the member's choice and never consulted), only an allow-list of
formats reaches Pillow (and Pillow is told to try only that one plugin), and the declared pixel
count is checked before a single pixel is decoded.

The allow-list is what browsers show inline and Rocket.Chat previews as a picture: JPEG, PNG,
GIF, WEBP and BMP. GIF, WEBP and PNG may be animated; only the first frame is decoded, which is
the one a preview shows. TIFF (dozens of codecs, no browser shows it), SVG (a document, not
pixels), and HEIC/AVIF (large decoder libraries for formats Rocket.Chat does not preview
everywhere) are refused as ``not_image``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bot.errors import FileRefused

__all__ = ["DEFAULT_MAX_PIXELS", "FORMATS", "DecodedImage", "decode_image", "sniff_format"]

# Pillow refuses past 2 x Image.MAX_IMAGE_PIXELS (about 179 M) and only warns past it (about
# 89 M); our own cap must sit below Pillow's warning so that a picture Pillow warns about is
# always one we refuse (see ImageChecker). 64 M pixels holds a 50-megapixel phone photo; its
# RGB decode is 192 MB at most, and JPEGs decode far smaller (see ``draft`` below).
DEFAULT_MAX_PIXELS = 64_000_000

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")

# Neither hash nor model needs more: PDQ works on a 64 x 64 downsample (Meta's reference tools
# downscale to 512 first; hashing a 12-megapixel picture at full size holds the GIL for a
# second), and open_nsfw sees 224 x 224.
WORKING_SIZE = 512


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """The first frame, upright (EXIF orientation applied), RGB, at most WORKING_SIZE on its
    longer side; ``width`` and ``height`` are the picture's own, as a viewer shows it."""

    image: Image.Image
    width: int
    height: int
    format: str


def sniff_format(data: bytes) -> str | None:
    """The format the bytes start with, from the allow-list, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM" and len(data) >= 26:
        return "BMP"
    return None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode ``data`` or raise :class:`FileRefused` with reason too_large, not_image, bomb or
    corrupt. CPU-bound: call it from a worker thread."""
    if len(data) > max_bytes:
        raise FileRefused("too_large", f"{len(data)} bytes, cap {max_bytes}")
    kind = sniff_format(data)
    if kind is None:
        raise FileRefused("not_image")
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError as exc:
        raise FileRefused("bomb", "past the decoder's own pixel cap") from exc
    except Exception as exc:
        # Pillow's plugins raise many types on hostile headers (OSError, SyntaxError,
        # ValueError, struct.error, EOFError...); whatever the type, the file does not open.
        raise FileRefused("corrupt", "the header does not parse") from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise FileRefused("corrupt", "no pixels")
        if width * height > max_pixels:
            raise FileRefused("bomb", f"{width}x{height} declared, cap {max_pixels} pixels")
        return _decode(image, kind)


def _decode(image: Image.Image, kind: str) -> DecodedImage:
    width, height = image.size
    orientation = _orientation(image)
    if kind == "JPEG":
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding: a 4000 x 3000 photo is decoded at
        # 1000 x 750, not 12 M pixels. The reported size stays the picture's own.
        image.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
    try:
        image.load()
        frame = _to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise FileRefused("bomb", "past the decoder's own pixel cap") from exc
    except Exception as exc:
        raise FileRefused("corrupt", "the pixels do not decode") from exc
    frame.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR)
    turn = _TRANSPOSE.get(orientation)
    if turn is not None:
        frame = frame.transpose(turn)
        if orientation >= 5:  # a quarter turn: the viewer's width is the stored height
            width, height = height, width
    return DecodedImage(frame, width, height, kind)


# EXIF orientation -> the transpose that shows the picture upright (the table of the EXIF
# specification, as Pillow's ImageOps.exif_transpose uses it).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 when absent). A broken EXIF block leaves the picture as
    stored: its pixels decode, and a refusal would let anyone dodge the checks with bad EXIF."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB as a viewer sees it: a transparent picture is shown over a page, so it is laid over
    white rather than having its hidden colour channels revealed."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the top 8 bits; convert("RGB") would clip it all to white.
        levels = np.clip(np.asarray(image, dtype=np.int64), 0, 0xFFFF) >> 8
        return Image.fromarray(levels.astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")
