"""The public verification page of a licence, ``/v/<licence id>``: what a citizen's phone
opens when it scans the licence's QR code.

No login, phone first, in Chinese with English beside it: valid or not in one glance, then
the type, issuer, masked holder, validity, status, the seal picture and the time of the
check, and the licence's files (OFD, and PDF when issued) when its holder is a legal person.
The page reads the registry (licence.verify.standing decides); it shows no personal data
beyond the masked fields, loads nothing from elsewhere, and is never cached. An identifier
that is malformed or unknown gets a 404 page. Opened from a licence's QR code (the URL form of
licence/qr_payload.py, ``/V/<id>#ZZ1:…``), the page's own script sends the fragment, which the
browser never sends with the page request, to ``POST /api/v1/verify`` and shows the QR's
verdict beside the registry's.

The wallet (``/wallet``, a person logged in through our single sign-on) lists the person's
licences and their enterprises', lets them choose which 有条件 fields a presentation (亮证)
shows, grant and withdraw consents (forms with the login pages' CSRF token), and see the
departments' requests to the issuers and who used the licences.
"""

from datetime import timedelta

from flask import Blueprint, Response, current_app, redirect, render_template, request
from markupsafe import Markup

from api.licence_api import holder_codes
from api.oidc_http import csrf_refused, form_page, signed_in_subject
from identity.clients import get_client
from licence import presentation, qr_keys, registry, share_requests, sharing, status_list, types
from licence.catalogue import Sharing
from licence.layout import qr_code
from licence.metadata import LONG_TERM, HolderCodeType
from licence.registry import LicenceStatus
from licence.verify import holder_view, mask_id_number, standing
from seal import registry as seals
from trust.clock import BEIJING, beijing_date, utc_now
from trust.errors import InvalidInput, NotFound

