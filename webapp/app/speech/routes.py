"""TTS (stored, or streamed while it is made) and STT requests."""

from flask import Response, request
from flask_jwt_extended import jwt_required

from webapp.app.api import gather_list, ok, parse, streaming_response
from webapp.app.errors import PROVIDER_STATUSES
from webapp.app.openapi import AUDIO, doc
from webapp.app.services.speech import recorded_speech
from webapp.app.speech import bp
from webapp.app.speech.schemas import SttFormSchema, SttResultSchema, TtsResultSchema, TtsSchema
from webapp.app.web import current_user_id, rate_limited


def _tts_request() -> recorded_speech.TtsRequest:
    args = parse(TtsSchema())
    voice = args.pop("voice_id") or args.pop("voice_type")
    args.pop("voice_type", None)
    return recorded_speech.TtsRequest(voice=voice, **args)


@bp.post("/tts")
@jwt_required()
@rate_limited("speech")
@doc("Synthesize text; the audio is stored as a message", tag="speech", body=TtsSchema,
     response=TtsResultSchema, errors=(404, *PROVIDER_STATUSES))
def tts() -> Response:
    return ok(recorded_speech.tts(current_user_id(), _tts_request()))


@bp.post("/tts/stream")
@jwt_required()
@rate_limited("speech")
@doc("Synthesize text as a chunked audio stream (stored once complete)", tag="speech",
     body=TtsSchema, errors=(404, *PROVIDER_STATUSES), media=AUDIO)
def tts_stream() -> Response:
    result = recorded_speech.tts_stream(current_user_id(), _tts_request())
    return streaming_response(result.chunks, result.content_type,
                              **{"X-Message-Id": result.message_id,
                                 "X-Session-Id": result.session_id})


@bp.post("/stt")
@jwt_required()
@rate_limited("speech")
@doc("Recognise speech: an upload, or my file by file_id / audio_url", tag="speech",
     form=SttFormSchema, response=SttResultSchema,
     errors=(404, 413, 415, *PROVIDER_STATUSES))
def stt() -> Response:
    form = request.form.to_dict() if request.form or request.files else (
        request.get_json(silent=True) or {})
    form.pop("file", None)
    args = parse(SttFormSchema(), gather_list(form, "timestamp_granularities"))
    args["timestamp_granularities"] = tuple(args["timestamp_granularities"])
    upload = request.files.get("file")
    return ok(recorded_speech.stt(current_user_id(), upload=(upload.read(), upload.filename or "")
                                  if upload else None, **args))
