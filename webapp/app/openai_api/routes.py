"""Thin routes: parse OpenAI's request, call ``services.openai_audio``, send its answer."""

from __future__ import annotations

from flask import Response, jsonify, request

from webapp.app.api import gather_list, parse, streaming_response
from webapp.app.errors import ApiError
from webapp.app.openai_api import bp
from webapp.app.openai_api.auth import current_caller
from webapp.app.openai_api.schemas import SpeechSchema, TranscriptionSchema
from webapp.app.openai_api.spec import openai_spec
from webapp.app.services.platform import limits
from webapp.app.services.speech import openai_audio


@bp.post("/audio/speech")
def speech() -> Response:
    caller = current_caller()
    limits.hit("speech", caller.user_id)
    out = openai_audio.synthesize(caller, openai_audio.SpeechRequest(**parse(SpeechSchema())))
    return streaming_response(out.chunks, out.content_type, **out.headers)


def _transcription(task: str) -> Response:
    caller = current_caller()
    limits.hit("speech", caller.user_id)
    form = request.form.to_dict()
    form.pop("file", None)
    args = parse(TranscriptionSchema(), gather_list(form, "timestamp_granularities"))
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "file_missing", "FILE_MISSING", details={"param": "file"})
    args["timestamp_granularities"] = tuple(args["timestamp_granularities"])
    out = openai_audio.transcribe(caller, upload.read(), upload.filename or "",
                                  openai_audio.TranscriptionRequest(**args), task)
    if out.chunks is not None:
        return streaming_response(out.chunks, out.content_type)
    if isinstance(out.body, dict):
        return jsonify(out.body)
    return Response(out.body, content_type=out.content_type)


@bp.post("/audio/transcriptions")
def transcriptions() -> Response:
    return _transcription("transcribe")


@bp.post("/audio/translations")
def translations() -> Response:
    return _transcription("translate")


@bp.get("/models")
def models() -> Response:
    current_caller()
    return jsonify({"object": "list", "data": openai_audio.models()})


@bp.get("/models/<path:model_id>")
def model(model_id: str) -> Response:
    current_caller()
    found = next((m for m in openai_audio.models() if m["id"] == model_id), None)
    if found is None:
        raise ApiError(404, "model_not_found", "MODEL_NOT_FOUND", {"model": model_id},
                       {"param": "model"})
    return jsonify(found)


@bp.get("/audio/models")
def audio_models() -> Response:
    current_caller()
    return jsonify({"models": openai_audio.speech_models()})


@bp.get("/audio/voices")
def audio_voices() -> Response:
    return jsonify({"voices": openai_audio.voice_list(current_caller())})


@bp.get("/openapi.json")
def spec() -> Response:
    return jsonify(openai_spec())
