"""The OFD container (GB/T 33190 §7): a zip of parts, read and written with the bounds of
trust.archive (entry count, sizes, compression ratio, clean names; XML with entities,
DTDs and network off), whose refusals surface here as OFDFormatError.

Package paths (ST_Loc, spec §1): inside XML, a path starting with "/" is absolute from the
package root; any other path is relative to the directory of the XML file holding it.
Zip entry names have no leading slash.
"""

from contextlib import contextmanager

from lxml import etree

from trust import archive
from trust.archive import DEFAULT_LIMITS, Limits, resolve

NS = "http://www.ofdspec.org/2016"


class OFDFormatError(archive.ArchiveError):
    """The bytes are not an OFD package we are willing to read."""

    code = "ofd_format"


def _error(en: str, zh: str) -> OFDFormatError:
    return OFDFormatError(f"OFD: {en}", f"OFD 文件：{zh}")


@contextmanager
def _as_ofd_error():
    try:
        yield
    except OFDFormatError:
        raise
    except archive.ArchiveError as e:
        raise _error(e.en, e.zh) from None


def check_entry_name(name: str) -> str:
    """A zip entry name as a clean package path, or OFDFormatError."""
    with _as_ofd_error():
        return archive.check_entry_name(name)


def parse_xml(data: bytes, name: str = "XML", limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse one XML part safely; OFDFormatError on anything we refuse."""
    with _as_ofd_error():
        return archive.parse_xml(data, name, limits)


def write_package(parts: dict[str, bytes], stored: dict[str, archive.StoredEntry] | None = None) -> bytes:
    """Zip the parts in order; the stored content of every part is exactly the bytes given,
    so digests over parts survive re-zipping. Parts unchanged since they were read
    (``Package.stored``) are copied without compressing them again."""
    with _as_ofd_error():
        return archive.write_zip(parts, stored)


class Package:
    """The parts of an OFD package by entry name, in zip order, with the bytes as stored;
    ``stored``: the entries as the zip held them, for write_package."""

    def __init__(self, parts: dict[str, bytes], limits: Limits = DEFAULT_LIMITS,
                 stored: dict[str, archive.StoredEntry] | None = None):
        self.parts = parts
        self.limits = limits
        self.stored = stored or {}
        self._folded = {name.lower(): name for name in parts}

    @classmethod
    def from_bytes(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> "Package":
        with _as_ofd_error():
            parts, stored = archive.read_zip_stored(data, limits)
            return cls(parts, limits, stored)

    def __contains__(self, name: str) -> bool:
        return name in self.parts

    def names(self) -> list[str]:
        return list(self.parts)

    def read(self, name: str) -> bytes:
        try:
            return self.parts[name]
        except KeyError:
            raise _error(f"part {name!r} is missing", f"缺少文件 {name!r}") from None

    def locate(self, base: str, loc: str) -> str | None:
        """The entry a ST_Loc in the part `base` names, or None. Producers are not strict
        about relative paths, so after the rule of §1 we try the path from the root and
        from the document directory (the first path component of `base`)."""
        loc = (loc or "").strip().replace("\\", "/")
        if not loc:
            return None
        candidates = [resolve(base, loc)]
        stripped = loc.lstrip("/").removeprefix("./")
        candidates.append(stripped)
        if "/" in base:
            candidates.append(base.split("/", 1)[0] + "/" + stripped)
        for candidate in candidates:
            if candidate and candidate in self.parts:
                return candidate
        for candidate in candidates:  # producers on case-insensitive file systems: "TPLS" for "Tpls"
            if candidate and candidate.lower() in self._folded:
                return self._folded[candidate.lower()]
        return None

    def xml(self, name: str) -> etree._Element:
        return parse_xml(self.read(name), name, self.limits)


def to_loc(name: str) -> str:
    """Entry name → absolute ST_Loc, the form References use."""
    return "/" + name.lstrip("/")
