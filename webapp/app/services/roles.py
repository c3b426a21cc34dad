"""Seed 001's roles: characters with a voice; every user reads them, only the owner
changes or deletes one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from webapp.app.api import ApiError, paginate
from webapp.app.extensions import db
from webapp.app.models import Role
from webapp.app.services import voices


def create(owner_id: int, fields: dict[str, Any]) -> Role:
    voice = voices.resolve_usable(fields["voice_type"], owner_id)
    role = Role(owner_id=owner_id, name=fields["name"], description=fields["description"],
                gender=fields["gender"], age=fields["age"], voice_type=voice.voice_type)
    db.session.add(role)
    db.session.commit()
    return role


def get(role_id: int) -> Role:
    role = db.session.get(Role, role_id)
    if role is None:
        raise ApiError(404, "role_not_found", "ROLE_NOT_FOUND")
    return role


def _owned(role_id: int, user_id: int, denied_key: str) -> Role:
    role = db.session.get(Role, role_id)
    if role is None or role.owner_id != user_id:
        raise ApiError(403, denied_key, "FORBIDDEN")
    return role


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


def page_all(page_no: int, page_size: int) -> dict[str, Any]:
    query = select(Role).order_by(Role.created_at.desc(), Role.id.desc())
    return paginate(query, page_no, page_size, Role.to_dict, count=("roles", "all"))


def page_of_user(user_id: int, page_no: int, page_size: int) -> dict[str, Any]:
    query = (select(Role).where(Role.owner_id == user_id)
             .order_by(Role.created_at.desc(), Role.id.desc()))
    return paginate(query, page_no, page_size, Role.to_dict, count=("roles", f"user:{user_id}"))
