"""Roles: characters with a voice. A role is private to its owner unless
made public; a public role is read and talked to by every signed-in user, and only its
owner changes or deletes it. A role someone may not use answers as if it did not exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Role
from webapp.app.ownership import owned, visible
from webapp.app.pagination import paginate
from webapp.app.schemas import MAX_INT64
from webapp.app.services.voice_library import voices

_NEWEST_FIRST = (Role.created_at.desc(), Role.id.desc())


def create(owner_id: int, fields: dict[str, Any]) -> Role:
    voice = voices.resolve_usable(fields["voice_type"], owner_id)
    role = Role(owner_id=owner_id, name=fields["name"], description=fields["description"],
                gender=fields["gender"], age=fields["age"], voice_type=voice.voice_type,
                is_public=fields.get("is_public", False))
    db.session.add(role)
    db.session.commit()
    return role


def usable(role_id: int, user_id: int) -> Role:
    """A role the user may read and talk to: their own or a public one."""
    missing = ApiError(404, "role_not_found", "ROLE_NOT_FOUND")
    if not 1 <= role_id <= MAX_INT64:
        raise missing
    return visible(Role, role_id, user_id, missing)


def named(reference: str, user_id: int) -> Role:
    """A role the user may use, named by its id or its name (the user's own role of that
    name first, then the newest public one)."""
    reference = reference.strip()
    if reference.isdigit():
        return usable(int(reference), user_id)
    role = db.session.scalar(
        select(Role).where(Role.name == reference,
                           or_(Role.owner_id == user_id, Role.is_public.is_(True)))
        .order_by((Role.owner_id == user_id).desc(), *_NEWEST_FIRST).limit(1))
    if role is None:
        raise ApiError(404, "role_not_found", "ROLE_NOT_FOUND")
    return role


def _owned(role_id: int, user_id: int, denied_key: str) -> Role:
    return owned(Role, role_id, user_id, ApiError(403, denied_key, "FORBIDDEN"))


def update(role_id: int, user_id: int, fields: dict[str, Any]) -> Role:
    role = _owned(role_id, user_id, "role_update_denied")
    if "voice_type" in fields:
        fields["voice_type"] = voices.resolve_usable(fields["voice_type"], user_id).voice_type
    for name, value in fields.items():
        setattr(role, name, value)
    db.session.commit()
    return role


def delete(role_id: int, user_id: int) -> None:
    role = _owned(role_id, user_id, "role_delete_denied")
    db.session.delete(role)
    db.session.commit()


def page_usable(user_id: int, page_no: int, page_size: int) -> dict[str, Any]:
    """Every role the user may use: their own and the public ones, newest first."""
    query = (select(Role).where(or_(Role.owner_id == user_id, Role.is_public.is_(True)))
             .order_by(*_NEWEST_FIRST))
    return paginate(query, page_no, page_size, Role.to_dict, count=("roles", f"usable:{user_id}"))


def page_of_user(owner_id: int, viewer_id: int, page_no: int, page_size: int
                 ) -> dict[str, Any]:
    """A user's roles: all of them to that user, the public ones to everyone else."""
    query = select(Role).where(Role.owner_id == owner_id)
    scope = "all"
    if viewer_id != owner_id:
        query = query.where(Role.is_public.is_(True))
        scope = "public"
    return paginate(query.order_by(*_NEWEST_FIRST), page_no, page_size, Role.to_dict,
                    count=("roles", f"user:{owner_id}:{scope}"))
