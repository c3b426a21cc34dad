"""What the tests share besides fixtures, and what the benchmarks borrow from them:
starting processes (web, worker, Redis, S3), clients that talk to a running server,
and sounds to send it. Fixtures stay in ``conftest.py``; nothing here imports it."""
