from flask import Response, current_app
from flask_jwt_extended import jwt_required

from webapp.app.api import ok, parse
from webapp.app.auth import bp
from webapp.app.auth.schemas import CredentialsSchema, TokensSchema, UsageSchema, UserSchema
from webapp.app.extensions import limiter
from webapp.app.openapi import doc
from webapp.app.services.platform import limits, users
from webapp.app.web import current_user_id


@bp.post("/register")
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"])
@doc("Create an account", tag="auth", body=CredentialsSchema, response=TokensSchema,
     auth=False, errors=(409, 429))
def register() -> Response:
    args = parse(CredentialsSchema())
    user = users.register(args["username"], args["password"])
    return ok(users.tokens(user), message="registered")


@bp.post("/login")
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"])
@doc("Log in: access and refresh tokens", tag="auth", body=CredentialsSchema,
     response=TokensSchema, auth=False, errors=(401, 429))
def login() -> Response:
    args = parse(CredentialsSchema())
    user = users.authenticate(args["username"], args["password"])
    return ok(users.tokens(user), message="logged_in")


@bp.post("/refresh")
@jwt_required(refresh=True)
@doc("A new access token from a refresh token", tag="auth", response=TokensSchema)
def refresh() -> Response:
    user = users.current(current_user_id())
    return ok(users.tokens(user, with_refresh=False))


@bp.get("/me")
@jwt_required()
@doc("The signed-in user", tag="auth", response=UserSchema)
def me() -> Response:
    return ok(users.current(current_user_id()).to_dict())


@bp.get("/usage")
@jwt_required()
@doc("What I used today (UTC) on every path, and the day's limits", tag="auth",
     response=UsageSchema)
def usage() -> Response:
    return ok(limits.usage(current_user_id()))
