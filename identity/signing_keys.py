"""The keys that sign tokens: one KeyStore label per JWS algorithm, "token/<alg>".

Each version's ``kid`` is its RFC 7638 thumbprint. ``rotate_signing_key`` makes a new
version that signs at once; the KeyStore deactivates the old one, which stays published
in the JWKS (and keeps verifying) until every token it signed has expired:
``MAX_TOKEN_LIFETIME`` (+ leeway) after its deactivation. A compromised or destroyed
version is dropped at once, so the tokens it signed stop validating.
"""

import threading
import time
import weakref
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hsm.keystore import KeyRef, KeyState, KeyStore, Usage
from identity import jose
from trust.clock import utc_now
from trust.db import end_reading
from trust.errors import InvalidInput, NotFound, UnsupportedAlgorithm
from trust.keys import PublicKey

SIGNING_ALGS = jose.ALGORITHMS                      # ("ES256", "RS256", "SM2")
LABEL_PREFIX = "token/"
MAX_TOKEN_LIFETIME = timedelta(hours=1)             # no token we issue lives longer
LEEWAY = timedelta(seconds=30)                      # clock skew accepted on exp/nbf
SYSTEM_ACTOR = "identity"

_public: dict[str, tuple[str, PublicKey]] = {}      # key id -> (kid, public key): both never change
# The token keys' versions and states, per KeyStore and database, re-read when older than
# the KeyStore's state_ttl: the window in which it sees another worker's state changes too.
_versions: "weakref.WeakKeyDictionary[KeyStore, dict[str, tuple[float, list[KeyRef]]]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def label(alg: str) -> str:
    if alg not in SIGNING_ALGS:
        raise UnsupportedAlgorithm(f"tokens are signed with {', '.join(SIGNING_ALGS)}, not {alg!r}",
                                   f"令牌签名算法只能是 {'、'.join(SIGNING_ALGS)}")
    return LABEL_PREFIX + alg


def _kid_and_key(session: Session, keystore: KeyStore, ref: KeyRef) -> tuple[str, PublicKey]:
    known = _public.get(ref.id)
    if known is None:
        public_key = keystore.public_key(session, ref)
        known = (jose.thumbprint(public_key), public_key)
        with _lock:
            _public[ref.id] = known
    return known


def _create(session: Session, keystore: KeyStore, alg: str) -> KeyRef:
    end_reading(session)  # made on first need, from a request that may only have read so far
    # Read again as a writer: a request that read before another made the key must use it.
    made = [ref for ref in keystore.list(session, label=label(alg)) if ref.state == KeyState.ACTIVE]
    if made:
        _forget_versions(keystore)
        return made[-1]
    with session.begin_nested():
        ref = keystore.generate(session, jose.KEYSTORE_ALGORITHMS[alg], label(alg), [Usage.TOKEN], actor=SYSTEM_ACTOR)
    _forget_versions(keystore)
    return ref


def ensure_signing_keys(session: Session, keystore: KeyStore) -> list[KeyRef]:
    """A signing key for every algorithm, made where missing (for `trustctl init`); the caller commits."""
    return [current_signing_key(session, keystore, alg)[0] for alg in SIGNING_ALGS]


def current_signing_key(session: Session, keystore: KeyStore, alg: str) -> tuple[KeyRef, str]:
    """The active version that signs ``alg`` tokens and its kid; made on first need. From
    the versions cached for verification (a state change shows within the state_ttl)."""
    wanted = label(alg)
    versions = [ref for ref in _token_key_versions(session, keystore, None) if ref.label == wanted]
    active = [ref for ref in versions if ref.state == KeyState.ACTIVE]
    if not active:  # the cache may predate another worker's first key: ask the database
        versions = keystore.list(session, label=wanted)
        active = [ref for ref in versions if ref.state == KeyState.ACTIVE]
    if not active:
        if versions:
            raise NotFound(f"no active key signs {alg} tokens (label {label(alg)}); rotate it",
                           f"没有可签发 {alg} 令牌的有效密钥（{label(alg)}），请轮换密钥")
        active = [_create(session, keystore, alg)]
    ref = active[-1]
    return ref, _kid_and_key(session, keystore, ref)[0]


def rotate_signing_key(session: Session, keystore: KeyStore, alg: str, *, actor: str) -> tuple[KeyRef, str]:
    """A new version signs from now on; the old stays published until its tokens expire.
    What `trustctl identity rotate-keys` calls; the caller commits."""
    if not keystore.list(session, label=label(alg)):
        raise NotFound(f"no key signs {alg} tokens yet", f"尚无签发 {alg} 令牌的密钥")
    ref = keystore.rotate(session, label(alg), actor=actor)
    _forget_versions(keystore)
    return ref, _kid_and_key(session, keystore, ref)[0]


def _published(ref: KeyRef, now: datetime) -> bool:
    if ref.state == KeyState.ACTIVE:
        return True
    if ref.state == KeyState.DEACTIVATED and ref.deactivated_at is not None:
        return now < ref.deactivated_at + MAX_TOKEN_LIFETIME + LEEWAY
    return False


def _forget_versions(keystore: KeyStore) -> None:
    with _lock:
        _versions.pop(keystore, None)


def _token_key_versions(session: Session, keystore: KeyStore, kid: str | None) -> list[KeyRef]:
    """Cached; re-read when stale, or when ``kid`` names a version not seen yet (a key
    another worker has just made or rotated to)."""
    database = str(session.get_bind().url)
    checked_at, refs = _versions.get(keystore, {}).get(database, (None, None))
    if (checked_at is None or time.monotonic() - checked_at > keystore.state_ttl
            or (kid is not None and all(_public.get(ref.id, ("",))[0] != kid for ref in refs))):
        checked_at = time.monotonic()
        refs = [ref for alg in SIGNING_ALGS for ref in keystore.list(session, label=label(alg))]
        with _lock:
            _versions.setdefault(keystore, {})[database] = (checked_at, refs)
    return refs


def verification_keys(session: Session, keystore: KeyStore, *, now: datetime | None = None,
                      kid: str | None = None) -> tuple[jose.VerificationKey, ...]:
    """The published versions, for jose.verify_compact; ``kid``: the one a token names."""
    now = now or utc_now()
    keys = []
    for ref in _token_key_versions(session, keystore, kid):
        if _published(ref, now):
            kid, public_key = _kid_and_key(session, keystore, ref)
            keys.append(jose.VerificationKey(kid, ref.label.removeprefix(LABEL_PREFIX), public_key))
    return tuple(keys)


def jwks(session: Session, keystore: KeyStore, *, now: datetime | None = None) -> dict:
    """The JWK Set served at /oauth/jwks (RFC 7517 §5), SM2 keys included."""
    return {"keys": [jose.public_jwk(key.public_key, kid=key.kid, alg=key.alg)
                     for key in verification_keys(session, keystore, now=now)]}


def check_lifetime(lifetime: int) -> timedelta:
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not 0 < lifetime <= MAX_TOKEN_LIFETIME.total_seconds():
        raise InvalidInput(f"a token lives 1 to {int(MAX_TOKEN_LIFETIME.total_seconds())} seconds",
                           f"令牌有效期应为 1 至 {int(MAX_TOKEN_LIFETIME.total_seconds())} 秒")
    return timedelta(seconds=lifetime)
