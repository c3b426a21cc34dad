"""Engines that run in a plain child process of their own, and how to talk to them.

``frames`` is the wire between the two sides; ``paraformer_host`` and ``moonshine_host``
are the child programs. A child runs as ``python -I <file> <fd>`` with this folder as its
only import of the project's own, so it starts without Flask or eventlet: threads and
sockets there are the operating system's, as the engines' libraries expect.
"""
