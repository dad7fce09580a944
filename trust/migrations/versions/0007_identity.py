"""Identity: subjects, credentials, login throttling, sessions.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_subject",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("identifier", sa.String(32), nullable=False),
        sa.Column("assurance_level", sa.String(2), nullable=False),
        sa.Column("assurance_source", sa.Text, nullable=False),
        sa.Column("assurance_checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("department", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.LargeBinary),
        sa.Column("totp_key_id", sa.String(36)),
        sa.Column("totp_confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("totp_last_step", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "identifier", name="uq_identity_subject_identifier"),
        sa.CheckConstraint("kind IN ('person', 'legal_person', 'officer')", name="ck_identity_subject_kind"),
        sa.CheckConstraint("assurance_level IN ('L1', 'L2', 'L3')", name="ck_identity_subject_level"),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_identity_subject_status"),
    )
    op.create_table(
        "identity_role",
        sa.Column("subject_id", sa.String(32), sa.ForeignKey("identity_subject.id"), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
    )
    op.create_table(
        "identity_representative",
        sa.Column("legal_person_id", sa.String(32), sa.ForeignKey("identity_subject.id"), primary_key=True),
        sa.Column("person_id", sa.String(32), sa.ForeignKey("identity_subject.id"), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "identity_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "identity_login_session",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("cookie_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amr", sa.Text, nullable=False),
        sa.Column("acr", sa.String(200), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
    )
    op.create_index("ix_identity_login_session_subject", "identity_login_session", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_login_session_subject", "identity_login_session")
    op.drop_table("identity_login_session")
    op.drop_table("identity_throttle")
    op.drop_table("identity_representative")
    op.drop_table("identity_role")
    op.drop_table("identity_subject")
