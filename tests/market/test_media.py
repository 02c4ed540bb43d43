"""Tests for market.media: photo validation, metadata stripping and storage."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from market import media
from market.media import (
    MAX_UPLOAD_BYTES,
    PhotoError,
    StoredPhoto,
    delete_photo,
    is_valid_key,
    process_photo,
)

SECRET = b"YUENONG-SECRET-FARM"
RED = (255, 0, 0)
BLUE = (0, 0, 255)


# --- helpers --------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: object = "green") -> bytes:
    return encode(Image.new("RGB", size, color), "JPEG")


def gps_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "CheapPhone"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (22.0, 32.0, 10.5),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (113.0, 58.0, 1.25),
        ExifTags.GPS.GPSMapDatum: SECRET.decode(),
    }
    return exif


def red_left_blue_right(size: tuple[int, int] = (400, 200)) -> Image.Image:
    width, height = size
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, width // 2, height))
    return img


def photo_with_metadata(fmt: str, *, with_icc: bool = True) -> bytes:
    """A 400x200 photo carrying GPS EXIF (orientation 6), XMP and maybe an ICC profile."""
    img = red_left_blue_right()
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + SECRET + b"</x:xmpmeta>"
    params: dict[str, object] = {"exif": gps_exif()}
    if with_icc:
        params["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        params["pnginfo"] = info
    else:
        params["xmp"] = xmp
    if fmt == "JPEG":
        params["comment"] = b"farm at " + SECRET
    return encode(img, fmt, **params)


def patched_png(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR claims width x height (with a valid CRC)."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def stored_files(storage: Path) -> list[str]:
    if not storage.exists():
        return []
    return sorted(p.name for p in storage.iterdir())


def assert_rejected(data: object, storage: Path, code: str) -> PhotoError:
    with pytest.raises(PhotoError) as excinfo:
        process_photo(data, storage)  # type: ignore[arg-type]
    assert excinfo.value.code == code
    assert stored_files(storage) == []
    return excinfo.value


def output_paths(storage: Path, photo: StoredPhoto) -> list[Path]:
    names = [photo.large, photo.large_fallback, photo.thumb, photo.thumb_fallback]
    return [storage / name for name in names]


class CountingBytesIO(io.BytesIO):
    """A BytesIO that records how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def read1(self, size: int = -1) -> bytes:
        chunk = super().read1(size)
        self.bytes_read += len(chunk)
        return chunk

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "photos"


# --- metadata and orientation ---------------------------------------------------------


@pytest.mark.parametrize("with_icc", [True, False], ids=["icc", "no-icc"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_gps_exif_xmp_and_icc_are_stripped_from_every_output(
    fmt: str, with_icc: bool, storage: Path
) -> None:
    data = photo_with_metadata(fmt, with_icc=with_icc)
    # The fixture really carries a GPS position and the marker.
    with Image.open(io.BytesIO(data)) as original:
        gps = original.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert gps[ExifTags.GPS.GPSLatitude] == (22.0, 32.0, 10.5)
    assert SECRET in data

    photo = process_photo(data, storage)

    for path in output_paths(storage, photo):
        raw = path.read_bytes()
        assert b"Exif" not in raw
        assert b"EXIF" not in raw
        assert SECRET not in raw
        assert b"xmpmeta" not in raw
        with Image.open(path) as out:
            assert len(out.getexif()) == 0
            assert out.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
            for key in ("exif", "xmp", "icc_profile", "comment"):
                assert key not in out.info


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt: str, storage: Path) -> None:
    # Orientation 6 means "rotate 90 degrees clockwise to display": the red left half
    # of the stored 400x200 landscape ends up as the top half of a 200x400 portrait.
    photo = process_photo(photo_with_metadata(fmt), storage)

    assert (photo.width, photo.height) == (200, 400)
    with Image.open(storage / photo.large_fallback) as large:
        assert large.size == (200, 400)
        top = large.convert("RGB").getpixel((100, 50))
        bottom = large.convert("RGB").getpixel((100, 350))
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60
    with Image.open(storage / photo.thumb) as thumb:
        assert thumb.size == (160, 320)


# --- resizing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "large_size", "thumb_size"),
    [
        ((3000, 2000), (1280, 853), (320, 213)),
        ((2000, 3000), (853, 1280), (213, 320)),
        ((1280, 1280), (1280, 1280), (320, 320)),
        ((600, 400), (600, 400), (320, 213)),
        ((300, 200), (300, 200), (300, 200)),
    ],
)
def test_resizes_to_long_side_without_upscaling(
    size: tuple[int, int],
    large_size: tuple[int, int],
    thumb_size: tuple[int, int],
    storage: Path,
) -> None:
    photo = process_photo(jpeg_bytes(size), storage)

    assert (photo.width, photo.height) == large_size
    for name, expected in [
        (photo.large, large_size),
        (photo.large_fallback, large_size),
        (photo.thumb, thumb_size),
        (photo.thumb_fallback, thumb_size),
    ]:
        with Image.open(storage / name) as out:
            assert out.size == expected, name


