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

    def __new__(cls, value: str, *words: str):
        # (value, zh, en) when the class is made; SealStatus("active") finds the member by
        # value alone, which is why the words are not named parameters (the type checker
        # reads this signature for both calls).
        member = str.__new__(cls, value)
        member._value_ = value
        member.zh, member.en = words
        return member
