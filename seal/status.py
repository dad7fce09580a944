"""The states of a seal in the registry (GB/T 38540 leaves the lifecycle to the
authority: applied, approved, made, then in use until revoked, expired or destroyed)."""

from trust.states import BilingualState


class SealStatus(BilingualState):
    APPLIED = "applied", "已申请", "applied"
    APPROVED = "approved", "已审批", "approved"
    MADE = "made", "已制作", "made"
    ACTIVE = "active", "启用", "active"
    SUSPENDED = "suspended", "暂停", "suspended"
    REVOKED = "revoked", "已撤销", "revoked"
    EXPIRED = "expired", "已过期", "expired"
    DESTROYED = "destroyed", "已销毁", "destroyed"
