"""Verify every signature of an OFD document (spec ofd-signature.md §6).

For each Signature: the References (each file digested and compared, every failure naming
the file), the StampAnnot page references, the scope (what the signature leaves out, files
added after signing, and whether the document now uses a file it does not protect), and
the SignedValue through seal/ (data hash, signature, seal, certificates). The checks of
both are merged into one SignatureReport per signature.
"""

from collections import deque

from ofd.package import OFDFormatError, Package, parse_xml
from ofd.reader import Document, SignatureEntry, read_package, signature_entries, signature_parts
from ofd.signature import (
    SignatureXml,
    check_method_algorithm,
    digest_value,
    parse_signature_date_time,
    parse_signature_xml,
)
from seal.verify import verify_signed_value_for_ofd
from trust.archive import child, child_text, children
from trust.report import Check, CheckName as C, CheckStatus as S, Message, Report, SignatureReport, check

ENTRIES = "OFDEntries.xml"   # GM/T 0099 integrity protection file, at the package root
_ORDER = list(C)
_WORST = [S.FAILED, S.INDETERMINATE, S.WARNING, S.PASSED, S.NOT_APPLICABLE]


def verify_ofd(data: bytes, *, trusted_roots=(), certificates=(), seal_status=None) -> Report:
    """The report for an OFD file; OFDFormatError if the package cannot be read at all.

    `trusted_roots`: root certificates (DER); `certificates`: candidate signer certificates
    for signed values that carry none (legacy bare SM2 signatures of Type="Sign");
    `seal_status`: the seal registry's lookup (seal.registry.status_lookup), when there is one.

    A document whose structure no longer parses (a protected XML part altered) is still
    verified signature by signature, so the report names the altered file."""
    package = Package.from_bytes(data)
    signatures = []
    try:
        document = read_package(package, objects=False)  # the structure: the page objects are the signature's
        signatures_loc, signatures_part, entries = document.signatures_loc, document.signatures_part, document.signatures
        unreadable = None
    except OFDFormatError as e:
        document, unreadable = None, e
        signatures_loc, signatures_part = _signature_list(package)
        try:
            entries = signature_entries(package, signatures_part)
        except OFDFormatError as list_error:
            entries = ()
            signatures.append(SignatureReport("?", "Seal", (check(C.FORMAT, S.FAILED, zh=list_error.zh, en=list_error.en),)))
    if signatures_loc and signatures_part is None:
        signatures.append(SignatureReport("?", "Seal", (check(
            C.FORMAT, S.FAILED, zh=f"签名列表文件 {signatures_loc} 不存在",
            en=f"the signature list {signatures_loc} declared in OFD.xml is missing"),)))
    parsed = []
    protected_by_any: set[str] = set()
    for entry in entries:
        xml: SignatureXml | OFDFormatError | None
        try:
            xml = parse_signature_xml(package.read(entry.part), entry.part) if entry.part else None
        except OFDFormatError as e:
            xml = e
        if isinstance(xml, SignatureXml):
            protected_by_any |= _referenced(package, entry, xml)
        parsed.append((entry, xml))
    machinery = signature_parts(package, signatures_part, entries)
    for entry, xml in parsed:
        if xml is None:
            signatures.append(SignatureReport(entry.id, entry.type, (check(
                C.FORMAT, S.FAILED, zh=f"签名描述文件 {entry.base_loc} 不存在",
                en=f"the signature file {entry.base_loc} is missing"),)))
        elif isinstance(xml, OFDFormatError):
            signatures.append(SignatureReport(entry.id, entry.type, (check(C.FORMAT, S.FAILED, zh=xml.zh, en=xml.en),)))
        else:
            if document is None or unreadable is not None:
                why = unreadable or OFDFormatError("the document structure cannot be read", "文档结构无法读取")
                own = [check(C.FORMAT, S.FAILED, zh=f"文档结构无法读取：{why.zh}",
                             en=f"the document structure cannot be read: {why.en}"),
                       check(C.SCOPE, S.INDETERMINATE, zh="文档结构无法读取，无法判断保护范围",
                             en="the document structure cannot be read, so the scope cannot be judged")]
            else:
                own = [_stamps(document, xml), _scope(package, document, entry, xml, machinery, protected_by_any)]
            signatures.append(_verify_signature(package, entry, xml, [_integrity(package, entry, xml), *own],
                                                trusted_roots, certificates, seal_status))
    if ENTRIES in package:
        signatures.append(_verify_entries(package, trusted_roots, certificates))
    return Report("ofd", tuple(signatures))