blueprint = Blueprint("licence_pages", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/licence-static")

PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; " \
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# What the page says in large type, by status (superseded has no code: spec §8).
HEADLINE = {
    LicenceStatus.VALID: ("有效", "Valid"), LicenceStatus.SUSPENDED: ("已暂扣", "Suspended"),
    LicenceStatus.WITHDRAWN: ("已撤销", "Annulled"), LicenceStatus.CANCELLED: ("已注销", "Cancelled"),
    LicenceStatus.EXPIRED: ("已失效", "Expired"), LicenceStatus.TRANSFERRED: ("已转出", "Transferred out"),
    LicenceStatus.REVOKED: ("已吊销", "Revoked"), LicenceStatus.OTHER: ("无效", "Not valid"),
}
CONSENT_DAYS = (7, 30, 90, 365)   # the periods the wallet offers for a consent
PICTURE_TYPES = {"PNG": "image/png", "JPG": "image/jpeg", "JPEG": "image/jpeg"}


def _page(template: str, status: int, **context) -> Response:
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _find(licence_id: str) -> registry.LicenceRecord | None:
    with current_app.extensions["trust.sessions"]() as session:
        try:
            return registry.get(session, licence_id)
        except (NotFound, InvalidInput):
            return None


@blueprint.get("/v/<licence_id>")
@blueprint.get("/V/<licence_id>")  # the QR's URL form, upper case to stay QR alphanumeric
def verification_page(licence_id: str):
    record = _find(licence_id)
    if record is None:
        return _page("licence/not_found.html", 404, licence_id=licence_id[:140])
    now = utc_now()
    ok, why = standing(record, beijing_date(now))
    if ok:
        headline = HEADLINE[LicenceStatus.VALID]
    elif record.superseded_by:
        headline = ("已变更", "Superseded")
    elif record.status == LicenceStatus.VALID:  # out of its validity period, not yet marked by cron
        headline = HEADLINE[LicenceStatus.EXPIRED]
    else:
        headline = HEADLINE[record.status]
    r = record.record
    code_type = HolderCodeType(r["holder"]["code_type"])
    return _page("licence/verify.html", 200, ok=ok, headline=headline, why=why, record=record, r=r,
                 downloads=_downloads(record),
                 holder=holder_view(r["holder"]["name"], r["holder"]["code"], code_type),
                 licence_no=r["licence_no"] if code_type == HolderCodeType.CREDIT_CODE
                 else mask_id_number(r["licence_no"]),
                 valid_to=r["valid_to"] or LONG_TERM, checked_at=now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"))


def _downloads(record: registry.LicenceRecord) -> tuple[str, ...] | None:
    """The files the page offers: a legal person's licence is public (the credit publicity
    system), so its OFD and PDF are; a natural person's carries the whole ID number, and its
    identifier can be guessed, so its files are not (None)."""
    if record.record["holder"]["code_type"] != HolderCodeType.CREDIT_CODE.value:
        return None
    return ("ofd", "pdf") if record.pdf_sm3 else ("ofd",)


@blueprint.get("/v/<licence_id>/licence.<any(ofd, pdf):kind>")
def licence_file(licence_id: str, kind: str):
    record = _find(licence_id)
    if record is None or kind not in (_downloads(record) or ()):
        raise NotFound("no such licence file is offered here", "此处不提供该证照文件")
    with current_app.extensions["trust.sessions"]() as session:
        data = registry.ofd_file(session, record.licence_id) if kind == "ofd" \
            else registry.pdf_file(session, record.licence_id)
    return Response(data, mimetype="application/ofd" if kind == "ofd" else "application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{record.licence_id}.{kind}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@blueprint.get("/.well-known/licence-keys")
def licence_keys():
    """The signed list of licence QR keys (licence/qr_keys.py), for verifiers to cache."""
    with current_app.extensions["trust.sessions"]() as session:
        data = qr_keys.key_list(session, current_app.extensions["trust.keystore"],
                                public_url=current_app.extensions["trust.settings"].public_url)
        session.commit()  # the list signer's key use is audited
    return Response(data, mimetype="application/cose", headers={
        "Cache-Control": f"public, max-age={int(qr_keys.LIST_TTL.total_seconds()) // 24}",
        "Content-Disposition": 'attachment; filename="licence-keys.cose"'})


@blueprint.get("/api/v1/status-lists/<int:number>")
def licence_status_list(number: int):
    """A Token Status List of licences (licence/status_list.py), made from the registry now."""
    with current_app.extensions["trust.sessions"]() as session:
        data = status_list.token(session, current_app.extensions["trust.keystore"], number,
                                 public_url=current_app.extensions["trust.settings"].public_url)
        session.commit()  # the list signer's key use is audited
    return Response(data, mimetype=status_list.MEDIA_TYPE, headers={
        "Cache-Control": f"public, max-age={int(status_list.TTL.total_seconds()) // 6}"})


@blueprint.get("/v/<licence_id>/seal")
def seal_picture(licence_id: str):
    record = _find(licence_id)
    if record is None:
        raise NotFound("no such licence", "没有此证照")
    with current_app.extensions["trust.sessions"]() as session:
        seal = seals.get_seal(session, record.es_id)
    mimetype = PICTURE_TYPES.get(seal.picture_type.upper())
    if mimetype is None:
        raise NotFound("the seal's picture is not an image a browser shows", "印章图像不是浏览器可显示的格式")
    return Response(seal.picture, mimetype=mimetype, headers={"Cache-Control": "public, max-age=3600"})


# ---------------------------------------------------------------- the wallet (证照夹) and 亮证

def _wallet_holder(session):
    """The person logged in on this browser and the holder codes they speak for (their own
    and the enterprises they represent); None when no person is logged in."""
    person = signed_in_subject(session)
    if person is None or person.kind != "person":
        return None
    return person, holder_codes(session, person)


@blueprint.get("/wallet")
def wallet_page():
    """证照夹: the licences of the person and of the enterprises they represent, with 亮证 and
    who used them. Phone first, Chinese; the single sign-on login in front."""
    with current_app.extensions["trust.sessions"]() as session:
        holder = _wallet_holder(session)
        if holder is None:
            return redirect("/login?next=/wallet", 303)
        person, codes = holder
        found = [(record, _disclosable(session, record)) for record in sharing.licences_of(session, codes)]
        uses = sharing.uses_of(session, codes, limit=50)
        now = utc_now()
        consents = [(c, c.active(now), _client_name(session, c.client_id)) for c in sharing.consents_of(session, codes)]
        requests = [(r, _client_name(session, r.client_id))
                    for r in share_requests.listed(session, holder_codes=codes)][::-1]
        choices = [(f"{c.client_id}|{purpose}", f"{_client_name(session, c.client_id)} · {purpose}")
                   for c in sharing.consumers(session) for purpose in c.purposes]
    return form_page("licence/wallet.html", 200, person=person, licences=found, uses=uses, consents=consents,
                     requests=requests, choices=choices, holders=codes, periods=CONSENT_DAYS)


def _disclosable(session, record: registry.LicenceRecord) -> list:
    """The 有条件 fields of a licence the holder may choose to show (亮证)."""
    licence_type = types.get(session, record.record["type_code"], record.record["type_version"]).licence_type
    return [f for f in licence_type.fields if f.sharing == Sharing.CONDITIONAL
            and sharing.field_value(record.record, f) is not None]


def _client_name(session, client_id: str) -> str:
    try:
        return get_client(session, client_id).name
    except NotFound:
        return client_id


@blueprint.post("/wallet/consents")
def wallet_consent():
    """The wallet's forms: grant a consent (consumer and purpose, holder, days) or withdraw one."""
    if refused := csrf_refused():
        return refused
    with current_app.extensions["trust.sessions"]() as session:
        holder = _wallet_holder(session)
        if holder is None:
            return redirect("/login?next=/wallet", 303)
        person, codes = holder
        actor = f"person:{person.id}"
        try:
            if request.form.get("withdraw"):
                sharing.withdraw_consent(session, request.form["withdraw"], holder_codes=codes, actor=actor)
            else:
                client_id, _, purpose = request.form.get("consumer", "").partition("|")
                holder_code = request.form.get("holder", "")
                days = request.form.get("days", "")
                if holder_code not in codes or days not in {str(d) for d in CONSENT_DAYS}:
                    raise InvalidInput(en="choose a holder of yours and a period offered",
                                       zh="请选择本人或所代表的企业，以及所列期限")
                sharing.grant_consent(session, holder_code, client_id, purpose,
                                      utc_now() + timedelta(days=int(days)), actor=actor)
        except (InvalidInput, NotFound) as e:
            return form_page("identity/error.html", 400, title_zh="未能完成", detail_zh=e.zh, detail_en=e.en)
        session.commit()
    return redirect("/wallet#consents", 303)


@blueprint.get("/wallet/show/<licence_id>")
def wallet_show(licence_id: str):
    """亮证: a fresh presentation of one of the person's licences, as a QR code a verifier's
    phone opens, good for a minute; ``disclose`` names the 有条件 fields the holder shows."""
    with current_app.extensions["trust.sessions"]() as session:
        holder = _wallet_holder(session)
        if holder is None:
            return redirect("/login?next=/wallet", 303)
        person, codes = holder
        try:
            record = registry.get(session, licence_id)
        except (NotFound, InvalidInput):
            record = None
        if record is None or record.record["holder"]["code"] not in codes:
            return _page("licence/not_found.html", 404, licence_id=licence_id[:140])
        text, expires = presentation.present(session, current_app.extensions["trust.keystore"], record,
                                             request.args.getlist("disclose")[:50], actor=f"person:{person.id}")
        session.commit()
    url = f"{current_app.extensions['trust.settings'].public_url.rstrip('/')}/v/p#{text}"
    svg = qr_code(url).svg_inline(scale=4, border=4, dark="#1d2733")
    return _page("licence/show.html", 200, record=record, url=url, svg=Markup(svg),
                 seconds=int(presentation.TTL.total_seconds()),
                 expires=expires.astimezone(BEIJING).strftime("%H:%M:%S"))


@blueprint.get("/v/p")
def presentation_page():
    """What a verifier's phone opens from a 亮证 code: the page's script sends the presentation
    in the fragment with a nonce of its own to POST /api/v1/verify and shows the verdict."""
    return _page("licence/presentation.html", 200)
