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


class UsageSchema(Schema):
    day = fields.String(metadata={"description": "the UTC day counted"})
    characters = fields.Integer(metadata={"description": "characters synthesized today"})
    audio_seconds = fields.Float(metadata={"description": "seconds of audio recognised today"})
    daily_characters = fields.Integer(allow_none=True,
                                      metadata={"description": "the day's limit (null: none)"})
    daily_audio_seconds = fields.Float(allow_none=True,
                                       metadata={"description": "the day's limit (null: none)"})
