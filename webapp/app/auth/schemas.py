from marshmallow import Schema, ValidationError, fields, validate

_USERNAME = validate.Regexp(r"^[\w\u4e00-\u9fff]{3,64}$", error="username_rule")


def _password(value: str) -> None:
    if not 8 <= len(value) <= 128:
        raise ValidationError("password_rule")


class CredentialsSchema(Schema):
    username = fields.String(required=True, validate=_USERNAME)
    password = fields.String(required=True, validate=_password, load_only=True)


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    created_at = fields.String()


class TokensSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    user = fields.Nested(UserSchema)
