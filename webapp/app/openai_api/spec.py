"""The OpenAPI document of ``/v1`` (served at ``/v1/openapi.json``), from the same
marshmallow schemas that validate its requests; its errors are OpenAI's shape."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from webapp.app.openai_api.schemas import SpeechSchema, TranscriptionSchema

_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_ERRORS = {str(status): _ERROR for status in (400, 401, 404, 413, 415, 429, 503)}
_JSON_OR_TEXT = {"description": "the transcript", "content": {
    "application/json": {"schema": {"type": "object"}},
    "text/plain": {"schema": {"type": "string"}},
    "text/event-stream": {"schema": {"type": "string"}}}}


def _listing(field: str) -> dict[str, Any]:
    return {"description": "success", "content": {"application/json": {"schema": {
        "type": "object", "required": [field], "properties": {field: {
            "type": "array", "items": {"type": "object", "required": ["id"],
                                       "properties": {"id": {"type": "string"},
                                                      "name": {"type": "string"}}}}}}}}}


@cache
def openai_spec() -> dict[str, Any]:
    spec = APISpec(title="Tingshuo 听说 — OpenAI-compatible audio API", version="1.0.0",
                   openapi_version="3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "object", "required": ["message", "type", "code"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "code": {"type": "string"}, "param": {"type": "string", "nullable": True}}}}})
    spec.components.schema("Speech", schema=SpeechSchema)
    spec.components.schema("Transcription", schema=TranscriptionSchema)
    secure = [{"bearer": []}]
    transcription = {"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"$ref": "#/components/schemas/Transcription"}}}},
        "responses": {"200": _JSON_OR_TEXT, **_ERRORS}, "security": secure}
    spec.path(path="/v1/audio/speech", operations={"post": {
        "summary": "Speak text (audio bytes streamed as made, or SSE)",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Speech"}}}},
        "responses": {"200": {"description": "audio", "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "text/event-stream": {"schema": {"type": "string"}}}}, **_ERRORS},
        "security": secure}})
    spec.path(path="/v1/audio/transcriptions", operations={
        "post": {"summary": "Transcribe audio", **transcription}})
    spec.path(path="/v1/audio/translations", operations={
        "post": {"summary": "Transcribe audio into English", **transcription}})
    spec.path(path="/v1/models", operations={"get": {
        "summary": "Models", "security": secure, "responses": {
            "200": {"description": "success", "content": {"application/json": {"schema": {
                "type": "object", "required": ["data"], "properties": {"data": {
                    "type": "array", "items": {"type": "object"}}}}}}}, **_ERRORS}}})
    spec.path(path="/v1/audio/models", operations={"get": {
        "summary": "Speech models", "security": secure,
        "responses": {"200": _listing("models"), **_ERRORS}}})
    spec.path(path="/v1/audio/voices", operations={"get": {
        "summary": "Voices", "security": secure,
        "responses": {"200": _listing("voices"), **_ERRORS}}})
    return spec.to_dict()
