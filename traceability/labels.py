"""证码合一 labels: the 承诺达标合格证 and the trace QR code on one label, as a PDF.

Layouts: 40 × 30 mm and 60 × 40 mm thermal rolls (one label per page, as label printer
drivers expect) and A4 sheets of 3 × 8 labels. The certificate text of a batch is the
same on every label, so it is drawn once as a PDF form XObject and placed on each label;
each QR code is drawn as vector modules (one path of filled rectangles), never as a
bitmap, which keeps it sharp on any printer and makes rendering fast.

The CJK font (WenQuanYi Micro Hei by default, ``LABEL_FONT_PATH``) is embedded (subset),
so the Chinese prints on any viewer; the PDF built-in STSong is not embedded and shows
boxes on some.

QR codes: error correction level M, at least a 2-module quiet zone inside the label's
white margin. All codes of one run share the version (their URLs have the same length)
and use a fixed mask pattern: evaluating the eight masks is what makes pure-Python QR
generation slow, and decoders read every mask; every printed code is checked by decoding
it in the tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from traceability.models import LabelLayout

__all__ = [
    "LAYOUTS",
    "Certificate",
    "LabelFontError",
    "LabelSpec",
    "qr_matrix",
    "qr_png",
    "qr_svg",
    "register_font",
    "render_labels",
]

FONT_NAME = "YNLabelCJK"
#: Fixed QR mask pattern for label runs (see the module docstring).
LABEL_MASK = 2
QUIET_MODULES = 2


class LabelFontError(RuntimeError):
    """The CJK label font is missing or unreadable."""


@dataclass(frozen=True)
class LabelSpec:
    """Page and cell geometry of a layout, in points."""

    page_width: float
    page_height: float
    cell_width: float
    cell_height: float
    columns: int = 1
    rows: int = 1
    #: Offset of the first cell from the page's top-left corner.
    offset_x: float = 0.0
    offset_y: float = 0.0
    #: White margin inside each label (sheet printers cannot print at the paper's edge).
    margin: float = 1.5 * mm

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


LAYOUTS: dict[LabelLayout, LabelSpec] = {
    LabelLayout.ROLL_40X30: LabelSpec(40 * mm, 30 * mm, 40 * mm, 30 * mm),
    LabelLayout.ROLL_60X40: LabelSpec(60 * mm, 40 * mm, 60 * mm, 40 * mm),
    # 3 × 8 labels of 70 × 37 mm on A4 (210 × 297 mm), 0.5 mm top and bottom margins.
    LabelLayout.A4_3X8: LabelSpec(
        210 * mm,
        297 * mm,
        70 * mm,
        37 * mm,
        columns=3,
        rows=8,
        offset_x=0,
        offset_y=0.5 * mm,
        margin=3 * mm,
    ),
}

BASIS_TEXT = {
    "commissioned_test": "委托检测",
    "self_test": "自我检测",
    "internal_control": "内部质量控制",
    "self_commitment": "自我承诺",
}
COMMITMENTS = ("不使用禁用农药兽药、停用兽药和非法添加物", "常规农药兽药残留不超标")


@dataclass(frozen=True)
class Certificate:
    """The 承诺达标合格证 fields printed on every label of a batch (Chinese, as issued)."""

    product_name: str
    quantity: str
    origin: str
    producer: str
    contact: str
    issued_on: str
    lot: str
    basis: Sequence[str] = ()


@cache
def register_font(path: str) -> str:
    """Register the CJK TrueType font (first face of a TTC) once; returns its name."""
    font_file = Path(path)
    if not font_file.is_file():
        raise LabelFontError(
            f"No label font: set LABEL_FONT_PATH to a CJK TrueType font (Debian: apt-get "
            f"install fonts-wqy-microhei); {path} does not exist."
        )
    try:
        font = TTFont(FONT_NAME, str(font_file), subfontIndex=0)
    except Exception as exc:
        raise LabelFontError(f"LABEL_FONT_PATH {path} cannot be read as a font: {exc}") from exc
    pdfmetrics.registerFont(font)
    return FONT_NAME


# --------------------------------------------------------------------------------------
# QR codes
# --------------------------------------------------------------------------------------


def qr_matrix(
    data: str, *, version: int | None = None, mask: int | None = None
) -> list[list[bool]]:
    """The QR module matrix (no quiet zone) for ``data`` at error correction level M."""
    code = qrcode.QRCode(
        version=version, error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask
    )
    code.add_data(data)
    code.make(fit=version is None)
    return code.modules


def qr_version(data: str) -> int:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(data)
    code.best_fit()
    return code.version


def qr_png(data: str, *, box_size: int = 8) -> bytes:
    """A PNG of the QR code (4-module quiet zone), for screens and other print jobs."""
    image = qrcode.make(data, error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_svg(data: str) -> bytes:
    """An SVG of the QR code as one path (scales to any size)."""
    from qrcode.image.svg import SvgPathImage

    image = qrcode.make(
        data, error_correction=ERROR_CORRECT_M, border=4, image_factory=SvgPathImage
    )
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def _qr_path(matrix: list[list[bool]]) -> str:
    """PDF path operators for the dark modules, one rectangle per horizontal run, in
    module units with row 0 at the top."""
    parts: list[str] = []
    append = parts.append
    size = len(matrix)
    for y, row in enumerate(matrix):
        top = size - y - 1
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                append(f"{start} {top} {x - start} 1 re")
            else:
                x += 1
    return "\n".join(parts)


# --------------------------------------------------------------------------------------
# Text layout
# --------------------------------------------------------------------------------------


#: Punctuation that must not start a line (it hangs at the end of the previous one).
_NO_LINE_START = frozenset("、，。；：！？）」』》〉,.;:!?)]")


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break text into lines no wider than ``width`` (CJK breaks anywhere, except before
    closing punctuation; ASCII words are kept whole where they fit)."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        candidate = line + token
        if token in _NO_LINE_START and line:
            line = candidate
            continue
        if pdfmetrics.stringWidth(candidate, font, size) <= width or not line:
            line = candidate
            while pdfmetrics.stringWidth(line, font, size) > width and len(line) > 1:
                # A single token wider than the line: split it by characters.
                cut = len(line) - 1
                while cut > 1 and pdfmetrics.stringWidth(line[:cut], font, size) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        else:
            lines.append(line.rstrip())
            line = token.lstrip()
    if line:
        lines.append(line)
    return lines


def _tokens(text: str) -> Iterable[str]:
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            yield word
            word = ""
        yield ch
    if word:
        yield word


@dataclass(frozen=True)
class _Box:
    x: float
    y: float  # bottom
    width: float
    height: float


def _fit(
    paragraphs: list[str], font: str, box: _Box, high: float, low: float
) -> tuple[float, list[str]]:
    """The largest font size (between low and high) at which the paragraphs fit the box,
    and their lines; at the smallest size, lines that do not fit are dropped."""
    size = high
    while True:
        lines = [line for p in paragraphs for line in _wrap(p, font, size, box.width)]
        if len(lines) * size * 1.18 <= box.height or size <= low:
            break
        size = max(low, size - 0.25)
    keep = int(box.height // (size * 1.18))
    return size, lines[:keep]


def _draw_lines(canvas: Canvas, lines: list[str], font: str, size: float, box: _Box) -> None:
    leading = size * 1.18
    y = box.y + box.height - size * 0.95
    for line in lines:
        canvas.setFont(font, size)
        canvas.drawString(box.x, y, line)
        y -= leading


@dataclass(frozen=True)
class _Geometry:
    margin: float
    title_size: float
    qr_box: _Box
    text_box: _Box
    caption_y: float
    caption_size: float
    compact: bool


def _geometry(width: float, height: float, margin: float) -> _Geometry:
    compact = width < 50 * mm
    title_size = 7.5 if compact else 10.5
    title_height = title_size * 1.25
    caption_size = 4.2 if compact else 5.0
    # Compact labels carry only the serial under the code; larger ones a hint too.
    caption_height = caption_size * (1.3 if compact else 2.4)
    qr_size = min(
        height - 2 * margin - title_height - caption_height - 0.6 * mm,
        width * (0.45 if compact else 0.5),
    )
    qr_box = _Box(margin, margin + caption_height, qr_size, qr_size)
    text_x = margin + qr_size + 1.0 * mm
    text_box = _Box(
        text_x,
        margin,
        width - text_x - margin,
        height - 2 * margin - title_height - 0.4 * mm,
    )
    return _Geometry(margin, title_size, qr_box, text_box, margin + 0.3, caption_size, compact)


def _certificate_paragraphs(cert: Certificate, compact: bool) -> list[str]:
    """The certificate's lines: every field, the commitment and its basis.

    Compact (40 × 30 mm) labels use the short field names and commitment wording, leave
    out the province (every producer here is in Guangdong) and list only the bases
    that apply; the lot is printed under the code with the serial.
    """
    if compact:
        labels = ("品名", "数量", "产地", "生产者", "电话", "日期", "")
        origin = cert.origin.removeprefix("广东省")
        promise = "承诺：" + "，".join(COMMITMENTS)
        chosen = [text for key, text in BASIS_TEXT.items() if key in cert.basis]
        basis = ("依据：" + "、".join(chosen)) if chosen else ""
    else:
        labels = ("产品名称", "数量(重量)", "产地", "生产者", "联系方式", "开具日期", "批次")
        origin = cert.origin
        promise = "我承诺对产品质量安全以及合格证真实性负责：" + "；".join(
            "√" + c for c in COMMITMENTS
        )
        basis = "承诺依据：" + " ".join(
            ("√" if key in cert.basis else "□") + text for key, text in BASIS_TEXT.items()
        )
    values = (
        cert.product_name,
        cert.quantity,
        origin,
        cert.producer,
        cert.contact,
        cert.issued_on,
        cert.lot,
    )
    paragraphs = [
        f"{label}：{value}" for label, value in zip(labels, values, strict=True) if label and value
    ]
    paragraphs.append(promise)
    if basis:
        paragraphs.append(basis)
    return paragraphs


def _draw_static(canvas: Canvas, font: str, cert: Certificate, spec: LabelSpec) -> None:
    """Everything on a label except the QR code and its serial: title, fields, rule."""
    width = spec.cell_width
    geo = _geometry(spec.cell_width, spec.cell_height, spec.margin)
    height = spec.cell_height
    canvas.setFillColorRGB(0, 0, 0)
    canvas.setStrokeColorRGB(0, 0, 0)
    title = "承诺达标合格证"
    title_y = height - geo.margin - geo.title_size * 0.95
    # Fill plus a thin stroke of the outline makes the title bold with a regular face.
    canvas.saveState()
    text = canvas.beginText()
    text.setTextRenderMode(2)
    text.setFont(font, geo.title_size)
    canvas.setLineWidth(geo.title_size * 0.04)
    title_width = pdfmetrics.stringWidth(title, font, geo.title_size)
    text.setTextOrigin((width - title_width) / 2, title_y)
    text.textOut(title)
    canvas.drawText(text)
    canvas.restoreState()
    rule_y = title_y - geo.title_size * 0.3
    canvas.setLineWidth(0.4)
    canvas.line(geo.margin, rule_y, width - geo.margin, rule_y)
    paragraphs = _certificate_paragraphs(cert, geo.compact)
    size, lines = _fit(paragraphs, font, geo.text_box, 6.5 if not geo.compact else 5.0, 3.4)
    _draw_lines(canvas, lines, font, size, geo.text_box)
    if not geo.compact:
        canvas.setFont(font, geo.caption_size)
        canvas.drawString(geo.margin, geo.caption_y + geo.caption_size * 1.2, "扫码查看追溯信息")


def render_labels(
    out: BinaryIO | str | Path,
    layout: LabelLayout,
    certificate: Certificate,
    items: Iterable[tuple[str, str]],
    *,
    font_path: str,
    total: int | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 200,
) -> int:
    """Write a PDF with one label per (url, caption) item; returns the number of labels.

    ``caption`` is printed under the QR code (the serial, or the lot for a batch label).
    ``progress(done)`` is called every ``progress_every`` labels and at the end.
    """
    font = register_font(font_path)
    spec = LAYOUTS[LabelLayout(layout)]
    # Binary (not ASCII85) page streams: smaller files, and ASCII85 is slow pure Python.
    rl_config.useA85 = 0
    canvas = Canvas(
        out if not isinstance(out, Path) else str(out),
        pagesize=(spec.page_width, spec.page_height),
        pageCompression=1,
        invariant=1,
    )
    canvas.setTitle(f"承诺达标合格证 {certificate.lot}")
    canvas.setAuthor("YueNong Market")
    canvas.setCreator("YueNong Market traceability")
    form = "cert"
    canvas.beginForm(form, 0, 0, spec.cell_width, spec.cell_height)
    _draw_static(canvas, font, certificate, spec)
    canvas.endForm()
    geo = _geometry(spec.cell_width, spec.cell_height, spec.margin)
    version: int | None = None
    count = 0
    slot = 0
    for url, caption in items:
        if slot == spec.per_page:
            canvas.showPage()
            slot = 0
        if version is None:
            version = qr_version(url)
        try:
            matrix = qr_matrix(url, version=version, mask=LABEL_MASK)
        except qrcode.exceptions.DataOverflowError:
            version = qr_version(url)
            matrix = qr_matrix(url, version=version, mask=LABEL_MASK)
        column, row = slot % spec.columns, slot // spec.columns
        x0 = spec.offset_x + column * spec.cell_width
        y0 = spec.page_height - spec.offset_y - (row + 1) * spec.cell_height
        modules = len(matrix) + 2 * QUIET_MODULES
        module = geo.qr_box.width / modules
        qr_x = x0 + geo.qr_box.x + QUIET_MODULES * module
        qr_y = y0 + geo.qr_box.y + QUIET_MODULES * module
        canvas.saveState()
        canvas.translate(x0, y0)
        canvas.doForm(form)
        canvas.restoreState()
        canvas.addLiteral(
            f"q 0 g 1 0 0 1 {qr_x:.3f} {qr_y:.3f} cm {module:.4f} 0 0 {module:.4f} 0 0 cm\n"
            f"{_qr_path(matrix)}\nf Q"
        )
        canvas.setFont("Helvetica", geo.caption_size)
        canvas.drawString(x0 + geo.margin, y0 + geo.caption_y, caption)
        slot += 1
        count += 1
        if progress is not None and count % progress_every == 0:
            progress(count)
    if count == 0:
        canvas.drawString(10, 10, "")
    canvas.showPage()
    canvas.save()
    if progress is not None:
        progress(count)
    return count
