"""EPCs of the things logistics handles: parcel SSCCs (and their SSCC-96 tags), unit SGTINs.

A pure module (no Flask, no database). Readers report tags as hex; events name them by
pure-identity URI. :func:`canonical_epc` turns what a reader sent into the URI an event
names (``urn:epc:id:sgtin:...`` for a unit's SGTIN-96 tag, ``urn:epc:id:sscc:...`` for
a parcel's SSCC-96 tag), so the hex and the URI of one tag are the same read. Anything
else (another scheme, a tag never encoded) is kept as it came, upper-case hex or URI.
"""

from __future__ import annotations

from functools import lru_cache

from epcpy.epc_schemes.sscc import SSCC, SSCCFilterValue

from traceability import codes

__all__ = [
    "PARCEL_SSCC_EXTENSION",
    "canonical_epc",
    "format_sscc",
    "sscc96_hex",
]

#: The SSCC extension digit of parcels made here (traceability's own packing uses 0).
PARCEL_SSCC_EXTENSION = 1
_SGTIN96_HEADER = "30"
_SSCC96_HEADER = "31"


def sscc96_hex(sscc_uri: str) -> str:
    """The SSCC-96 EPC (24 upper-case hex) of ``urn:epc:id:sscc:...``, filter 2 (case)."""
    try:
        return SSCC(sscc_uri).hex(filter_value=SSCCFilterValue.FULL_CASE).upper()
    except Exception as exc:  # epcpy raises its own ConvertException and plain ValueErrors
        raise codes.CodeError("syntax", f"Not an SSCC URI: {sscc_uri!r}") from exc


def _sscc_from_hex(hex_text: str) -> str | None:
    try:
        return SSCC.from_hex(hex_text).epc_uri
    except Exception:  # not a valid SSCC-96 after all: kept as hex
        return None


def _sscc_from_tag_uri(uri: str) -> str | None:
    try:
        return SSCC.from_tag_uri(uri).epc_uri
    except Exception:
        return None


@lru_cache(maxsize=65536)
def canonical_epc(epc: str) -> str:
    """The pure-identity URI of a unit's or parcel's tag, else ``epc`` unchanged.

    ``epc`` is what :func:`logistics.readers.normalize_epc` gives: upper-case hex or an
    ``urn:epc:`` URI with its scheme lower-cased.
    """
    if epc.startswith("urn:epc:id:"):
        return epc
    if epc.startswith("urn:epc:tag:sgtin-96:") or (
        len(epc) == 24 and epc.startswith(_SGTIN96_HEADER)
    ):
        try:
            gtin, serial, prefix = codes.decode_sgtin96(epc)
            return codes.sgtin_pure_uri(prefix, gtin, serial)
        except codes.CodeError:
            return epc
    if epc.startswith("urn:epc:tag:sscc-96:"):
        return _sscc_from_tag_uri(epc) or epc
    if len(epc) == 24 and epc.startswith(_SSCC96_HEADER):
        return _sscc_from_hex(epc) or epc
    return epc


def format_sscc(sscc: str) -> str:
    """An SSCC as printed under its barcode: ``(00) 1 6970000 000000012 3``."""
    if len(sscc) != 18:
        return sscc
    return f"(00) {sscc[0]} {sscc[1:8]} {sscc[8:17]} {sscc[17]}"
