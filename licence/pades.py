"""PAdES signatures on licence PDFs (ETSI EN 319 142-1), made with pyHanko while the private
key stays in the KeyStore (hsm/): pyHanko builds the CMS signed attributes and asks
``KeyStoreSigner`` for the raw signature, which is ``KeyStore.sign`` with the organisation's
ECDSA P-256 (or RSA) key. Common PDF readers accept no SM2, so a licence's PDF is signed
with the organisation's international certificate from ca/; its OFD stays the SM2 original.

Levels (ETSI EN 319 142-1): B-B (``/ETSI.CAdES.detached``, the signing certificate in the
signed attributes); B-T adds a signature time stamp, from this service's own ECDSA TSA
(``KeyStoreTimeStamper``, ca/tsa.py in process) or any RFC 3161 TSA pyHanko can reach; B-LT
puts the chain and revocation data into the document's DSS; B-LTA adds a document time
stamp over all of it. The revocation data of our own CAs is their current CRLs, taken in
process (``our_revocation_data``): the service does not fetch from itself over HTTP while it
holds a transaction.
"""

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any, cast

import PIL.Image
from asn1crypto import algos, ocsp as asn1_ocsp, tsp, x509 as asn1_x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp as ocsp_request

# We never let pyHanko fetch (the validation data is ours, taken in process): its warning that
# fetching is off says nothing an operator should act on, on every signature.
logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(
    lambda record: "fetching is not allowed" not in record.getMessage())
# pyHanko imports cryptography's DSA types (never used here), which warn on every import
warnings.filterwarnings("ignore", "DSA is deprecated", CryptographyDeprecationWarning)
from pyhanko import stamp
from pyhanko.pdf_utils import embed, images
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.general import SigningError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import CRLValidationError, OCSPValidationError, PathError, ValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore
from sqlalchemy.orm import Session

from ca import authority, crl, ocsp, tsa
from hsm.keystore import KeyRef, KeyStore, Usage
from trust.algorithms import signature_algorithm
from trust.errors import InvalidInput

# pyHanko asks for a signature of the final size before the real one, to reserve room
# for it: an ECDSA P-256 DER signature is at most 72 bytes, an RSA one the modulus size.
_PLACEHOLDER = {"ecdsa": 72}
# The KeyStore's algorithm (trust.algorithms) → pyHanko's name for the CMS signature mechanism.
_MECHANISMS = {"ecdsa-with-SHA256": "sha256_ecdsa", "ecdsa-with-SHA384": "sha384_ecdsa",
               "sha256WithRSAEncryption": "sha256_rsa", "sha384WithRSAEncryption": "sha384_rsa",
               "sha512WithRSAEncryption": "sha512_rsa"}


class KeyStoreSigner(signers.Signer):
    """A pyHanko signer whose raw signing is ``KeyStore.sign``."""

    def __init__(self, session: Session, keystore: KeyStore, key: KeyRef, certificate: bytes,
                 chain: tuple[bytes, ...] = (), *, usage: Usage = Usage.SEAL, actor: str = "licence-service"):
        # Usage.SEAL: ca/profiles keeps an organisation-signing key with the usage "seal", the
        # organisation's own signature, whether it seals an OFD (SM2) or signs a PDF (ECDSA).
        mechanism = _MECHANISMS.get(signature_algorithm(key.algorithm).name)
        if mechanism is None:
            raise InvalidInput(f"PDF signatures are ECDSA or RSA PKCS#1 v1.5 here, not {key.algorithm}",
                               f"PDF 签名须使用 ECDSA 或 RSA，不能使用 {key.algorithm}")
        self.session, self.keystore, self.key, self.usage, self.actor = session, keystore, key, usage, actor
        self._size = _PLACEHOLDER.get(mechanism.split("_")[-1])
        super().__init__(signing_cert=asn1_x509.Certificate.load(certificate),
                         cert_registry=SimpleCertificateStore.from_certs(
                             [asn1_x509.Certificate.load(der) for der in chain]),
                         signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}))

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            cert = self.signing_cert
            if cert is None:  # pyHanko's Signer may have none; ours is made with one
                raise SigningError("the signer has no certificate")
            size = self._size or (cert.public_key.bit_size + 7) // 8
            return bytes(size)
        return self.keystore.sign(self.session, self.key, data, usage=self.usage, actor=self.actor)


class KeyStoreTimeStamper(timestamps.TimeStamper):
    """Time stamps from this service's TSA (ca/tsa.py: an ECDSA TSA for SHA-2 imprints), asked
    in process; the TSA's key use is audited in the caller's transaction."""

    def __init__(self, session: Session, keystore: KeyStore):
        super().__init__()
        self.session, self.keystore = session, keystore

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(tsa.respond(self.session, self.keystore, req.dump()))


@dataclass(frozen=True)
class Appearance:
    """Where the signature sits, in PDF points from the bottom-left (x1, y1, x2, y2), and
    the picture it shows there (the seal's PNG or JPEG), if any."""

    box: tuple[float, float, float, float]
    page: int = 0
    picture: bytes | None = None

    def style(self) -> stamp.TextStampStyle | None:
        if self.picture is None:
            return None
        try:
            picture = PIL.Image.open(io.BytesIO(self.picture))
            picture.load()
        except (OSError, ValueError, PIL.Image.DecompressionBombError) as exc:
            raise InvalidInput(f"the signature's picture is not a readable image: {exc}",
                               f"签名外观的图像无法读取：{exc}") from None
        return stamp.TextStampStyle(stamp_text="", border_width=0, background_opacity=1.0,
                                    background=images.PdfImage(picture))


