"""The trust store: trusted root certificates per purpose, and a read-only summary view.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PURPOSES = ("seal", "licence", "token", "tls")


def upgrade() -> None:
    purposes = ", ".join(f"'{p}'" for p in PURPOSES)
    op.create_table(
        "trust_roots",
        sa.Column("purpose", sa.String(16), primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True),  # SHA-256 of the DER, hex
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.Text, nullable=False),
        sa.CheckConstraint(f"purpose IN ({purposes})", name="ck_trust_roots_purpose"),
    )
    op.execute("CREATE VIEW trust_roots_view AS "
               "SELECT purpose, fingerprint, subject, not_after, added_at, added_by FROM trust_roots")


def downgrade() -> None:
    op.execute("DROP VIEW trust_roots_view")
    op.drop_table("trust_roots")
