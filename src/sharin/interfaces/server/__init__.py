"""sharin's web server: the browser UI's HTTP and WebSocket API over the same engine.

``sharin ui`` starts it (see :func:`serve`); :func:`create_app` makes the ASGI application for
tests and embedding. Every request needs the server's token; file endpoints reach only files
inside a project.
"""

from ._app import ServerConfig, create_app, serve

__all__ = ["ServerConfig", "create_app", "serve"]
