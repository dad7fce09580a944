"""A licence QR checked online against our registry: what ``POST /api/v1/verify`` answers for
``{"qr": text}`` and what the ``/v/`` page shows beside the registry's own verdict when the
URL it was opened with carries the payload in its fragment (spec §9).

The same checks as offline (licence.qr_payload.verify), from the freshest sources: the keys
as the key list would list them now, the status list as the registry stands now, and, as the
file whose face the payload binds, the licence's OFD in the registry.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from licence import qr_keys, qr_payload, registry, status_list
from licence.qr_payload import PayloadError
from trust.clock import utc_now
from trust.errors import InvalidInput, NotFound
from trust.report import Report


def verify_online(session: Session, text: str, *, public_url: str, clock: Callable[[], datetime] = utc_now) -> Report:
    keys = [replace(k.key, service=public_url) for k in qr_keys.listed(session)]
    try:
        claims = qr_payload.decode_any(text).claims
    except PayloadError:
        return qr_payload.verify(text, keys, clock=clock)  # the format failure, named
    statuses = file = None
    if claims.status is not None:
        try:
            statuses = status_list.current(session, claims.status[0], public_url=public_url, clock=clock)
        except NotFound:
            statuses = None
    try:
        file = registry.ofd_file(session, claims.licence_id)
    except (NotFound, InvalidInput):
        file = None
    return qr_payload.verify(text, keys, file=file, statuses=statuses, clock=clock)
