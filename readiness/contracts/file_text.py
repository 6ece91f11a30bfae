"""A province's report file as text: UTF-8, or UTF-16/32 with a byte-order mark; anything else is
refused with a line that says what the file seems to be.

Provincial offices save files from Excel: "CSV UTF-8" (UTF-8 with a byte-order mark), "Unicode
text" (UTF-16 little endian with a byte-order mark, tab-separated) and plain "CSV", which is the
Windows code page (cp1258 for Vietnamese). The first two are read; a code-page file cannot be told
apart from other 8-bit encodings reliably, so it is refused with the line of its first non-UTF-8
byte and a hint. A workbook saved under a ``.csv`` name, or any other binary file, is named as such.
"""
from __future__ import annotations

import codecs

# Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Leading bytes of binary files a province might send by mistake.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "an Excel workbook or another ZIP file; in Excel, save it as \"CSV UTF-8\""),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook; in Excel, save it as \"CSV UTF-8\""),
    (b"%PDF", "a PDF document"),
)


class TextFileError(ValueError):
    """The bytes are not text this reader accepts; the message names the file (and line)."""


def file_text(name: str, data: bytes) -> str:
    """Decode a report file's bytes; raise :class:`TextFileError` saying why not."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return _decode(name, data[len(bom):], encoding)
    for signature, what in SIGNATURES:
        if data.startswith(signature):
            raise TextFileError(f"{name}: not a text file: {what}")
    if b"\x00" in data:
        raise TextFileError(f"{name}: not a text file: {_nul_kind(data)}")
    return _decode(name, data, "utf-8")


def _nul_kind(data: bytes) -> str:
    """UTF-16 without a byte-order mark puts a NUL beside every ASCII character; else it is binary."""
    head = data[:4096]
    if len(head) >= 4 and head.count(0) * 3 >= len(head):
        return "it looks like UTF-16 without a byte-order mark; save it as \"CSV UTF-8\""
    line = data.count(b"\n", 0, data.index(b"\x00")) + 1
    return f"binary data (a NUL byte on line {line})"


def _decode(name: str, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding != "utf-8":
            raise TextFileError(f"{name}: not valid {encoding.upper()} text after its byte-order mark "
                                f"(at byte {exc.start}); save the file as \"CSV UTF-8\"") from None
        line = data.count(b"\n", 0, exc.start) + 1
        raise TextFileError(f"{name} line {line}: not UTF-8 (byte 0x{data[exc.start]:02x}; cp1258? save the "
                            "file as UTF-8)") from None
