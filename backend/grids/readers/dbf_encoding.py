"""Choose the text encoding of a Shapefile's DBF ourselves instead of trusting GDAL.

GDAL's fallback for a DBF without ``.cpg`` is ISO-8859-1, which turns every Chinese grid
name into mojibake without any error. So the encoding is decided from the data: UTF-8 if
the text is valid UTF-8, then the ``.cpg`` declaration, then the DBF language-driver byte,
then GB18030. Pure byte inspection with no GDAL or zip dependency, so it can be tested
(and reused) on its own.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Sequence

# Language-driver ids (DBF header byte 29) that occur in Chinese-region data.
_LDID_CODECS = {
    0x4D: "gb18030",  # CP936 / GBK (PRC)
    0x7A: "gb18030",  # PRC GBK
    0x4F: "cp950",  # Big5 (Taiwan / Hong Kong)
    0x78: "cp950",
    0x4E: "cp949",
    0x79: "cp949",
    0x13: "cp932",
    0x7B: "cp932",
    0x57: "cp1252",
    0x03: "cp1252",
    0x01: "cp437",
}

# Python codec name -> name GDAL's iconv understands (pyogrio forwards the name to GDAL).
_GDAL_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "gb18030": "GB18030",
    "big5": "BIG5",
    "cp950": "CP950",
    "big5hkscs": "BIG5-HKSCS",
    "cp949": "CP949",
    "euc_kr": "EUC-KR",
    "cp932": "CP932",
    "shift_jis": "SHIFT_JIS",
    "cp1252": "CP1252",
    "latin-1": "ISO-8859-1",
    "iso8859-1": "ISO-8859-1",
    "cp437": "CP437",
}


def _codec_from_cpg(cpg: bytes | None) -> str | None:
    if not cpg:
        return None
    text = cpg.decode("ascii", "ignore").strip().lower()
    if text in {"", "ansi", "system", "oem"}:
        # "ANSI" means "the writer's Windows code page": GBK in China, cp1252 elsewhere.
        return None
    if text in {"65001", "cp65001", "utf8"}:
        text = "utf-8"
    elif text.isdigit():
        text = f"cp{text}"
    return _canonical_codec(text)


def _canonical_codec(name: str) -> str | None:
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return None
    # GB2312 and GBK are subsets of GB18030; decoding with the superset never loses data
    # that the narrower declaration would have accepted.
    if canonical in {"gbk", "gb2312", "gb18030", "hz"}:
        return "gb18030"
    return canonical if canonical in _GDAL_ENCODING_NAMES else None


def _dbf_text_samples(head: bytes) -> list[bytes]:
    """Non-ASCII field names and character values from the start of a DBF."""
    if len(head) < 32:
        return []
    n_records, header_len, record_len = struct.unpack_from("<IHH", head, 4)
    fields: list[tuple[int, int]] = []  # (offset in record, width) of C fields
    samples: list[bytes] = []
    offset_in_record = 1  # byte 0 of a record is the deletion flag
    pos = 32
    while pos + 32 <= min(header_len, len(head)) and head[pos] != 0x0D:
        desc = head[pos : pos + 32]
        samples.append(desc[:11].split(b"\x00", 1)[0])
        width = desc[16]
        if desc[11:12] == b"C":
            fields.append((offset_in_record, width))
        offset_in_record += width
        pos += 32
    if record_len > 0:
        for r in range(n_records):
            start = header_len + r * record_len
            if start + record_len > len(head):
                break
            for off, width in fields:
                samples.append(head[start + off : start + off + width].rstrip(b" \x00"))
    return [s for s in samples if not s.isascii()]


def _decodes(samples: Sequence[bytes], codec: str) -> bool:
    for value in samples:
        # Non-final incremental decoding tolerates a multi-byte character cut in half
        # at the end of a fixed-width DBF field, which real writers produce.
        decoder = codecs.getincrementaldecoder(codec)()
        try:
            decoder.decode(value, final=False)
        except UnicodeDecodeError:
            return False
    return True


def choose_dbf_encoding(dbf_head: bytes, cpg: bytes | None) -> str | None:
    """GDAL encoding name for a DBF, or None to keep GDAL's own choice.

    UTF-8 is tried first because valid multi-byte UTF-8 practically never happens by
    accident, whereas UTF-8 bytes often also "decode" as GBK (into nonsense), so a
    ``.cpg`` that wrongly says GBK must not win over UTF-8-valid data.
    """
    samples = _dbf_text_samples(dbf_head)
    declared = _codec_from_cpg(cpg)
    if not samples:
        return _GDAL_ENCODING_NAMES[declared] if declared else None
    ldid = _LDID_CODECS.get(dbf_head[29]) if len(dbf_head) > 29 else None
    for candidate in ("utf-8", declared, ldid, "gb18030"):
        if candidate and _decodes(samples, candidate):
            return _GDAL_ENCODING_NAMES[candidate]
    return None