def test_outputs_are_webp_and_progressive_jpeg_named_after_the_key(storage: Path) -> None:
    photo = process_photo(jpeg_bytes((2000, 1500)), storage)

    assert photo.large == f"{photo.key}-1280.webp"
    assert photo.large_fallback == f"{photo.key}-1280.jpg"
    assert photo.thumb == f"{photo.key}-320.webp"
    assert photo.thumb_fallback == f"{photo.key}-320.jpg"
    assert is_valid_key(photo.key)
    # Exactly the four files: no temporary files left behind.
    assert stored_files(storage) == sorted(p.name for p in output_paths(storage, photo))
    for name in (photo.large, photo.thumb):
        with Image.open(storage / name) as out:
            assert out.format == "WEBP"
    for name in (photo.large_fallback, photo.thumb_fallback):
        with Image.open(storage / name) as out:
            assert out.format == "JPEG"
            assert out.mode == "RGB"
            assert out.info.get("progressive")
    for path in output_paths(storage, photo):
        assert path.stat().st_mode & 0o777 == 0o644


def test_transparent_png_is_flattened_on_white(storage: Path) -> None:
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 50, 100))
    photo = process_photo(encode(img, "PNG"), storage)

    with Image.open(storage / photo.large_fallback) as out:
        assert out.mode == "RGB"
        right = out.getpixel((90, 50))
        left = out.getpixel((10, 50))
    assert min(right) > 245  # transparent -> white, not black
    assert left[0] > 200
    assert left[1] < 60


def test_palette_png_with_transparency_is_flattened_on_white(storage: Path) -> None:
    img = Image.new("P", (50, 50), 0)
    img.putpalette([0, 0, 0, 0, 255, 0])
    img.paste(1, (0, 0, 25, 50))
    photo = process_photo(encode(img, "PNG", transparency=0), storage)

    with Image.open(storage / photo.large_fallback) as out:
        assert min(out.getpixel((45, 25))) > 245
        green = out.getpixel((5, 25))
    assert green[1] > 200
    assert green[0] < 60


def test_sixteen_bit_greyscale_png_keeps_its_tones(storage: Path) -> None:
    img = Image.new("I;16", (40, 40), 30000)  # about 46% grey, not white
    photo = process_photo(encode(img, "PNG"), storage)

    with Image.open(storage / photo.large_fallback) as out:
        red, green, blue = out.getpixel((20, 20))
    assert 105 < red < 128
    assert red == green == blue


def test_cmyk_jpeg_is_converted_to_rgb(storage: Path) -> None:
    photo = process_photo(encode(Image.new("CMYK", (80, 60), (0, 255, 255, 0)), "JPEG"), storage)

    with Image.open(storage / photo.large_fallback) as out:
        assert out.mode == "RGB"
        red, green, blue = out.getpixel((40, 30))
    assert red > 200
    assert green < 60
    assert blue < 60


