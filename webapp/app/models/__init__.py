"""SQLAlchemy 2.0 typed models, one module per aggregate."""

from webapp.app.models.file import File
from webapp.app.models.job import Job
from webapp.app.models.role import Role
from webapp.app.models.user import User
from webapp.app.models.voice import Voice, VoiceModel

__all__ = ["File", "Job", "Role", "User", "Voice", "VoiceModel"]
