"""Helpers for plugins that ship an emulator of their vendor's API (``optouts emulate``).

An emulator is an ASGI application. ``serve`` runs one on 127.0.0.1 with uvicorn (install
``optouts[emulators]``) and tells the caller the base URL once the socket listens, so the
command can print credentials that point at it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._errors import ConfigurationError

__all__ = ["ASGIApp", "read_body", "serve", "serve_in_thread"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


async def read_body(receive: Callable[[], Awaitable[Message]]) -> bytes:
    """A request's whole body, however many messages it came in (an emulator answers from
    the whole body; a client that hangs up leaves what had arrived)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, an answer written in two parts waits
    # for the client's delayed ACK, adding ~40 ms to every request on loopback.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    return sock


def _server(app: ASGIApp, log_level: str) -> Any:
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "serving an emulator needs uvicorn: pip install 'optouts[emulators]'"
        ) from None
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="off", ws="none"))


def serve(app: ASGIApp, *, port: int = 0, on_ready: Callable[[str], None]) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` (0 picks a free port) until interrupted."""
    server = _server(app, "warning")
    sock = _listening_socket(port)
    on_ready(f"http://127.0.0.1:{sock.getsockname()[1]}")
    server.run(sockets=[sock])


def serve_in_thread(app: ASGIApp, *, port: int = 0) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` on 127.0.0.1 from a background thread, for tests and benchmarks.

    Returns the base URL and a function that stops the server.
    """
    server = _server(app, "critical")
    sock = _listening_socket(port)
    thread = threading.Thread(target=_run_on_own_loop, args=(server, sock), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def _run_on_own_loop(server: Any, sock: socket.socket) -> None:
    """Serve on a loop of the thread's own, closed after.

    ``uvicorn.Server.run`` installs its event loop policy process-wide (uvicorn before
    0.36), which from a background thread would change the loop every later
    ``asyncio.new_event_loop()`` of the caller gets, and orphan the caller's current loop.
    """
    loop = _new_loop()
    try:
        loop.run_until_complete(server.serve(sockets=[sock]))
    finally:
        loop.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (an emulator's own cost stays out of benchmarks)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