def test_multi_picture_jpeg_from_phones_is_accepted(storage: Path) -> None:
    first = Image.new("RGB", (120, 80), RED)
    data = encode(first, "MPO", save_all=True, append_images=[Image.new("RGB", (120, 80), BLUE)])
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == "MPO"

    photo = process_photo(data, storage)

    assert (photo.width, photo.height) == (120, 80)
    with Image.open(storage / photo.large_fallback) as out:
        assert out.getpixel((60, 40))[0] > 200


# --- rejected uploads -----------------------------------------------------------------


def test_text_bytes_are_not_an_image(storage: Path) -> None:
    error = assert_rejected(
        b"Fresh lychees from Maoming, 20 yuan per jin.\n" * 20, storage, "not_image"
    )
    assert isinstance(error, ValueError)
    assert str(error)


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path, storage: Path) -> None:
    fake = tmp_path / "lychee.jpg"
    fake.write_text("This is not really a photo.\n", encoding="utf-8")
    with fake.open("rb") as stream:
        assert_rejected(stream, storage, "not_image")


def test_empty_upload_is_not_an_image(storage: Path) -> None:
    assert_rejected(b"", storage, "not_image")


def test_truncated_jpeg_is_not_an_image(storage: Path) -> None:
    img = Image.effect_noise((400, 300), 64).convert("RGB")
    data = encode(img, "JPEG")
    assert_rejected(data[: len(data) // 2], storage, "not_image")


def test_png_with_corrupt_checksum_is_not_an_image(storage: Path) -> None:
    data = bytearray(encode(Image.new("RGB", (30, 30), "green"), "PNG"))
    data[29] ^= 0xFF  # IHDR CRC
    assert_rejected(bytes(data), storage, "not_image")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_unsupported(fmt: str, storage: Path) -> None:
    assert_rejected(encode(Image.new("RGB", (40, 30), "green"), fmt), storage, "unsupported")


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (30000, 30000),  # far beyond Pillow's own limit: DecompressionBombError
        (10000, 10000),  # beyond Pillow's warning limit: DecompressionBombWarning
        (8000, 6000),  # only our stricter MAX_PIXELS catches this one
    ],
)
def test_decompression_bomb_is_refused_before_decoding(
    width: int, height: int, storage: Path
) -> None:
    data = patched_png(width, height)
    assert len(data) < 100
    # The pixel data is 1x1: had it been decoded, the upload would fail as "not_image".
    assert_rejected(data, storage, "bomb")


def test_bomb_warning_does_not_leak_when_warnings_are_not_errors(storage: Path) -> None:
    # In production warnings are not errors: Pillow's DecompressionBombWarning must still
    # be turned into our own PhotoError and never reach the warnings machinery.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_rejected(patched_png(10000, 10000), storage, "bomb")
    assert [w.category.__name__ for w in caught] == []


def test_pixel_limit_boundary(monkeypatch: pytest.MonkeyPatch, storage: Path) -> None:
    monkeypatch.setattr(media, "MAX_PIXELS", 100)

    assert_rejected(encode(Image.new("RGB", (101, 1)), "PNG"), storage, "bomb")
    assert process_photo(encode(Image.new("RGB", (10, 10)), "PNG"), storage).width == 10


def test_oversized_stream_is_refused_without_reading_it_all(storage: Path) -> None:
    total = 20 * 1024 * 1024
    header = jpeg_bytes()
    stream = CountingBytesIO(header + b"\0" * (total - len(header)))

    assert_rejected(stream, storage, "too_large")

    assert 0 < stream.bytes_read <= MAX_UPLOAD_BYTES + 1
    assert stream.bytes_read < total


def test_oversized_bytes_are_refused(storage: Path) -> None:
    assert_rejected(os.urandom(20 * 1024 * 1024), storage, "too_large")


def test_upload_size_limit_boundary(storage: Path) -> None:
    header = jpeg_bytes()
    exactly = header + b"\0" * (MAX_UPLOAD_BYTES - len(header))  # trailing data is ignored

    assert_rejected(io.BytesIO(exactly + b"\0"), storage, "too_large")
    assert process_photo(io.BytesIO(exactly), storage).width == 64


