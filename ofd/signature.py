"""OFD signatures (GB/T 33190 §18, spec ofd-signature.md §3-§5): Signatures.xml, Signature.xml
with SM3 References, StampAnnot appearances, and SignedValue.dat from a callback.

This module never signs: the caller's `signed_value(signature_xml, signature_loc)` turns
the exact Signature.xml bytes into SignedValue.dat (a SES_Signature from seal/ for
Type="Seal", a GB/T 35275 SignedData or plain SM2 signature for Type="Sign").
`signature_loc` is the absolute location of that Signature.xml, which a SES_Signature
carries as propertyInfo.

Scope is "continue-sign": every part of the package at signing time is referenced except
Signatures.xml, so a later signature can still be added, and it protects the earlier ones.
"""

import base64
import hashlib
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from lxml import etree

from ofd.package import NS, OFDFormatError, Package, parse_xml, to_loc, write_package
from ofd.reader import Box, box, read_package
from trust import oids
from trust.archive import child, child_text, children, local
from trust.clock import utc_now
from trust.errors import InvalidInput
from trust.hashes import HashAlgorithm, hash_algorithm, sm3

SM2_WITH_SM3 = "1.2.156.10197.1.501"
SignedValueCallback = Callable[[bytes, str], bytes]

# CheckMethod values seen in the wild (spec §3); anything else fails closed.
_CHECK_METHODS = {"sm3": "SM3", oids.SM3: "SM3", "sha256": "SHA-256",
                  "sha-256": "SHA-256", "2.16.840.1.101.3.4.2.1": "SHA-256"}
_LEGACY = {"md5", "sha1", "sha-1"}


@dataclass(frozen=True)
class Reference:
    file_ref: str
    check_value: str          # base64 as written


@dataclass(frozen=True)
class StampAnnot:
    id: str
    page_ref: str
    boundary: Box | None
    clip: Box | None


@dataclass(frozen=True)
class SignatureXml:
    """A parsed Signature.xml, with the bytes it was parsed from (what the signature covers)."""

    raw: bytes
    provider: dict
    signature_method: str | None
    signature_date_time: str | None
    check_method: str
    references: tuple[Reference, ...]
    stamp_annots: tuple[StampAnnot, ...]
    seal_loc: str | None
    signed_value_loc: str | None


def parse_signature_xml(raw: bytes, name: str = "Signature.xml") -> SignatureXml:
    root = parse_xml(raw, name)
    info = child(root, "SignedInfo")
    if local(root.tag) != "Signature" or info is None:
        raise OFDFormatError(f"OFD: {name} is not a Signature with SignedInfo", f"OFD 文件：{name} 不是含 SignedInfo 的签名描述文件")
    provider = child(info, "Provider")
    references = child(info, "References")
    seal = child(info, "Seal")
    return SignatureXml(
        raw=raw,
        provider=dict(provider.attrib) if provider is not None else {},
        signature_method=child_text(info, "SignatureMethod"),
        signature_date_time=child_text(info, "SignatureDateTime"),
        check_method=(references.get("CheckMethod") if references is not None else None) or "MD5",
        references=tuple(Reference(r.get("FileRef", ""), child_text(r, "CheckValue") or "")
                         for r in (children(references, "Reference") if references is not None else [])),
        stamp_annots=tuple(StampAnnot(s.get("ID", ""), s.get("PageRef", ""), box(s.get("Boundary")), box(s.get("Clip")))
                           for s in children(info, "StampAnnot")),
        seal_loc=child_text(seal, "BaseLoc") if seal is not None else None,
        signed_value_loc=child_text(root, "SignedValue"),
    )


CST = timezone(timedelta(hours=8))


