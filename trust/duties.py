"""Separation of administrator duties (三员分立), as GB/T 22239-2019 asks at level 3.

Three duties, never held together by one person: the system administrator (系统管理员:
clients, consumers, configuration, the catalogue, accounts), the security administrator
(安全管理员: keys, approvals, seals, the CA, the trust store) and the audit administrator
(审计管理员: reads the audit log, exports it, counts usage, and nothing else).

This module is the one table of which duty each administrative act needs; the two ways an
administrator proves who they are check it: an SM2 credential (``hsm.officers.authenticate``,
the command line and signed approvals) and an access token from a TOTP login
(``api.auth.acting_officer``, the JSON API). A duty is also a role name in the identity
register, so an officer account is given one with ``--role security-admin``; the finer
roles the API already knew (``seal-admin``, ``ca-officer``, ``licence-admin``) each
belong to one duty.

On the command line the licence authority's own acts (issuing, the lifecycle, conversion,
answering a consumer's request) are done under keys in custody, so by security
administrators; department staff do them through the API with the business role
``licence-admin``, which is not an administrator's act. Housekeeping that cron runs by rules
already set (expiring seals and licences, purging expired tokens, making due PDFs, renewing
archive timestamps, signing the audit checkpoint) is nobody's act and needs no credential.
"""

from enum import StrEnum

from trust.errors import InvalidInput, TrustError


class Duty(StrEnum):
    SYSTEM = "sys-admin"
    SECURITY = "security-admin"
    AUDIT = "audit-admin"


NAMES = {Duty.SYSTEM: ("system administrator", "系统管理员"),
         Duty.SECURITY: ("security administrator", "安全管理员"),
         Duty.AUDIT: ("audit administrator", "审计管理员")}

# Identity roles that are administrative, with their duty. Roles not named here
# (licence-officer, licence-admin: a department's staff managing its licences) are
# business roles and hold no duty; an audit administrator holds none of them either.
ROLE_DUTY = {duty.value: duty for duty in Duty} | {
    "ca-officer": Duty.SECURITY,
    "seal-admin": Duty.SECURITY,
}

# Acts by name (the action of the signed statement, as the audit log records it); the
# longest matching prefix decides. An act named nowhere is a programming error.
ACT_DUTY = {
    "identity.account.": Duty.SYSTEM,
    "identity.client.": Duty.SYSTEM,
    "identity.officer.": Duty.SYSTEM,
    "identity.federation.": Duty.SYSTEM,
    "licence.type.": Duty.SYSTEM,
    "licence.issuer": Duty.SYSTEM,
    "licence.consumer.": Duty.SYSTEM,
    "backup.": Duty.SYSTEM,
    "key.": Duty.SECURITY,
    "identity.signing-key.": Duty.SECURITY,
    "kek.": Duty.SECURITY,
    "approval.": Duty.SECURITY,
    "policy.": Duty.SECURITY,
    "ca.": Duty.SECURITY,
    "trust.root.": Duty.SECURITY,
    "seal.": Duty.SECURITY,
    "licence.qr_key.": Duty.SECURITY,
    "licence.issue": Duty.SECURITY,
    "licence.suspend": Duty.SECURITY,
    "licence.resume": Duty.SECURITY,
    "licence.revoke": Duty.SECURITY,
    "licence.annul": Duty.SECURITY,
    "licence.cancel": Duty.SECURITY,
    "licence.convert": Duty.SECURITY,
    "licence.request.": Duty.SECURITY,
    "audit.search": Duty.AUDIT,
    "audit.export": Duty.AUDIT,
    "audit.usage": Duty.AUDIT,
}


def duty_of_act(act: str) -> Duty:
    matches = [prefix for prefix in ACT_DUTY if act == prefix or (prefix.endswith(".") and act.startswith(prefix))]
    if not matches:
        raise ValueError(f"the act {act!r} names no administrator duty (add it to trust.duties.ACT_DUTY)")
    return ACT_DUTY[max(matches, key=len)]


def duties_of_roles(roles) -> frozenset[Duty]:
    return frozenset(ROLE_DUTY[role] for role in roles if role in ROLE_DUTY)


def parse(value: str) -> Duty:
    try:
        return Duty(value)
    except ValueError:
        raise InvalidInput(en=f"a duty is one of {', '.join(Duty)}, not {value[:40]!r}",
                           zh=f"管理员职责须为 {'、'.join(Duty)} 之一") from None


def check_single(duties, who: str, error: type[TrustError] = InvalidInput) -> None:
    """Raise ``error`` if ``duties`` are more than one: the three are never held together.
    InvalidInput when a role is given; PermissionDenied when a person found holding two
    (written into the database by hand, say) tries to act."""
    names = sorted(set(duties))
    if len(names) > 1:
        raise error(
            en=f"{who} would hold the separated duties {' and '.join(names)}; system, security and audit "
               f"administration are held by different people",
            zh=f"{who} 将同时担任{'和'.join(NAMES[Duty(d)][1] for d in names)}；系统管理员、安全管理员、"
               f"审计管理员须由不同人员担任")


def check_holding(roles, held: frozenset[Duty], who: str, error: type[TrustError] = InvalidInput) -> None:
    """``check_single``, and an audit administrator holds no other role at all: they read
    the log of everyone else's acts, so they do none of them."""
    check_single(held, who, error)
    others = sorted(set(roles) - {Duty.AUDIT.value})
    if Duty.AUDIT in held and others:
        raise error(en=f"{who} is an audit administrator and may hold no other role ({', '.join(others)})",
                    zh=f"{who} 为审计管理员，不得兼任其他角色（{'、'.join(others)}）")
