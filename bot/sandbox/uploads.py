"""Uploaded files as the server keeps and checks them: pure helpers, no I/O.

Sources (``RocketChat/Rocket.Chat``): ``apps/meteor/app/file-upload/server/lib/FileUpload.ts``
(validateFileUpload, requestCanAccessFiles, getPath), ``apps/meteor/app/utils/lib/restrictions.ts``
(the media-type white and black lists), ``apps/meteor/app/api/server/lib/getUploadFormData.ts``
(the declared type, else one looked up from the file name) and
``apps/meteor/app/file-upload/server/config/GridFS.ts`` (the default store's answer headers).

The server measures an image with sharp (``identify``: format and size); here the header of a
PNG, GIF or JPEG is read for its size, which is all the message's ``image_dimensions`` needs.
"""

from __future__ import annotations

import mimetypes
import struct
from urllib.parse import quote

__all__ = [
    "FILE_UPLOAD_PREFIX",
    "content_disposition",
    "encode_uri",
    "image_size",
    "is_valid_content_type",
    "mime_type",
]

FILE_UPLOAD_PREFIX = "/file-upload/"  # FileUpload.getPath()

# What JavaScript's encodeURI leaves alone besides letters and digits (the file URL's name part).
_ENCODE_URI_SAFE = ";,/?:@&=+$-_.!~*'()#"
# encodeURIComponent's (Content-Disposition's filename*).
_ENCODE_URI_COMPONENT_SAFE = "-_.!~*'()"


def encode_uri(text: str) -> str:
    return quote(text, safe=_ENCODE_URI_SAFE)


def content_disposition(name: str) -> str:
    """GridFS:Uploads' ``inline; filename*=UTF-8''<encodeURIComponent(name)>``."""
    return f"inline; filename*=UTF-8''{quote(name, safe=_ENCODE_URI_COMPONENT_SAFE)}"


def mime_type(declared: str | None, filename: str) -> str:
    """The upload's type: the part's own, unless it is missing or the generic octet-stream, then
    the one its name suggests (mime-type's table; ``.lst`` is text/plain there)."""
    if declared and declared != "application/octet-stream":
        return declared
    if filename.lower().endswith(".lst"):
        return "text/plain"
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def _media_list(setting: object, *, star_is_all: bool) -> list[str] | None:
    if not isinstance(setting, str) or not setting or (star_is_all and setting == "*"):
        return None
    return [item.strip() for item in setting.split(",")]


def _on_list(kind: str, items: list[str]) -> bool:
    if kind in items:
        return True
    # A listed "image/*" covers every image type.
    wildcard = kind.split("/", 1)[0] + "/*" if "/" in kind else kind
    return wildcard in [i for i in items if i.find("/*") > 0]


def is_valid_content_type(kind: str, white_list: object, black_list: object) -> bool:
    """fileUploadIsValidContentTypeFromSettings: black list first (``type/*`` wildcards), then an
    empty (or ``*``) white list lets everything else through."""
    black = _media_list(black_list, star_is_all=False)
    white = _media_list(white_list, star_is_all=True)
    if not kind and black:
        return False
    if black and _on_list(kind, black):
        return False
    if white is None:
        return True
    return _on_list(kind, white)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or JPEG header; None for anything else or a broken one."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


# JPEG start-of-frame markers (baseline, progressive, ...), not DHT/JPG/DAC.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        if length < 2:
            return None
        i += 2 + length
    return None
