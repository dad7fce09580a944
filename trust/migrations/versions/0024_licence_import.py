"""Bulk conversions submitted over HTTP as jobs, with their error reports (licence/imports.py).

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_import",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("type_code", sa.String(21), nullable=False),
        sa.Column("issuer_code", sa.String(18), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("converted", sa.Integer, nullable=False),
        sa.Column("done_before", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.Column("runner", sa.String(32)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_licence_import_status"),
    )
    op.create_index("ix_licence_import_client", "licence_import", ["client_id", "file_sha256"])
    op.create_table(
        "licence_import_error",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("import_id", sa.String(36), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("zh", sa.Text, nullable=False),
        sa.Column("en", sa.Text, nullable=False),
    )
    op.create_index("ix_licence_import_error_job", "licence_import_error", ["import_id", "row"])


def downgrade() -> None:
    op.drop_index("ix_licence_import_error_job", "licence_import_error")
    op.drop_table("licence_import_error")
    op.drop_index("ix_licence_import_client", "licence_import")
    op.drop_table("licence_import")
