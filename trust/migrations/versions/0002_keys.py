"""Key custody: key versions with their lifecycle, and the key-encryption keys.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEY_STATES = ("pre-active", "active", "suspended", "deactivated", "compromised", "destroyed")


def upgrade() -> None:
    states = ", ".join(f"'{s}'" for s in KEY_STATES)
    op.create_table(
        "hsm_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("handle", sa.Text, nullable=False),
        sa.Column("algorithm", sa.Text, nullable=False),
        sa.Column("usages", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("exportable", sa.Boolean, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary),
        sa.Column("wrap_cipher", sa.String(16)),
        sa.Column("kek_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True)),
        sa.Column("suspended_at", sa.DateTime(timezone=True)),
        sa.Column("deactivated_at", sa.DateTime(timezone=True)),
        sa.Column("compromised_at", sa.DateTime(timezone=True)),
        sa.Column("destroyed_at", sa.DateTime(timezone=True)),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("label", "version", name="uq_hsm_keys_label_version"),
        sa.CheckConstraint(f"state IN ({states})", name="ck_hsm_keys_state"),
    )
    op.create_table(
        "hsm_keks",
        sa.Column("kek_id", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("hsm_keks")
    op.drop_table("hsm_keys")
