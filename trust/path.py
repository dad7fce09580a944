"""Certification path validation (RFC 5280 §6) for SM2 and international chains.

``validate_path`` builds a path from the certificate to a trust anchor (issuer names
chain; among same-name issuers the one whose SKI equals the AKI is tried first and the
signature decides), then checks every certificate's validity at the given time, basic
constraints and path length, keyCertSign on every CA, and the revocation status of every
certificate below the anchor (trust.revocation). The result is the report's three checks:
``certificate``, ``chain`` and ``revocation``.

When fetching is allowed, an issuer that was not given is fetched from the certificate's
AIA caIssuers URL (RFC 5280 §4.2.2.1), with the revocation fetcher's hosts, time budget and
size limit. A fetched certificate is only a candidate, like a given intermediate: the path
must still reach a trusted root by signatures.

Trust anchors are inputs, not path members (§6.1.1): an anchor's own key usage or missing
basicConstraints only gives a WARNING, and its revocation is not checked.
"""

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import cms, pem

from trust.clock import utc_now
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.report import Check, CheckName as C, CheckStatus as S, Code, Message, check
from trust.revocation import Deadline, Fetcher, RevocationState, ca_issuers_urls, check_revocation, default_fetcher
from trust.truststore import trusted_roots
from trust.x509 import (
    MAX_PATH,
    SIGNING_USAGES,
    Certificate,
    as_certificate,
    load_certificates,
    parse_certificate,
    verify_issued_by,
)

MAX_SIGNATURE_CHECKS = 64
MAX_ISSUER_FETCHES = 4         # caIssuers URLs fetched per validation, each at most once
MAX_FETCHED_CERTIFICATES = 16  # per caIssuers answer
ISSUER_CACHE_S = 3600


@dataclass(frozen=True)
class PathResult:
    checks: tuple[Check, ...]                    # certificate, chain, revocation
    path: tuple[Certificate, ...] = field(default=())  # leaf first, trust anchor last (when found)

    def status(self, name: C) -> S:
        return next(c.status for c in self.checks if c.check == name)


def _stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%SZ}"


def _same(a: Certificate, b: Certificate) -> bool:
    return a.der == b.der or (a.subject_der == b.subject_der and a.public_key_info == b.public_key_info)


def validate_path(leaf, *, roots=None, purpose: str | None = None, session=None, intermediates=(),
                  at: datetime | None = None, fetch: bool | Fetcher = False, crls=(), ocsp=(),
                  leaf_usage: frozenset[str] | None = SIGNING_USAGES, now: datetime | None = None) -> PathResult:
    """Validate ``leaf`` at ``at`` (default now) against ``roots``, or the trust store's
    roots for ``purpose`` (with ``session``). ``crls``/``ocsp`` are DER CRLs and OCSP
    responses to use first. ``fetch`` allows fetching from the certificates' CRL
    distribution points and OCSP responders within the fetcher's time limit: True uses
    the process's fetcher (hosts from TRUST_REVOCATION_HOSTS), or pass a Fetcher; it also
    fetches missing issuers from AIA caIssuers URLs, within the same time limit.
    ``leaf_usage``: key usages of which the leaf needs one (None: do not check)."""
    now = now or utc_now()
    at = at or now
    leaf = as_certificate(leaf)
    if roots is None:
        if purpose is None or session is None:
            raise InvalidInput("give the trusted roots, or a purpose and a database session",
                               "须给出可信根，或给出用途与数据库会话")
        roots = trusted_roots(session, purpose)
    roots = [as_certificate(r) for r in roots]
    pool = [as_certificate(c) for c in intermediates]
    certificate = _certificate_check(leaf, at, leaf_usage)
    if not roots:
        return PathResult((certificate, check(C.CHAIN, S.INDETERMINATE, zh="未配置可信根证书", en="no trusted root is configured"),
                           _revocation_without_path()), (leaf,))
    fetcher = default_fetcher() if fetch is True else (fetch or None)
    issuers = _IssuerFetch(fetcher, Deadline(fetcher.time_limit), now) if fetcher else None
    path, chain = _build(leaf, roots, pool, at, issuers)
    if chain.status in (S.PASSED, S.WARNING):
        revocation = _revocation(path, at, now, crls, ocsp, fetcher, issuers.deadline if issuers else None)
    else:
        revocation = _revocation_without_path()
    return PathResult((certificate, chain, revocation), path)


