"""Product photo processing: validate, normalise, strip metadata and store.

Farmers upload photos straight from their phones. Those files carry EXIF data,
including the GPS position of the farm, which must never be stored or served.
Every upload is therefore decoded and re-encoded from pixels only: the stored
files contain no EXIF, XMP, ICC profile or comment, whatever the input had.

This module is pure: no Flask, no database. The web layer maps
``PhotoError.code`` to a translated message for the user.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from PIL import Image, ImageCms, ImageOps

__all__ = [
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "PhotoError",
    "StoredPhoto",
    "delete_photo",
    "is_valid_key",
    "process_photo",
]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000

LARGE_SIZE = 1280
THUMB_SIZE = 320
WEBP_QUALITY = 80
JPEG_QUALITY = 82

# Pillow plugins allowed to parse uploads. Phones that store several pictures in one
# JPEG (e.g. depth maps) produce files the JPEG plugin opens as "MPO"; the first frame
# is the photo.
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP")
_ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})

# Bump when the normalisation changes in a way that should produce new keys.
_HASH_PREFIX = b"yuenong-photo-v1\0"
_KEY_LENGTH = 32
_KEY_RE = re.compile(rf"[0-9a-f]{{{_KEY_LENGTH}}}")
_READ_CHUNK = 64 * 1024

PhotoErrorCode = Literal["too_large", "not_image", "bomb", "unsupported"]


class PhotoError(ValueError):
    """An upload that cannot be accepted as a product photo.

    ``code`` is one of ``"too_large"``, ``"not_image"``, ``"bomb"``, ``"unsupported"``.
    """

    CODES = frozenset({"too_large", "not_image", "bomb", "unsupported"})

    def __init__(self, code: PhotoErrorCode, message: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"Unknown photo error code: {code!r}")
        super().__init__(message)
        self.code: PhotoErrorCode = code


@dataclass(frozen=True)
class StoredPhoto:
    """A processed photo. File names are relative to the storage directory."""

    key: str
    large: str
    thumb: str
    large_fallback: str
    thumb_fallback: str
    width: int
    height: int


def is_valid_key(key: str) -> bool:
    """Return True if ``key`` looks like a key produced by :func:`process_photo`."""
    return isinstance(key, str) and _KEY_RE.fullmatch(key) is not None


def _file_names(key: str) -> dict[str, str]:
    return {
        "large": f"{key}-{LARGE_SIZE}.webp",
        "large_fallback": f"{key}-{LARGE_SIZE}.jpg",
        "thumb": f"{key}-{THUMB_SIZE}.webp",
        "thumb_fallback": f"{key}-{THUMB_SIZE}.jpg",
    }


def process_photo(data: bytes | BinaryIO, storage_dir: Path) -> StoredPhoto:
    """Validate an uploaded photo, strip its metadata and store resized copies.

    Writes ``{key}-1280.webp``, ``{key}-1280.jpg``, ``{key}-320.webp`` and
    ``{key}-320.jpg`` into ``storage_dir`` (created if missing). The key is derived
    from the normalised pixels, so uploading the same photo again returns the same
    key and leaves the existing files alone. Nothing is written if PhotoError is raised.
    """
    raw = _read_limited(data)
    large = _decode_and_normalise(raw)
    thumb = _shrink(large, THUMB_SIZE)

    digest = hashlib.sha256(_HASH_PREFIX)
    digest.update(f"{large.width}x{large.height}\0".encode("ascii"))
    digest.update(large.tobytes())
    key = digest.hexdigest()[:_KEY_LENGTH]

    names = _file_names(key)
    storage_dir = Path(storage_dir)
    missing = {field: name for field, name in names.items() if not (storage_dir / name).is_file()}
    if missing:
        # Encode everything in memory first so that an encoder failure writes nothing.
        images = {"large": large, "large_fallback": large, "thumb": thumb, "thumb_fallback": thumb}
        encoded = {
            name: _encode_webp(images[field])
            if name.endswith(".webp")
            else _encode_jpeg(images[field])
            for field, name in missing.items()
        }
        _write_all(storage_dir, encoded)

    return StoredPhoto(key=key, width=large.width, height=large.height, **names)


def delete_photo(storage_dir: Path, key: str) -> None:
    """Delete the stored files of ``key``. Deleting a missing photo is not an error."""
    if not is_valid_key(key):
        raise ValueError(f"Invalid photo key: {key!r}")
    for name in _file_names(key).values():
        (Path(storage_dir) / name).unlink(missing_ok=True)


# --- reading and decoding -------------------------------------------------------------


def _read_limited(data: bytes | BinaryIO) -> bytes:
    """Return the upload's bytes, reading at most MAX_UPLOAD_BYTES + 1 from a stream."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        chunks: list[bytes] = []
        remaining = MAX_UPLOAD_BYTES + 1
        while remaining > 0:
            chunk = data.read(min(_READ_CHUNK, remaining))
            if not chunk:
                break
            if not isinstance(chunk, bytes):
                raise TypeError("Photo stream must be opened in binary mode")
            chunks.append(chunk)
            remaining -= len(chunk)
        raw = b"".join(chunks)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise PhotoError(
            "too_large", f"The photo is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        )
    if not raw:
        raise PhotoError("not_image", "The uploaded file is empty.")
    return raw


def _decode_and_normalise(raw: bytes) -> Image.Image:
    """Decode ``raw`` and return an upright RGB image at most LARGE_SIZE on its long side.

    The returned image carries no metadata at all (``info`` is empty).
    """
    # Pillow warns (DecompressionBombWarning) about large images instead of failing.
    # Turn that into an exception for this block only; our own MAX_PIXELS check is
    # stricter anyway. Note: catch_warnings changes process-wide filter state while active.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        _check_header(raw)
        try:
            with Image.open(io.BytesIO(raw), formats=_OPEN_FORMATS) as img:
                # JPEG only: let libjpeg decode at a reduced scale (still >= LARGE_SIZE).
                img.draft(None, (LARGE_SIZE, LARGE_SIZE))
                img.load()
                return _normalise(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error() from exc
        except MemoryError:
            raise
        except Exception as exc:  # Pillow raises many types on corrupt input
            raise _damaged_error() from exc


def _check_header(raw: bytes) -> None:
    """Identify the format and check declared dimensions before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(raw), formats=_OPEN_FORMATS) as img:
            fmt = img.format
            width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error() from exc
    except Image.UnidentifiedImageError as exc:
        raise _unknown_format_error(raw) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types on corrupt headers
        raise _damaged_error() from exc
    if fmt not in _ACCEPTED_FORMATS:
        raise PhotoError("unsupported", "Only JPEG, PNG and WebP photos are accepted.")
    if width * height > MAX_PIXELS:
        raise _bomb_error()

    # verify() checks structure (e.g. PNG chunk checksums) without decoding pixels.
    # The image cannot be used after verify(), so the caller opens it again.
    try:
        with Image.open(io.BytesIO(raw), formats=_OPEN_FORMATS) as img:
            img.verify()
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types on corrupt input
        raise _damaged_error() from exc


def _unknown_format_error(raw: bytes) -> PhotoError:
    """Tell an image in a format we refuse (GIF, TIFF, ...) apart from a non-image."""
    try:
        with Image.open(io.BytesIO(raw)):
            pass
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        pass  # identified as an image, just a huge one in a format we refuse anyway
    except Exception:  # anything Pillow cannot identify is simply not an image
        return PhotoError("not_image", "The uploaded file is not a photo.")
    return PhotoError("unsupported", "Only JPEG, PNG and WebP photos are accepted.")


def _damaged_error() -> PhotoError:
    return PhotoError("not_image", "The photo could not be read; it may be damaged.")


def _bomb_error() -> PhotoError:
    return PhotoError(
        "bomb",
        f"The photo has too many pixels (the limit is {MAX_PIXELS // 1_000_000} megapixels).",
    )


# --- normalisation --------------------------------------------------------------------


def _normalise(img: Image.Image) -> Image.Image:
    icc_profile = img.info.get("icc_profile")
    # Apply the EXIF orientation; if the EXIF block is broken, keep the pixels as stored.
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img)

    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        img = img.convert("I")
    if img.mode == "I":  # 16-bit greyscale; a plain convert would clip to white
        img = img.point(lambda value: value / 257).convert("L")

    if img.mode == "CMYK":
        pass  # converted to RGB below, through its ICC profile when it has one
    elif img.has_transparency_data:
        img = img.convert("RGBA")
    elif img.mode != "RGB":
        img = img.convert("RGB")

    img = _shrink(img, LARGE_SIZE)

    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    if icc_profile:
        img = _to_srgb(img, icc_profile)
    if img.mode != "RGB":
        img = img.convert("RGB")

    # Drop everything Pillow carried over from the upload (exif, xmp, icc_profile,
    # comment, dpi, ...) so no encoder can write it back out.
    img.info = {}
    return img


def _to_srgb(img: Image.Image, icc_profile: bytes) -> Image.Image:
    """Convert colours to sRGB so the profile can be dropped; keep pixels on failure."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        converted = ImageCms.profileToProfile(
            img, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img
    return converted if converted is not None else img


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    """Return a copy at most ``max_side`` on its long side; never upscales."""
    width, height = img.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return img.copy()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# --- encoding and storage -------------------------------------------------------------


def _encode_webp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=WEBP_QUALITY, method=4)
    return buf.getvalue()


def _encode_jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
    return buf.getvalue()


def _write_all(storage_dir: Path, files: dict[str, bytes]) -> None:
    """Atomically write each file; on failure remove the ones this call created."""
    storage_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for name, content in files.items():
            target = storage_dir / name
            _write_atomic(target, content)
            written.append(target)
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise


def _write_atomic(target: Path, content: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file 0600; the web server must be able to read it.
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