def parse_signature_date_time(text: str | None) -> datetime | None:
    """SignatureDateTime as producers write it ("2020-04-22 16:22:44", "2024-01-01T00:00:00",
    "20201010151120", "20210331075023Z"); without a zone it is Beijing time. None if unreadable."""
    digits = re.sub(r"\D", "", (text or "").split(".")[0].split("+")[0])
    if len(digits) < 14:
        return None
    try:
        value = datetime.strptime(digits[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return value.replace(tzinfo=UTC if (text or "").strip().endswith("Z") else CST)


def check_method_algorithm(check_method: str) -> HashAlgorithm | None:
    """The digest a References@CheckMethod names, None if we do not accept it (fail closed)."""
    key = check_method.strip().lower()
    if key in _CHECK_METHODS:
        return hash_algorithm(_CHECK_METHODS[key])
    if key in _LEGACY:
        return _legacy(key)
    return None


def _legacy(key: str) -> HashAlgorithm:
    new = hashlib.md5 if key == "md5" else hashlib.sha1
    return HashAlgorithm(key.upper(), "", new().digest_size, new)


def digest_value(algorithm: HashAlgorithm, content: bytes) -> str:
    return base64.b64encode(algorithm.digest(content)).decode()


@dataclass(frozen=True)
class Stamp:
    """Where a seal appears: page index (0-based), appearance box in mm, optional clip."""

    page: int
    boundary: Box
    clip: Box | None = None


@dataclass(frozen=True)
class Provider:
    name: str = "UIA-Signer"
    version: str = "1.0"
    company: str | None = None


def _ofd(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _serialise(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _id_number(value: str | None) -> int:
    digits = re.findall(r"\d+", value or "")
    return int(digits[-1]) if digits else 0


def sign_ofd(data: bytes, signed_value: SignedValueCallback, *, sign_type: str = "Seal", seal: bytes | None = None,
             stamps: Sequence[Stamp] = (), provider: Provider = Provider(), signing_time: datetime | None = None) -> bytes:
    """Add one signature to an OFD package and return the new package bytes.

    Every existing part keeps its exact bytes except OFD.xml on the first signature (it
    gains DocBody/Signatures) and Signatures.xml (it gains the new entry)."""
    if sign_type not in ("Seal", "Sign"):
        raise InvalidInput(f"unknown OFD signature type {sign_type!r}", f"未知的 OFD 签名类型 {sign_type!r}")
    if sign_type == "Seal" and not seal:
        raise InvalidInput("a Seal signature needs the seal (SES_Seal DER)", "签章需要电子印章数据（SES_Seal DER）")
    package = Package.from_bytes(data)
    document = read_package(package, contents=False)  # the pages' IDs and the signatures are all it needs
    parts = dict(package.parts)
    doc_dir = posixpath.dirname(document.doc_root)
    signs_dir = posixpath.join(doc_dir, "Signs")

    # 1. OFD.xml → DocBody/Signatures (only the first time)
    signatures_part = document.signatures_part
    if signatures_part is None:
        signatures_part = posixpath.join(signs_dir, "Signatures.xml")
        if document.signatures_loc is None:
            entry = package.xml("OFD.xml")
            body = child(entry, "DocBody")
            element = etree.SubElement(body, _ofd("Signatures"))
            element.text = to_loc(signatures_part)
            parts["OFD.xml"] = _serialise(entry)
        else:
            signatures_part = package.locate("OFD.xml", document.signatures_loc) or \
                document.signatures_loc.strip().lstrip("/")
    # 2. Signatures.xml: the new entry and MaxSignId
    if signatures_part in package:
        index = package.xml(signatures_part)
        for earlier in document.signatures:
            if earlier.part and any(r.file_ref.strip().lstrip("/") == signatures_part
                                    for r in parse_signature_xml(package.read(earlier.part)).references):
                raise InvalidInput(f"signature {earlier.id} protects Signatures.xml: no signature can be added",
                                   f"签名 {earlier.id} 保护了签名列表文件，不能再追加签名")
    else:
        index = etree.Element(_ofd("Signatures"), nsmap={"ofd": NS})
    used = [_id_number(child_text(index, "MaxSignId"))] + [_id_number(s.get("ID")) for s in children(index, "Signature")]
    next_id = max(used) + 1
    signature_id = f"s{next_id:03d}"
    stamp_ids = [f"s{next_id + 1 + i:03d}" for i in range(len(stamps))]
    max_sign_id = stamp_ids[-1] if stamp_ids else signature_id
    k = 0
    while any(name.startswith(f"{signs_dir}/Sign_{k}/") for name in parts):
        k += 1
    sign_dir = f"{signs_dir}/Sign_{k}"
    signature_part = f"{sign_dir}/Signature.xml"
    max_element = child(index, "MaxSignId")
    if max_element is None:
        max_element = etree.Element(_ofd("MaxSignId"))
        index.insert(0, max_element)
    max_element.text = max_sign_id
    etree.SubElement(index, _ofd("Signature"), ID=signature_id, Type=sign_type, BaseLoc=to_loc(signature_part))
    parts[signatures_part] = _serialise(index)

    # 3. the seal
    seal_part = None
    if sign_type == "Seal":
        if seal is None:
            raise InvalidInput("a Seal signature carries its seal (Seal.esl)", "签章须带印章数据（Seal.esl）")
        seal_part = f"{sign_dir}/Seal.esl"
        parts[seal_part] = bytes(seal)

    # 4. Signature.xml over every part but Signatures.xml
    pages = document.pages
    root = etree.Element(_ofd("Signature"), nsmap={"ofd": NS})
    info = etree.SubElement(root, _ofd("SignedInfo"))
    attributes = {"ProviderName": provider.name, "Version": provider.version}
    if provider.company:
        attributes["Company"] = provider.company
    etree.SubElement(info, _ofd("Provider"), **attributes)
    etree.SubElement(info, _ofd("SignatureMethod")).text = SM2_WITH_SM3
    when = (signing_time or utc_now()).astimezone(UTC)
    etree.SubElement(info, _ofd("SignatureDateTime")).text = when.strftime("%Y-%m-%d %H:%M:%S")
    references = etree.SubElement(info, _ofd("References"), CheckMethod="SM3")
    for name, content in parts.items():
        if name == signatures_part:
            continue
        reference = etree.SubElement(references, _ofd("Reference"), FileRef=to_loc(name))
        etree.SubElement(reference, _ofd("CheckValue")).text = base64.b64encode(sm3(content)).decode()
    for stamp, stamp_id in zip(stamps, stamp_ids, strict=True):
        if not 0 <= stamp.page < len(pages):
            raise InvalidInput(f"no page {stamp.page} for the stamp", f"盖章页 {stamp.page} 不存在")
        attributes = {"ID": stamp_id, "PageRef": pages[stamp.page].id, "Boundary": " ".join(map(_fmt, stamp.boundary))}
        if stamp.clip:
            attributes["Clip"] = " ".join(map(_fmt, stamp.clip))
        etree.SubElement(info, _ofd("StampAnnot"), **attributes)
    if seal_part:
        etree.SubElement(etree.SubElement(info, _ofd("Seal")), _ofd("BaseLoc")).text = to_loc(seal_part)
    etree.SubElement(root, _ofd("SignedValue")).text = to_loc(f"{sign_dir}/SignedValue.dat")
    signature_xml = _serialise(root)

    # 5. SignedValue.dat over the exact Signature.xml bytes
    parts[signature_part] = signature_xml
    parts[f"{sign_dir}/SignedValue.dat"] = bytes(signed_value(signature_xml, to_loc(signature_part)))
    return write_package(parts, package.stored)