def _certificate_check(leaf: Certificate, at: datetime, usages) -> Check:
    period = f"{_stamp(leaf.not_before)} – {_stamp(leaf.not_after)}"
    if not leaf.valid_at(at):
        return check(C.CERTIFICATE, S.FAILED, zh=f"证书在 {_stamp(at)} 不在有效期内（{period}）",
                     en=f"the certificate is not valid at {_stamp(at)} ({period})",
                     code=Code.NOT_YET_VALID if at < leaf.not_before else Code.EXPIRED)
    if usages and leaf.key_usage is not None and not leaf.key_usage & usages:
        wanted = ", ".join(sorted(usages))
        return check(C.CERTIFICATE, S.FAILED, zh=f"证书密钥用法不含所需用途（{wanted}）",
                     en=f"the certificate's key usage has none of {wanted}", code=Code.SIG_CONSTRAINTS_FAILURE)
    return check(C.CERTIFICATE, S.PASSED, zh=f"证书“{leaf.subject}”在 {_stamp(at)} 有效",
                 en=f"the certificate '{leaf.subject}' is valid at {_stamp(at)}")


# ---------------------------------------------------------------- path building

@dataclass(frozen=True)
class _Outcome:
    status: S
    reason: Message


def _issuer_candidates(cert: Certificate, certificates: list[Certificate]) -> list[Certificate]:
    named = [c for c in certificates if c.subject_der == cert.issuer_der and not _same(c, cert)]
    if cert.authority_key_id:  # AKI = SKI first; a mismatch is still tried, the signature decides
        named.sort(key=lambda c: c.subject_key_id != cert.authority_key_id)
    return named


def _build(leaf: Certificate, roots: list[Certificate], pool: list[Certificate], at: datetime,
           issuers: "_IssuerFetch | None"):
    """Depth-first over issuers; the first path that validates wins, else the most telling failure.
    An issuer found nowhere is fetched through ``issuers`` when given."""
    failures: list[tuple[tuple[Certificate, ...], _Outcome]] = []
    signature_checks = [MAX_SIGNATURE_CHECKS]  # many same-name certificates must not make this exponential

    def walk(path: list[Certificate]):
        current = path[-1]
        anchor = next((r for r in roots if _same(r, current)), None)
        if anchor is not None:
            outcome = _validate([*path[:-1], anchor], at)
            if outcome.status in (S.PASSED, S.WARNING):
                return tuple([*path[:-1], anchor]), outcome
            failures.append((tuple(path), outcome))
            return None
        if len(path) > MAX_PATH:
            failures.append((tuple(path), _Outcome(S.FAILED, Message("证书路径过长", "the certificate path is too long"))))
            return None
        candidates = _issuer_candidates(current, roots + pool)
        problems: list[Message] = []
        if not candidates and issuers is not None:
            fetched, problems = issuers.issuers_of(current)
            pool.extend(fetched)
            candidates = _issuer_candidates(current, roots + pool)
        if not candidates:
            failures.append((tuple(path), _Outcome(S.INDETERMINATE, Message(
                f"找不到通向可信根的路径（缺少“{current.issuer}”）" + "".join(f"；{p.zh}" for p in problems),
                f"no path to a trusted root (issuer '{current.issuer}' not available)"
                + "".join(f"; {p.en}" for p in problems)))))
        for candidate in candidates:
            if any(_same(candidate, c) for c in path):
                continue
            if signature_checks[0] == 0:
                failures.append((tuple(path), _Outcome(S.INDETERMINATE, Message(
                    "候选证书过多，放弃构建证书路径", "too many candidate certificates: path building gave up"))))
                return None
            signature_checks[0] -= 1
            try:
                verify_issued_by(current, candidate)
            except (InvalidSignature, UnsupportedAlgorithm) as exc:
                failures.append((tuple(path), _Outcome(S.FAILED, Message(
                    f"证书“{current.subject}”的签名无法用其颁发者公钥验证：{exc.zh}",
                    f"the signature on '{current.subject}' does not verify with its issuer's key: {exc.en}"))))
                continue
            found = walk([*path, candidate])
            if found:
                return found
        return None

    found = walk([leaf])
    if found:
        path, outcome = found
        return path, check(C.CHAIN, outcome.status, zh=outcome.reason.zh, en=outcome.reason.en)
    # A path that reached an anchor tells more than one that broke off; FAILED beats INDETERMINATE.
    reached = [f for f in failures if any(_same(r, f[0][-1]) for r in roots)]
    path, outcome = (reached or sorted(failures, key=lambda f: f[1].status != S.FAILED))[0]
    return path, check(C.CHAIN, outcome.status, zh=outcome.reason.zh, en=outcome.reason.en)


