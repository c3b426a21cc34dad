"""Role fields and rules; messages are catalogue keys (``参数错误: …``)."""

from marshmallow import Schema, ValidationError, fields

from webapp.app.schemas import PageQuerySchema, page_of

__all__ = ["PageQuerySchema", "RoleCreatedSchema", "RoleOutSchema", "RolePageSchema",
           "RoleSchema"]

GENDERS = ("男", "女", "其他", "未知")


def _name(value: str) -> None:
    if not 2 <= len(value.strip()) <= 100:
        raise ValidationError("role_name_rule")


def _description(value: str) -> None:
    if len(value.strip()) < 10:
        raise ValidationError("role_description_rule")


def _gender(value: str) -> None:
    if value not in GENDERS:
        raise ValidationError("role_gender_rule")


def _age(value: int) -> None:
    if not 0 <= value <= 120:
        raise ValidationError("role_age_rule")


def _voice_type(value: str) -> None:
    if not value.strip() or len(value) > 160:
        raise ValidationError("invalid_voice_type")


class StrictInteger(fields.Integer):
    """``age`` is an int: ``"30"`` and ``30.5`` are refused, not coerced."""

    default_error_messages = {"invalid": "role_age_rule"}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(strict=True, **kwargs)


class RoleSchema(Schema):
    name = fields.String(required=True, validate=_name)
    description = fields.String(required=True, validate=_description)
    gender = fields.String(required=True, validate=_gender)
    age = StrictInteger(required=True, validate=_age)
    voice_type = fields.String(required=True, validate=_voice_type)
    is_public = fields.Boolean(load_default=False)


class RoleCreatedSchema(Schema):
    role_id = fields.Integer()


class RoleOutSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    gender = fields.String()
    age = fields.Integer()
    voice_type = fields.String()
    user_id = fields.Integer()
    is_public = fields.Boolean()
    created_at = fields.String()


RolePageSchema = page_of(RoleOutSchema)
