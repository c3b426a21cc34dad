"""SQLAlchemy 2.0 typed models, one module per aggregate."""

from webapp.app.models.file import File
from webapp.app.models.user import User

__all__ = ["File", "User"]
