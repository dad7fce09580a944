"""States with their words: one ``StrEnum`` base for every lifecycle the service keeps
(seals, licences, approvals), so that a state's Chinese and English names live beside its
value and nowhere else.

    class SealStatus(BilingualState):
        ACTIVE = "active", "启用", "active"

``SealStatus("active")`` finds the member by its value; ``.zh`` and ``.en`` are its words.
"""

from enum import StrEnum


class BilingualState(StrEnum):
    zh: str
    en: str

    def __new__(cls, value: str, zh: str, en: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.zh = zh
        member.en = en
        return member