def _verify_entries(package: Package, trusted_roots, certificates) -> SignatureReport:
    """GM/T 0099-2020 §7.4 integrity protection (防夹带): OFDEntries.xml lists every file of
    the package and is signed (GB/T 35275 SignedData over SM3 of its bytes). It protects
    against files smuggled into the package, not against changed content."""
    raw = package.read(ENTRIES)
    try:
        root = parse_xml(raw, ENTRIES)
    except OFDFormatError as e:
        return SignatureReport("OFDEntries", "Integrity", (check(C.FORMAT, S.FAILED, zh=e.zh, en=e.en),))
    file_list = child(root, "FileList")
    listed = {package.locate(ENTRIES, f.get("FileLoc", "")) or f.get("FileLoc", "")
              for f in (children(file_list, "File") if file_list is not None else [])}
    value_loc = child_text(root, "SignedValueLoc") or ""
    value_part = package.locate(ENTRIES, value_loc)
    if value_part is None:
        return SignatureReport("OFDEntries", "Integrity", (check(
            C.FORMAT, S.FAILED, zh=f"签名值文件 {value_loc} 不存在", en=f"the signed value file {value_loc} is missing"),))
    missing = sorted(name for name in listed if name not in package)
    smuggled = sorted(n for n in package.names() if n not in listed and n not in (ENTRIES, value_part))
    if missing or smuggled:
        names = ", ".join("/" + n for n in missing + smuggled)
        own = check(C.SCOPE, S.FAILED, zh=f"文件清单与文件包不一致（夹带或缺失）：{names}",
                    en=f"the package does not match the protected file list (smuggled or missing): {names}")
    else:
        own = check(C.SCOPE, S.PASSED, zh=f"文件包中的 {len(listed)} 个文件都在受保护的清单中",
                    en=f"all {len(listed)} files of the package are in the protected list")
    helper = verify_signed_value_for_ofd(package.read(value_part), raw, sign_type="Sign", trusted_roots=trusted_roots,
                                         signature_id="OFDEntries", certificates=certificates,
                                         signing_time=parse_signature_date_time(f"{root.get('CreationDate', '')} 00:00:00"))
    return _merge(SignatureEntry("OFDEntries", "Integrity", "/" + ENTRIES, ENTRIES), [own], helper)


def _signature_list(package: Package) -> tuple[str | None, str | None]:
    """Where Signatures.xml is when the document itself cannot be read: from OFD.xml if it
    parses, else the conventional place."""
    try:
        body = child(package.xml("OFD.xml"), "DocBody")
        loc = child_text(body, "Signatures") if body is not None else None
        return loc, package.locate("OFD.xml", loc) if loc else None
    except OFDFormatError:
        part = next((n for n in package.names() if n.lower().endswith("signs/signatures.xml")), None)
        return None, part


def _referenced(package: Package, entry: SignatureEntry, xml: SignatureXml) -> set[str]:
    found = set()
    for reference in xml.references:
        part = package.locate(entry.part or "", reference.file_ref)
        if part:
            found.add(part)
    return found


def _verify_signature(package: Package, entry: SignatureEntry, xml: SignatureXml, own: list[Check],
                      trusted_roots, certificates, seal_status=None) -> SignatureReport:
    base = entry.part or ""  # set: its Signature.xml was read
    signed_value_part = package.locate(base, xml.signed_value_loc or "")
    if signed_value_part is None:
        own.append(check(C.FORMAT, S.FAILED, zh=f"签名值文件 {xml.signed_value_loc} 不存在",
                         en=f"the signed value file {xml.signed_value_loc} is missing"))
        return _merge(entry, own, None)
    seal_part = package.locate(base, xml.seal_loc) if xml.seal_loc else None
    if xml.seal_loc and seal_part is None:
        own.append(check(C.SEAL_BINDING, S.FAILED, zh=f"印章文件 {xml.seal_loc} 不存在", en=f"the seal file {xml.seal_loc} is missing"))
    helper = verify_signed_value_for_ofd(
        package.read(signed_value_part), xml.raw, seal_esl=package.read(seal_part) if seal_part else None,
        sign_type=entry.type, trusted_roots=trusted_roots, signature_id=entry.id, certificates=certificates,
        signing_time=parse_signature_date_time(xml.signature_date_time), seal_status=seal_status)
    return _merge(entry, own, helper)


