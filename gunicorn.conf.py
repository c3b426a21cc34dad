"""gunicorn reads this file from the working directory: its access log hides credentials
passed in URLs (``?token=``, signed URLs) like the built-in server's does."""

logger_class = "webapp.app.access_log.GunicornLogger"
