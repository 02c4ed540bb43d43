"""Test pictures: phone-like JPEGs with EXIF GPS, and uploads that must be refused."""

from __future__ import annotations

import io

from PIL import ExifTags, Image, ImageDraw

GPS_SECRET = "FARM-AT-22.53N-113.97E"


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "CheapPhone"
    exif[ExifTags.Base.Orientation] = 1
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (22.0, 32.0, 10.5),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (113.0, 58.0, 1.25),
        ExifTags.GPS.GPSMapDatum: GPS_SECRET,
    }
    return exif


def phone_jpeg(size: tuple[int, int] = (800, 600), *, noisy: bool = False) -> bytes:
    """A JPEG like a phone makes: red lychees on leaves, with GPS in its EXIF."""
    width, height = size
    img = Image.new("RGB", size, (46, 110, 58))
    draw = ImageDraw.Draw(img)
    for i, (x, y) in enumerate(((0.3, 0.45), (0.55, 0.4), (0.45, 0.65), (0.7, 0.62))):
        r = min(width, height) * (0.16 + 0.02 * i)
        cx, cy = width * x, height * y
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(196, 40 + 12 * i, 52))
    if noisy:
        # Sensor noise compresses badly, so the file is as heavy as a real camera's.
        grain = Image.effect_noise(size, 90).convert("RGB")
        img = Image.blend(img, grain, 0.35)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=92, exif=gps_exif())
    return buffer.getvalue()


def has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        return bool(exif) and (
            ExifTags.IFD.GPSInfo in exif or bool(exif.get_ifd(ExifTags.IFD.GPSInfo))
        )


def decompression_bomb() -> bytes:
    """A genuine PNG of 12000 x 12000 pixels (144 MP) that packs into a few hundred KB."""
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def twenty_megabytes() -> bytes:
    """20 MB that start like a JPEG: past the upload limit whatever the content."""
    return b"\xff\xd8\xff\xe0" + b"\0" * (20 * 1024 * 1024 - 4)
