"""trust/archive.py's zip reader against Python's zipfile (an independent reader of the same
format): on real and damaged archives it gives zipfile's contents or our ArchiveError, never
other bytes and never another exception; stored and deflated entries alike."""

import io
import zipfile

from hypothesis import HealthCheck, given, settings, strategies as st

from trust.archive import ArchiveError, read_zip

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
        for info, (name, content) in zip(infos, ours.items()):
            assert theirs.read(info) == content, name
