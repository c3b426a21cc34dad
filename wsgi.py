"""The web process: ``python wsgi.py`` (or ``gunicorn -k eventlet -w 1 wsgi:app``).

With the default async mode (eventlet) the standard library is patched before
anything else is imported; the async mode itself is a setting (SOCKETIO_ASYNC_MODE).
"""

import os

if os.environ.get("SOCKETIO_ASYNC_MODE", "eventlet") == "eventlet":
    import eventlet

    eventlet.monkey_patch()

from webapp.app import create_app, warm_up_in_background
from webapp.app.access_log import access_logger
from webapp.app.extensions import socketio
from webapp.app.wyoming import start_server as start_wyoming

app = create_app({"SOCKETIO_ASYNC_MODE": os.environ.get("SOCKETIO_ASYNC_MODE", "eventlet")})
if app.config["WARM_UP"]:
    warm_up_in_background(app)
start_wyoming(app)

if __name__ == "__main__":
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], log_output=True,
                 log=access_logger())