def test_photo_error_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError, match="Unknown photo error code"):
        PhotoError("oops", "message")  # type: ignore[arg-type]


# --- keys, deduplication and storage --------------------------------------------------


def test_same_photo_twice_gives_same_key_and_files_are_not_rewritten(storage: Path) -> None:
    data = encode(red_left_blue_right((900, 600)), "JPEG")
    first = process_photo(data, storage)
    paths = output_paths(storage, first)
    old = 1_000_000_000
    for path in paths:
        os.utime(path, ns=(old, old))

    second = process_photo(io.BytesIO(data), storage)

    assert second == first
    assert [path.stat().st_mtime_ns for path in paths] == [old] * 4
    assert len(stored_files(storage)) == 4


def test_missing_file_is_recreated_on_reupload(storage: Path) -> None:
    data = jpeg_bytes((500, 400))
    photo = process_photo(data, storage)
    (storage / photo.thumb).unlink()

    assert process_photo(data, storage) == photo
    assert all(path.is_file() for path in output_paths(storage, photo))


def test_same_pixels_with_different_metadata_give_same_key(storage: Path) -> None:
    img = red_left_blue_right((300, 200))
    plain = encode(img, "JPEG")
    exif = gps_exif(orientation=1)
    tagged = encode(img, "JPEG", exif=exif)
    assert plain != tagged

    assert process_photo(plain, storage).key == process_photo(tagged, storage).key
    assert len(stored_files(storage)) == 4


def test_different_photos_give_different_keys(storage: Path) -> None:
    red = process_photo(jpeg_bytes(color=RED), storage)
    blue = process_photo(jpeg_bytes(color=BLUE), storage)
    wider = process_photo(jpeg_bytes(size=(65, 48), color=RED), storage)

    assert len({red.key, blue.key, wider.key}) == 3
    assert len(stored_files(storage)) == 12


def test_failed_write_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, storage: Path) -> None:
    real_replace = os.replace
    calls = 0

    def flaky_replace(src: object, dst: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(media.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        process_photo(jpeg_bytes((500, 400)), storage)

    assert calls == 3
    assert stored_files(storage) == []


def test_delete_photo_removes_only_that_photos_files(storage: Path) -> None:
    keep = process_photo(jpeg_bytes(color=RED), storage)
    gone = process_photo(jpeg_bytes(color=BLUE), storage)
    unrelated = storage / f"{gone.key}-notes.txt"
    unrelated.write_text("keep me", encoding="utf-8")

    delete_photo(storage, gone.key)

    assert not any(path.exists() for path in output_paths(storage, gone))
    assert all(path.is_file() for path in output_paths(storage, keep))
    assert unrelated.is_file()
    delete_photo(storage, gone.key)  # idempotent
    delete_photo(storage.parent / "missing-dir", gone.key)


@pytest.mark.parametrize(
    "key", ["../etc", "../../etc/passwd", "", "*", "A" * 32, "0" * 31, "0" * 33, "0" * 32 + "\n"]
)
def test_delete_photo_rejects_invalid_keys(key: str, tmp_path: Path) -> None:
    victim = tmp_path / "etc-1280.webp"
    victim.write_bytes(b"x")
    storage = tmp_path / "photos"
    storage.mkdir()

    with pytest.raises(ValueError, match="Invalid photo key"):
        delete_photo(storage, key)
    assert victim.exists()


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("0123456789abcdef0123456789abcdef", True),
        ("0123456789ABCDEF0123456789ABCDEF", False),
        ("0123456789abcdef0123456789abcde", False),
        ("0123456789abcdef0123456789abcdefa", False),
        ("0123456789abcdef0123456789abcdeg", False),
        ("../etc", False),
        ("", False),
        (None, False),
    ],
)
def test_is_valid_key(key: str, valid: bool) -> None:
    assert is_valid_key(key) is valid
