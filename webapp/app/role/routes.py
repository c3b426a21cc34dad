"""The role endpoints."""

from flask import Response, request
from flask_jwt_extended import jwt_required

from webapp.app.api import ok, parse
from webapp.app.openapi import doc
from webapp.app.pagination import page_args
from webapp.app.role import bp
from webapp.app.role.schemas import (
    PageQuerySchema,
    RoleCreatedSchema,
    RoleOutSchema,
    RolePageSchema,
    RoleSchema,
)
from webapp.app.services.platform import users
from webapp.app.services.sessions import roles
from webapp.app.web import current_user_id


@bp.post("/add")
@jwt_required()
@doc("Create a role", tag="roles", body=RoleSchema, response=RoleCreatedSchema)
def add() -> Response:
    role = roles.create(current_user_id(), parse(RoleSchema()))
    return ok({"role_id": role.id}, message="role_created")


@bp.get("/list")
@jwt_required()
@doc("Every role I may use (mine and the public ones), newest first", tag="roles",
     query=PageQuerySchema, response=RolePageSchema)
def list_roles() -> Response:
    return ok(roles.page_usable(current_user_id(), *page_args(request.args)))


@bp.get("/user/<int:user_id>")
@jwt_required()
@doc("A user's roles (another user's public ones only)", tag="roles", query=PageQuerySchema,
     response=RolePageSchema, errors=(404,))
def user_roles(user_id: int) -> Response:
    users.get(user_id)
    return ok(roles.page_of_user(user_id, current_user_id(), *page_args(request.args)))


@bp.get("/<int:role_id>")
@jwt_required()
@doc("One role (mine, or a public one)", tag="roles", response=RoleOutSchema, errors=(404,))
def get_role(role_id: int) -> Response:
    return ok(roles.usable(role_id, current_user_id()).to_dict())


@bp.put("/<int:role_id>")
@jwt_required()
@doc("Update my role (any subset of fields)", tag="roles", body=RoleSchema, errors=(403,))
def update_role(role_id: int) -> Response:
    roles.update(role_id, current_user_id(), parse(RoleSchema(), partial=True))
    return ok(None, message="role_updated")


@bp.delete("/<int:role_id>")
@jwt_required()
@doc("Delete my role", tag="roles", errors=(403,))
def delete_role(role_id: int) -> Response:
    roles.delete(role_id, current_user_id())
    return ok(None, message="role_deleted")
