"""Safe decoding: the format from the bytes, an allow-list, the pixel cap before decoding, and a
refusal reason for every file that does not become a picture."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.errors import FILE_REFUSALS, FileRefused
from bot.vision.decode import DEFAULT_MAX_PIXELS, WORKING_SIZE, decode_image, sniff_format
from tests.vision.images import encode, gradient, png_declaring, shapes

CAP = 20_000_000


def refusal(data: bytes, **kw: int) -> str:
    with pytest.raises(FileRefused) as caught:
        decode_image(data, max_bytes=kw.pop("max_bytes", CAP), **kw)
    assert caught.value.reason in FILE_REFUSALS
    return caught.value.reason


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("JPEG", {"quality": 90}), ("PNG", {}), ("GIF", {}), ("WEBP", {"quality": 80}), ("BMP", {})],
)
def test_each_allowed_format_decodes_to_rgb(fmt: str, options: dict[str, object]) -> None:
    data = encode(shapes(300, 200, seed=4), fmt, **options)
    assert sniff_format(data) == fmt
    decoded = decode_image(data, max_bytes=CAP)
    assert (decoded.format, decoded.width, decoded.height) == (fmt, 300, 200)
    assert decoded.image.mode == "RGB" and decoded.image.size == (300, 200)


def test_an_animated_gif_gives_its_first_frame() -> None:
    red, blue = Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 255))
    buf = io.BytesIO()
    red.save(buf, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    first = decode_image(buf.getvalue(), max_bytes=CAP).image
    r, _g, b = first.getpixel((20, 15))  # type: ignore[misc]
    assert r > 200 and b < 50


def test_a_large_picture_is_worked_on_small_but_reports_its_own_size() -> None:
    for fmt in ("JPEG", "PNG"):
        decoded = decode_image(encode(gradient(2400, 1600), fmt), max_bytes=CAP)
        assert (decoded.width, decoded.height) == (2400, 1600)
        assert max(decoded.image.size) <= WORKING_SIZE


def test_exif_orientation_turns_the_picture_upright() -> None:
    wide = shapes(400, 100, seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the viewer turns it 90 degrees clockwise
    data = encode(wide, "JPEG", exif=exif.tobytes())
    decoded = decode_image(data, max_bytes=CAP)
    assert (decoded.width, decoded.height) == (100, 400)
    assert decoded.image.size == (100, 400)
    upright = np.asarray(wide.transpose(Image.Transpose.ROTATE_270), dtype=np.int16)
    assert np.abs(np.asarray(decoded.image, dtype=np.int16) - upright).mean() < 8


def test_transparency_is_shown_over_white() -> None:
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # black, but fully transparent
    pixel = decode_image(encode(clear, "PNG"), max_bytes=CAP).image.getpixel((5, 5))
    assert pixel == (255, 255, 255)


def test_sixteen_bit_greyscale_keeps_its_levels() -> None:
    levels = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    decoded = decode_image(encode(Image.fromarray(levels), "PNG"), max_bytes=CAP).image
    grey = np.asarray(decoded)[:, :, 0]
    assert grey.min() == 0 and grey.max() == 255 and len(np.unique(grey)) > 200


def test_a_bomb_declaring_ten_billion_pixels_is_refused_unread() -> None:
    data = png_declaring(100_000, 100_000)
    assert len(data) < 300
    assert refusal(data) == "bomb"  # past Pillow's own hard cap


def test_a_picture_past_our_cap_is_a_bomb_before_any_pixel_decodes() -> None:
    # Between Pillow's warning (about 89 M pixels) and its hard cap: Pillow only warns, we refuse.
    with pytest.warns(Image.DecompressionBombWarning):
        assert refusal(png_declaring(10_000, 10_000)) == "bomb"
    assert refusal(encode(gradient(300, 200), "PNG"), max_pixels=300 * 200 - 1) == "bomb"
    decode_image(encode(gradient(300, 200), "PNG"), max_bytes=CAP, max_pixels=300 * 200)
    assert (Image.MAX_IMAGE_PIXELS or 0) > DEFAULT_MAX_PIXELS


def test_truncated_and_damaged_pictures_are_corrupt() -> None:
    jpeg = encode(shapes(640, 480), "JPEG", quality=90)
    assert refusal(jpeg[: len(jpeg) // 2]) == "corrupt"
    png = encode(shapes(640, 480), "PNG")
    assert refusal(png[: len(png) // 2]) == "corrupt"
    assert refusal(b"\x89PNG\r\n\x1a\n" + b"\0" * 40) == "corrupt"
    assert refusal(b"GIF89a" + b"\xff" * 20) == "corrupt"


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        b"this is a text file named cat.png\n",
        b"",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7\n",
    ],
    ids=["random", "text", "empty", "svg", "pdf"],
)
def test_what_is_not_an_allowed_picture_is_not_image(data: bytes) -> None:
    assert refusal(data) == "not_image"


def test_formats_outside_the_allow_list_are_not_image() -> None:
    assert refusal(encode(shapes(50, 50), "TIFF")) == "not_image"
    assert refusal(encode(shapes(50, 50), "ICO")) == "not_image"


def test_a_file_past_the_byte_cap_is_too_large() -> None:
    data = encode(shapes(100, 100), "PNG")
    assert refusal(data, max_bytes=len(data) - 1) == "too_large"


def test_a_refusal_never_carries_the_bytes() -> None:
    secret = b"this is a text file named cat.png\n"
    with pytest.raises(FileRefused) as caught:
        decode_image(secret, max_bytes=CAP)
    assert "cat.png" not in str(caught.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP"])
def test_damaged_files_end_in_a_picture_or_a_refusal_never_another_error(fmt: str) -> None:
    """Seeded byte flips, cuts and splices of a valid file: whatever Pillow's plugin makes of
    them, the caller sees a picture or FileRefused."""
    original = encode(shapes(120, 90, seed=8), fmt)
    rng = np.random.default_rng(len(fmt))
    outcomes: set[str] = set()
    for _ in range(150):
        data = bytearray(original)
        for _flip in range(int(rng.integers(1, 8))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            data = data[: int(rng.integers(8, len(data)))]
        try:
            decoded = decode_image(bytes(data), max_bytes=CAP)
        except FileRefused as exc:
            outcomes.add(exc.reason)
        else:
            assert decoded.image.mode == "RGB" and max(decoded.image.size) <= WORKING_SIZE
            outcomes.add("decoded")
    assert outcomes <= {"decoded", "corrupt", "not_image", "bomb"}
