"""trust/archive.py's zip reader against Python's zipfile (an independent reader of the same
format): on real and damaged archives it gives zipfile's contents or our ArchiveError, never
other bytes and never another exception; stored and deflated entries alike."""

import io
import zipfile
import zlib

from hypothesis import HealthCheck, given, settings, strategies as st

from trust.archive import ArchiveError, read_zip, read_zip_stored, write_zip

_PARTS = {"OFD.xml": b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>" * 20, "Doc_0/Res/font.ttf": bytes(range(256)) * 40,
          "Doc_0/Document.xml": "<Document>证照</Document>".encode() * 30, "empty.txt": b""}


def _zip(method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in _PARTS.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_stored_and_deflated_entries_read_as_written():
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        assert read_zip(_zip(method)) == _PARTS


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), st.data())
def test_a_damaged_archive_reads_as_zipfile_reads_it_or_is_refused(method, data):
    archive = bytearray(_zip(method))
    for _ in range(data.draw(st.integers(1, 4))):
        archive[data.draw(st.integers(0, len(archive) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        ours = read_zip(bytes(archive))
    except ArchiveError:
        return
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as theirs:  # the same entries in the same order
        infos = [info for info in theirs.infolist() if not info.filename.endswith("/")]
        assert len(infos) == len(ours)
        for info, (name, content) in zip(infos, ours.items(), strict=True):
            assert theirs.read(info) == content, name


_NAMES = st.lists(st.text(st.sampled_from("abcXYZ019_-.证照目录"), min_size=1, max_size=12), min_size=1, max_size=4) \
    .map(lambda parts: "/".join(parts)).filter(lambda name: all(p not in (".", "..") for p in name.split("/")))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_NAMES, st.binary(max_size=3000) | st.text(max_size=500).map(str.encode), max_size=6))
def test_what_write_zip_writes_zipfile_reads_back(parts):
    written = write_zip(parts)
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.testzip() is None
        assert {info.filename: archive.read(info) for info in archive.infolist()} == parts
        assert all(bool(info.flag_bits & 0x800) == (not info.filename.isascii()) for info in archive.infolist())
    assert read_zip(written) == parts


def test_unchanged_parts_are_copied_as_stored_and_changed_ones_compressed_anew():
    """Entries deflated at level 1 by zipfile come back with their level-1 bytes: copied,
    not compressed again (write_zip compresses at the default level, which differs)."""
    original = io.BytesIO()
    with zipfile.ZipFile(original, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in _PARTS.items():
            archive.writestr(name, data)
    parts, stored = read_zip_stored(original.getvalue())
    parts["OFD.xml"] = parts["OFD.xml"] + b"<!-- changed -->"
    parts["Doc_0/new.xml"] = b"<new/>"
    rewritten, again = read_zip_stored(write_zip(parts, stored))
    assert rewritten == parts
    for name in ("Doc_0/Res/font.ttf", "Doc_0/Document.xml"):
        assert again[name].data == stored[name].data
    assert again["OFD.xml"].data == zlib.compress(parts["OFD.xml"], wbits=-15)
