"""roles get is_public; integer ids are never reused on SQLite

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Tables whose primary key is an integer: on SQLite they are rebuilt as AUTOINCREMENT so a
# deleted row's id is never handed to a new row (MySQL/MariaDB never reuse them anyway).
INTEGER_ID_TABLES = ('users', 'roles', 'generated_voices')


def upgrade():
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_public', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_index('ix_roles_public_created', ['is_public', 'created_at', 'id'],
                              unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        for table in INTEGER_ID_TABLES:
            with op.batch_alter_table(table, recreate='always',
                                      table_kwargs={'sqlite_autoincrement': True}):
                pass


def downgrade():
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.drop_index('ix_roles_public_created')
        batch_op.drop_column('is_public')
