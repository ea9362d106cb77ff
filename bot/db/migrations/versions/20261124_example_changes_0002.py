"""example-question changes waiting to be published

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('content_example_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=16), nullable=False),
    sa.Column('intent', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('old_text', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('publish_job_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['publish_job_id'], ['ops_publish_job.id'],
                            name=op.f('fk_content_example_change_publish_job_id_ops_publish_job'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_example_change'))
    )
    with op.batch_alter_table('content_example_change', schema=None) as batch_op:
        batch_op.create_index('ix_content_example_change_state', ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('content_example_change', schema=None) as batch_op:
        batch_op.drop_index('ix_content_example_change_state')
    op.drop_table('content_example_change')
