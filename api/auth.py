"""Bearer-token authorisation for the JSON API (RFC 6750).

A view declares the scopes it needs with ``@require_scopes("seal:sign")``; the token is an
access token this service issued (``identity.tokens``), validated for signature, issuer,
expiry and revocation before the view runs. The view reads the caller from
``flask.g.access_token`` (:class:`identity.tokens.AccessToken`: ``client_id``, ``subject``,
``scopes``). A missing or bad token is 401 with ``WWW-Authenticate: Bearer``; a valid token
without the scope is 403 ``insufficient_scope``; both refusals are audited. Acts reserved to
officers also call ``acting_officer(role)``: the token's person must hold that role.
"""

from functools import wraps

from flask import current_app, g, request

from identity import subjects, tokens
from trust import audit, duties
from trust.errors import InvalidToken, PermissionDenied, Unauthenticated

MAX_TOKEN_CHARS = 8192  # larger than any token we issue; refused before parsing


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("a bearer access token is required (Authorization: Bearer …)",
                              "需要访问令牌（Authorization: Bearer …）")
    value = value.strip()
    if len(value) > MAX_TOKEN_CHARS:
        raise InvalidToken("the access token is too large", "访问令牌过长")
    return value


def _refuse(error, target: str) -> None:
    """Write the refusal to the audit log in its own transaction, then raise it. A refusal
    of someone without a valid token (anyone can cause those) is coalesced: one record per
    address, kind and minute, with the count of repeats (trust.audit.append_coalesced)."""
    client = getattr(g, "access_token", None) and g.access_token.client_id
    detail = {"path": request.path, "method": request.method, "code": error.code}
    with current_app.extensions["trust.sessions"]() as session, session.begin():
        if client:
            audit.append(session, actor=client, action="api.refused", target=target, detail=detail)
        else:
            address = request.remote_addr or ""
            audit.append_coalesced(session, "anonymous", "api.refused", target, {**detail, "address": address},
                                   key=f"api.refused:{address}:{error.code}")
    raise error


def current_token(*scopes: str) -> "tokens.AccessToken":
    """Validate the request's bearer token and check it carries every scope in ``scopes``."""
    settings = current_app.extensions["trust.settings"]
    keystore = current_app.extensions["trust.keystore"]
    try:
        token_string = bearer_token()
        with current_app.extensions["trust.sessions"]() as session:
            token = tokens.validate_access_token(session, keystore, token_string, issuer=settings.public_url)
    except Unauthenticated as error:
        _refuse(error, request.path)
    g.access_token = token
    missing = [scope for scope in scopes if scope not in token.scopes]
    if missing:
        _refuse(PermissionDenied(f"the access token lacks the scope {' '.join(missing)} (insufficient_scope)",
                                 f"访问令牌缺少权限范围 {' '.join(missing)}"), request.path)
    return token


def acting_officer(role: str) -> str:
    """The audit name of the person behind the request's (already validated) token, who must
    be an officer holding ``role`` or, for an administrative role, its duty's own role
    (trust.duties: ``security-admin`` may do what ``seal-admin`` may), and no second duty; a
    client's own token, or anyone else, is refused and audited. Officers log in with TOTP
    (identity.authn.totp_required), so such a token never rests on a password alone."""
    token = g.access_token
    held: frozenset[str] = frozenset()
    held_duties: frozenset[duties.Duty] = frozenset()
    if token.subject:
        with current_app.extensions["trust.sessions"]() as session:
            held, held_duties = subjects.roles(session, token.subject), subjects.person_duties(session, token.subject)
    try:
        duties.check_holding(held, held_duties, f"officer {token.subject}", PermissionDenied)
    except PermissionDenied as refused:
        _refuse(refused, request.path)
    needed = duties.ROLE_DUTY.get(role)
    if role not in held and (needed is None or needed.value not in held):
        if needed is None:
            error = PermissionDenied(en=f"only an officer with the role {role} may do this",
                                     zh=f"只有具备“{role}”角色的工作人员可以执行此操作")
        else:
            english, chinese = duties.NAMES[needed]
            error = PermissionDenied(en=f"only the {english} (role {needed.value} or {role}) may do this",
                                     zh=f"此操作须由{chinese}（角色 {needed.value} 或 {role}）执行")
        _refuse(error, request.path)
    return f"officer:{token.subject}"


def require_scopes(*scopes: str):
    """Decorator: the view runs only for a valid access token carrying every scope given."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            current_token(*scopes)
            return view(*args, **kwargs)
        return wrapper
    return decorate
