"""`pds serve`: gunicorn, each worker building its own app (engines must not cross a fork)."""

from __future__ import annotations

import errno
import threading
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from pds.settings import Settings

GRACEFUL_TIMEOUT_S = 20
LIVE_PATH = "/account/live"  # pds.web.live.STREAM_PATH; not imported, so that this module stays Flask-free


class PdsWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, except that a live-updates stream (Server-Sent Events, pds/web/live.py) is served on a
    thread of its own instead of one of the pool's `threads`.

    A stream stays open as long as its page does, and mostly waits. In the pool, a few open pages would
    hold every thread and each other request would queue behind them. Here the pool thread only reads
    the request line and headers; the worker's main loop then hands the connection to a new daemon
    thread, which runs the app for it as the pool would (pds.web.live caps streams per process), and
    stops counting it against worker_connections. A stopping worker ends its streams; browsers
    reconnect, with Last-Event-ID, to another worker.
    """

    def handle_request(self, req: Any, conn: Any) -> bool:
        if req.method == "GET" and req.path == LIVE_PATH and self.alive:
            conn.pds_live_request = req  # finish_request, on the main loop, hands it on
            return False
        return bool(super().handle_request(req, conn))

    def finish_request(self, conn: Any, fs: Any) -> None:
        req = getattr(conn, "pds_live_request", None)
        if req is None or fs.cancelled() or fs.exception() is not None:
            return super().finish_request(conn, fs)  # type: ignore[no-any-return]
        del conn.pds_live_request
        self.nr_conns -= 1  # no longer this loop's: the stream's thread closes it
        threading.Thread(target=self._stream, args=(req, conn), name="pds-live-stream", daemon=True).start()
        return None

    def _stream(self, req: Any, conn: Any) -> None:
        try:
            super().handle_request(req, conn)
        except StopIteration:
            pass
        except OSError as exc:  # the page was closed: the usual way a stream ends
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                self.log.exception("live stream: socket error")
        except Exception as exc:
            self.handle_error(req, conn.sock, conn.client, exc)
        finally:
            conn.close()

    def handle_exit(self, sig: int, frame: Any) -> None:
        live = getattr(self.wsgi, "extensions", {}).get("pds.live")
        if live is not None:
            live.close()
        super().handle_exit(sig, frame)


class PdsServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from pds import create_app

        app = create_app(self.settings)
        start_background(app)  # in each worker, after the fork: a thread must not be started before it
        return app


def start_background(app: Any) -> None:
    """The threads each server process runs beside its requests: ledger checkpoints, email, and upkeep
    (callbacks to GP systems, expiring requests and grants, the SQLite WAL)."""
    from consent.ledger.checkpointer import Checkpointer
    from pds.callbacks import CallbackSender
    from pds.notify import Sender

    rt = app.extensions["pds"]
    settings = rt.settings
    Checkpointer(
        rt.sessions, rt.read_sessions, rt.checkpoints, interval_s=settings.ledger.checkpoint_interval
    ).start()
    if settings.smtp.host:
        Sender(rt, interval_s=settings.smtp.interval).start()
    CallbackSender(rt).start()


def run(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    host = host or settings.server.host
    port = port or settings.server.port
    if not settings.server.issuer:  # the public URL defaults to where we actually listen
        import dataclasses

        server = dataclasses.replace(settings.server, host=host, port=port)
        settings = dataclasses.replace(settings, server=server)
    options = {
        "bind": f"{host}:{port}",
        "workers": settings.server.workers,
        "threads": settings.server.threads,
        "worker_class": PdsWorker,
        # Each worker its own listening socket: the kernel spreads new connections over them.
        # With one shared socket, every keep-alive client could land on the same worker.
        "reuse_port": True,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "accesslog": "-",
        "loglevel": settings.log.level.lower(),
        "proc_name": "pds",
    }
    print(f"pds serving on http://{host}:{port} (issuer {settings.server.public_url})", flush=True)
    PdsServer(settings, options).run()