class _IssuerFetch:
    """Missing issuers from AIA caIssuers URLs: each URL once (no loops), at most
    MAX_ISSUER_FETCHES per validation, within the validation's time budget."""

    def __init__(self, fetcher: Fetcher, deadline: Deadline, now: datetime):
        self.fetcher, self.deadline, self.now = fetcher, deadline, now
        self.tried: set[str] = set()

    def issuers_of(self, cert: Certificate) -> tuple[list[Certificate], list[Message]]:
        """Certificates named as ``cert``'s issuer, and what went wrong on the way."""
        found: list[Certificate] = []
        problems: list[Message] = []
        for url in ca_issuers_urls(cert):
            if url in self.tried:
                continue
            if len(self.tried) >= MAX_ISSUER_FETCHES:
                problems.append(Message(f"已获取 {MAX_ISSUER_FETCHES} 个颁发者证书地址，不再获取 {url}",
                                        f"{MAX_ISSUER_FETCHES} issuer URLs were fetched already; {url} was not"))
                break
            self.tried.add(url)
            try:
                named = [c for c in self._fetch(url) if c.subject_der == cert.issuer_der]
            except InvalidInput as exc:
                problems.append(Message(f"无法从 {url} 获取颁发者证书：{exc.zh}",
                                        f"the issuer certificate could not be fetched from {url}: {exc.en}"))
                continue
            if not named:
                problems.append(Message(f"{url} 上没有“{cert.issuer}”的证书",
                                        f"{url} holds no certificate of '{cert.issuer}'"))
            found += named
        return found, problems

    def _fetch(self, url: str) -> tuple[Certificate, ...]:
        key = ("ca_issuers", url)
        data = self.fetcher.cached(key, self.now)
        if data is not None:
            return ca_issuers_certificates(data)
        data = self.fetcher.get(url, self.deadline)
        certificates = ca_issuers_certificates(data)
        self.fetcher.remember(key, data, self.now + timedelta(seconds=ISSUER_CACHE_S))
        return certificates


def ca_issuers_certificates(data: bytes) -> tuple[Certificate, ...]:
    """What a caIssuers URL serves: a DER or PEM certificate (or PEM bundle), or a PKCS#7
    certs-only SignedData (RFC 5280 §4.2.2.1). Raises InvalidInput."""
    if pem.detect(data):
        certificates = load_certificates(data)
    elif _is_content_info(data):
        certificates = _certs_only(data)
    else:
        certificates = (parse_certificate(data),)
    if not certificates:
        raise InvalidInput("the answer holds no certificate", "应答中没有证书")
    if len(certificates) > MAX_FETCHED_CERTIFICATES:
        raise InvalidInput(f"the answer holds more than {MAX_FETCHED_CERTIFICATES} certificates",
                           f"应答中的证书多于 {MAX_FETCHED_CERTIFICATES} 张")
    return certificates


def _is_content_info(data: bytes) -> bool:
    try:
        return cms.ContentInfo.load(data)["content_type"].dotted == "1.2.840.113549.1.7.2"
    except (ValueError, TypeError, KeyError):
        return False


def _certs_only(data: bytes) -> tuple[Certificate, ...]:
    try:
        signed = cms.ContentInfo.load(data, strict=True)["content"]
        choices = list(signed["certificates"] or [])
        if len(choices) > MAX_FETCHED_CERTIFICATES:
            raise InvalidInput(f"the answer holds more than {MAX_FETCHED_CERTIFICATES} certificates",
                               f"应答中的证书多于 {MAX_FETCHED_CERTIFICATES} 张")
        ders = [c.chosen.dump() for c in choices if c.name == "certificate"]
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"not a readable PKCS#7 certificate bundle: {str(exc)[:120]}",
                           "无法读取的 PKCS#7 证书包") from None
    return tuple(parse_certificate(der) for der in ders)