def _integrity(package: Package, entry: SignatureEntry, xml: SignatureXml) -> Check:
    algorithm = check_method_algorithm(xml.check_method)
    if algorithm is None:
        return check(C.INTEGRITY, S.FAILED, zh=f"不支持的摘要算法 CheckMethod={xml.check_method!r}",
                     en=f"unsupported digest CheckMethod={xml.check_method!r}")
    if not xml.references:
        return check(C.INTEGRITY, S.FAILED, zh="签名没有保护任何文件（References 为空）", en="the signature references no file")
    missing, changed = [], []
    for reference in xml.references:
        part = package.locate(entry.part or "", reference.file_ref)
        if part is None:
            missing.append(reference.file_ref)
        elif digest_value(algorithm, package.read(part)) != reference.check_value.strip():
            changed.append(reference.file_ref)
    if missing or changed:
        zh, en = [], []
        if changed:
            zh.append("签名后被修改的文件：" + "，".join(changed))
            en.append("changed after signing: " + ", ".join(changed))
        if missing:
            zh.append("签名后被删除的文件：" + "，".join(missing))
            en.append("removed after signing: " + ", ".join(missing))
        return check(C.INTEGRITY, S.FAILED, zh="；".join(zh), en="; ".join(en))
    n = len(xml.references)
    return check(C.INTEGRITY, S.PASSED, zh=f"{n} 个受保护文件的摘要（{algorithm.name}）全部一致",
                 en=f"all {n} protected files match their {algorithm.name} digests")


def _stamps(document: Document, xml: SignatureXml) -> Check:
    page_ids = {page.id for page in document.pages}
    bad = [s.page_ref for s in xml.stamp_annots if s.page_ref not in page_ids]
    if bad:
        return check(C.FORMAT, S.FAILED, zh=f"签章外观指向不存在的页面：{'，'.join(bad)}",
                     en=f"StampAnnot refers to pages that do not exist: {', '.join(bad)}")
    return check(C.FORMAT, S.PASSED, zh="签名描述文件结构正确", en="the signature file is well-formed")


def _reachable(document: Document) -> set[str]:
    seen, queue = {"OFD.xml"}, deque(["OFD.xml"])
    while queue:
        for target in document.links.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _scope(package: Package, document: Document, entry: SignatureEntry, xml: SignatureXml, machinery: set[str],
           protected_by_any: set[str]) -> Check:
    """What this signature leaves out. A page, template or resource that a file this
    signature protects points at, and that no signature protects, fails: it can be swapped
    (or was added after signing) and changes what the signed pages show."""
    protected = _referenced(package, entry, xml)
    used = _reachable(document)
    swapped: list[str] = []
    weak: list[str] = []
    added: list[str] = []
    for name in package.names():
        if name in protected or name in machinery:
            continue
        if name in used:
            pointed = any(name in document.links.get(source, ()) for source in protected)
            unprotected_content = name in document.content and name not in protected_by_any
            (swapped if pointed and unprotected_content else weak).append(name)
        elif name not in protected_by_any:
            added.append(name)
    if swapped:
        names = ", ".join("/" + n for n in swapped)
        return check(C.SCOPE, S.FAILED, zh=f"受保护的文件引用了未受此签名保护的文件：{names}",
                     en=f"protected files point at files this signature does not protect: {names}")
    if weak or added:
        zh, en = [], []
        if weak:
            names = ", ".join("/" + n for n in weak)
            zh.append(f"文档使用但未受保护的文件：{names}")
            en.append(f"used by the document but not protected: {names}")
        if added:
            names = ", ".join("/" + n for n in added)
            zh.append(f"未被任何签名保护的文件（可能在签名后加入）：{names}")
            en.append(f"not protected by any signature (added after signing?): {names}")
        return check(C.SCOPE, S.WARNING, zh="；".join(zh), en="; ".join(en))
    return check(C.SCOPE, S.PASSED, zh="签名保护文档的全部内容", en="the signature covers the whole document")


def _merge(entry: SignatureEntry, own: list[Check], helper: SignatureReport | None) -> SignatureReport:
    """One check per name: the worst status wins, reasons of equal status are joined."""
    by_name: dict[C, list[Check]] = {}
    for item in [*own, *(helper.checks if helper else ())]:
        by_name.setdefault(item.check, []).append(item)
    merged = []
    for name in sorted(by_name, key=_ORDER.index):
        items = by_name[name]
        worst = min((c.status for c in items), key=_WORST.index)
        chosen = [c for c in items if c.status == worst]
        merged.append(Check(name, worst, Message("；".join(c.reason.zh for c in chosen),
                                                  "; ".join(c.reason.en for c in chosen)), chosen[0].code))
    return SignatureReport(entry.id, entry.type, tuple(merged),
                           signer=helper.signer if helper else None, seal=helper.seal if helper else None,
                           signing_time=helper.signing_time if helper else None)
