"""`pds serve`: gunicorn, each worker building its own app (engines must not cross a fork)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from pds.settings import Settings

GRACEFUL_TIMEOUT_S = 20


class PdsServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from consent.ledger.checkpointer import Checkpointer
        from pds import create_app
        from pds.notify import Sender

        app = create_app(self.settings)
        rt = app.extensions["pds"]
        # in each worker, after the fork: a thread must not be started before it
        Checkpointer(
            rt.sessions, rt.read_sessions, rt.checkpoints, interval_s=self.settings.ledger.checkpoint_interval
        ).start()
        if self.settings.smtp.host:
            Sender(rt, interval_s=self.settings.smtp.interval).start()
        return app


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
        "worker_class": "gthread",
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