@dataclass(frozen=True)
class LongTerm:
    """What B-LT and B-LTA need: the trust anchors, the CA certificates below them, and
    revocation data (DER CRLs and OCSP responses) for every certificate on the paths of the
    signer and of the TSA."""

    roots: tuple[bytes, ...]
    intermediates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()
    archival: bool = True  # B-LTA: a document time stamp over the signature and its validation data

    def context(self) -> ValidationContext:
        return ValidationContext(trust_roots=[asn1_x509.Certificate.load(d) for d in self.roots],
                                 other_certs=[asn1_x509.Certificate.load(d) for d in self.intermediates],
                                 crls=list(self.crls), ocsps=list(self.ocsps), allow_fetching=False,
                                 revocation_mode="hard-fail")


def our_revocation_data(session: Session, keystore: KeyStore, hierarchy: str,
                        certificates: tuple[bytes, ...] = ()) -> LongTerm:
    """The anchors, CA certificates and current CRLs of one of our CA hierarchies (``ecdsa``
    for licence PDFs), read in process, and our OCSP responder's answers for ``certificates``
    (end-entity certificates of its issuing CA, such as the signer's) and for the TSA that
    stamps now.

    The OCSP answers are what keeps a signature verifiable after its certificate expired: a
    validator working in the past (ETSI EN 319 102-1 §5.6.2.4; pyHanko) must prove that the
    revocation data for the leaf was issued by someone it can place on a path, and the OCSP
    signer, certified by the issuing CA, can be; the CA's own CRL, in pyHanko's reading, cannot."""
    root_name, issuing_name = authority.hierarchy_names(hierarchy)
    root, issuing = authority.get_authority(session, root_name), authority.get_authority(session, issuing_name)
    crls = tuple(crl.current_crl(session, keystore, ca) for ca in (issuing, root))
    stamping = tsa.find_signer(session, keystore, hierarchy).certificate.der
    answers = tuple(_ocsp_answer(session, keystore, issuing_name, issuing.certificate, der)
                    for der in dict.fromkeys((*certificates, stamping)))
    return LongTerm(roots=(root.certificate,), intermediates=(issuing.certificate,), crls=crls, ocsps=answers)


def _ocsp_answer(session: Session, keystore: KeyStore, ca_name: str, issuer: bytes, certificate: bytes) -> bytes:
    request = ocsp_request.OCSPRequestBuilder().add_certificate(
        cx509.load_der_x509_certificate(certificate), cx509.load_der_x509_certificate(issuer), hashes.SHA256()).build()
    answer = ocsp.respond(session, keystore, ca_name, request.public_bytes(serialization.Encoding.DER))
    if asn1_ocsp.OCSPResponse.load(answer)["response_status"].native != "successful":
        raise InvalidInput(f"our OCSP responder did not answer for a certificate of {ca_name}",
                           f"本系统 OCSP 服务未能回答 {ca_name} 签发的证书的状态")
    return answer


def sign_pdf(pdf: bytes, signer: KeyStoreSigner, *, reason: str, location: str, field_name: str = "Signature1",
             appearance: Appearance | None = None, timestamper: timestamps.TimeStamper | None = None,
             long_term: LongTerm | None = None, attachments: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    """``pdf`` with a PAdES signature over the whole of it, as an incremental update: B-B;
    B-T with ``timestamper``'s signature time stamp; B-LT and B-LTA with ``long_term`` too.
    ``attachments`` (name, XML) are embedded files added in the signed update."""
    if long_term is not None and timestamper is None:
        raise InvalidInput("PAdES B-LT and B-LTA need a time stamp authority", "PAdES B-LT/B-LTA 需要时间戳服务")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
        for name, data in attachments:
            embed.embed_file(writer, embed.FileSpec(
                file_spec_string=name, file_name=name, description=name,
                embedded_data=embed.EmbeddedFileObject.from_file_data(writer, data=data, mime_type="application/xml")))
        # PDF rectangles are real numbers; pyHanko's hint says int
        spec = fields.SigFieldSpec(field_name, on_page=appearance.page, box=cast(Any, appearance.box)) \
            if appearance else None
        meta = signers.PdfSignatureMetadata(
            field_name=field_name, reason=reason, location=location, md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES, embed_validation_info=long_term is not None,
            use_pades_lta=bool(long_term and long_term.archival),
            validation_context=long_term.context() if long_term else None)
        out = io.BytesIO()
        signers.PdfSigner(meta, signer=signer, timestamper=timestamper, new_field_spec=spec,
                          stamp_style=appearance.style() if appearance else None).sign_pdf(writer, output=out)
    except (SigningError, PathError, ValidationError, CRLValidationError, OCSPValidationError) as exc:
        # a certificate on the signer's or the TSA's path that does not validate with the data given
        raise InvalidInput(f"the PDF could not be signed: {exc}", f"无法签署 PDF：{exc}") from None
    return out.getvalue()


def renew_archival_stamp(pdf: bytes, timestamper: timestamps.TimeStamper, long_term: LongTerm) -> bytes:
    """``pdf`` with the validation data of its newest document time stamp added to the DSS and
    a new document time stamp over all of it (PAdES B-LTA renewal), as an incremental update."""
    try:
        out = io.BytesIO()
        signers.PdfTimeStamper(timestamper).update_archival_timestamp_chain(
            PdfFileReader(io.BytesIO(pdf)), long_term.context(), in_place=False, output=out)
    except (SigningError, PathError, ValidationError, CRLValidationError, OCSPValidationError) as exc:
        raise InvalidInput(f"the PDF's time stamp could not be renewed: {exc}", f"无法续期 PDF 的时间戳：{exc}") from None
    return out.getvalue()