def _validate(path: list[Certificate], at: datetime) -> _Outcome:
    """RFC 5280 §6.1.3–6.1.4 on a path leaf … anchor whose signatures already verify."""
    anchor, warnings = path[-1], []
    for cert in path[:-1]:
        unknown = _unhandled_critical_extensions(cert)
        if unknown:
            return _Outcome(S.FAILED, Message(f"证书“{cert.subject}”含无法处理的关键扩展：{unknown}",
                                              f"certificate '{cert.subject}' has critical extensions we do not process: {unknown}"))
    for cert in path:
        if not cert.valid_at(at):
            return _Outcome(S.FAILED, Message(
                f"证书“{cert.subject}”在 {at:%Y-%m-%d %H:%M:%S}Z 不在有效期内",
                f"certificate '{cert.subject}' is not valid at {_stamp(at)}"))
    # Walk from the anchor down: max_path_length counts non-self-issued intermediates (§6.1.4 (l), (m)).
    max_path_length = len(path)
    if anchor.path_length is not None:
        max_path_length = anchor.path_length
    for cert in reversed(path[1:-1]):
        if cert.ca is not True:
            return _Outcome(S.FAILED, Message(f"颁发者“{cert.subject}”不是 CA 证书",
                                              f"issuer '{cert.subject}' is not a CA certificate"))
        if cert.key_usage is not None and "key_cert_sign" not in cert.key_usage:
            return _Outcome(S.FAILED, Message(f"颁发者“{cert.subject}”的密钥用法不含证书签名（keyCertSign）",
                                              f"issuer '{cert.subject}' has no keyCertSign in its key usage"))
        if not cert.self_issued:
            if max_path_length <= 0:
                return _Outcome(S.FAILED, Message(f"超出路径长度约束（pathLenConstraint），在“{cert.subject}”处",
                                                  f"the path length constraint is exceeded at '{cert.subject}'"))
            max_path_length -= 1
        if cert.path_length is not None:
            max_path_length = min(max_path_length, cert.path_length)
    if len(path) > 1:
        if anchor.ca is False:
            warnings.append(Message(f"可信根“{anchor.subject}”不是 CA 证书", f"trusted root '{anchor.subject}' is not a CA certificate"))
        if anchor.key_usage is not None and "key_cert_sign" not in anchor.key_usage:
            warnings.append(Message(f"可信根“{anchor.subject}”的密钥用法不含证书签名（keyCertSign）",
                                    f"trusted root '{anchor.subject}' has no keyCertSign in its key usage"))
    names = " → ".join(c.subject for c in path)
    if warnings:
        return _Outcome(S.WARNING, Message("证书链至可信根，但：" + "；".join(w.zh for w in warnings),
                                           "chains to a trusted root, but: " + "; ".join(w.en for w in warnings)))
    return _Outcome(S.PASSED, Message(f"证书链至可信根：{names}", f"chains to a trusted root: {names}"))


# Extensions this validation processes, or may ignore when critical because the initial
# policy set is any-policy (certificatePolicies) or they do not restrict the path (names).
_HANDLED_EXTENSIONS = {"2.5.29.15", "2.5.29.19", "2.5.29.37", "2.5.29.14", "2.5.29.35", "2.5.29.31",
                       "1.3.6.1.5.5.7.1.1", "2.5.29.17", "2.5.29.18", "2.5.29.32"}


def _unhandled_critical_extensions(cert: Certificate) -> str:
    """RFC 5280 §6.1.3 (f)/§6.1.4 (o): an unrecognised critical extension fails the path."""
    return ", ".join(oid for oid, critical, _value in cert.extensions if critical and oid not in _HANDLED_EXTENSIONS)


# ---------------------------------------------------------------- revocation

def _revocation_without_path() -> Check:
    return check(C.REVOCATION, S.INDETERMINATE, zh="未建立通向可信根的证书链，无法检查吊销状态",
                 en="no path to a trusted root, so the revocation status cannot be checked",
                 code=Code.NO_CERTIFICATE_CHAIN_FOUND)


def _revocation(path: tuple[Certificate, ...], at: datetime, now: datetime, crls, ocsp,
                fetcher: Fetcher | None, deadline: Deadline | None) -> Check:
    """Every certificate below the anchor, leaf first; the worst answer decides."""
    crls, ocsp = [bytes(c) for c in crls], [bytes(o) for o in ocsp]
    results = []
    for cert, issuer in itertools.pairwise(path):
        status = check_revocation(cert, issuer, at=at, now=now, crls=crls, ocsp_responses=ocsp,
                                  fetcher=fetcher, deadline=deadline)
        results.append((cert, status))
        if status.state == RevocationState.REVOKED:
            return check(C.REVOCATION, S.FAILED, zh=f"“{cert.subject}”：{status.reason.zh}", en=f"'{cert.subject}': {status.reason.en}")
    unknown = [(c, s) for c, s in results if s.state == RevocationState.UNKNOWN]
    if unknown:
        return check(C.REVOCATION, S.INDETERMINATE, zh="；".join(f"“{c.subject}”：{s.reason.zh}" for c, s in unknown),
                     en="; ".join(f"'{c.subject}': {s.reason.en}" for c, s in unknown))
    good = [(c, s) for c, s in results if s.state == RevocationState.GOOD]
    if not good:
        return check(C.REVOCATION, S.NOT_APPLICABLE, zh="证书未声明吊销服务（无 CRL 分发点或 OCSP 地址），且链接到可信根",
                     en="the certificate names no revocation service (no CRL distribution point or OCSP responder) "
                     "and chains to a trusted root")
    return check(C.REVOCATION, S.PASSED, zh="；".join(f"“{c.subject}”：{s.reason.zh}" for c, s in good),
                 en="; ".join(f"'{c.subject}': {s.reason.en}" for c, s in good))
