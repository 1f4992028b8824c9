"""What a running pds holds: settings, database engine, session factory and key provider."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from consent.events import PROVIDER_INFO_KEY
from consent.ledger.checkpoints import Checkpoints
from consent.signing import SigningKeys
from pds import migrate
from pds.db import make_engine, session_factory, session_scope
from pds.errors import PdsError
from pds.settings import Settings, ledger_origin
from pds.vault import Vault
from pds.vault.crypto import EnvKeyProvider, KeyProvider, LocalKeyProvider
from pds.vault.keys import check_keys


class StartupError(PdsError):
    """pds cannot start: the message says what to fix."""

    status = 503
    slug = "unavailable"
    title = "Service unavailable"


def make_provider(settings: Settings, environ: Mapping[str, str] | None = None) -> KeyProvider:
    if settings.keys.provider == "env":
        return EnvKeyProvider(os.environ if environ is None else environ)
    return LocalKeyProvider(settings.keys.dir)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    provider: KeyProvider
    read_sessions: sessionmaker[Session]  # for work that only reads: on SQLite it takes no write lock

    @classmethod
    def build(cls, settings: Settings, *, environ: Mapping[str, str] | None = None) -> Runtime:
        engine = make_engine(settings.database.url)
        provider = make_provider(settings, environ)
        info = {PROVIDER_INFO_KEY: provider}
        readers = session_factory(engine.execution_options(sqlite_write=False), info)
        return cls(settings, engine, session_factory(engine, info), provider, readers)

    @contextmanager
    def vault(self) -> Iterator[Vault]:
        """One unit of work over the vault: committed if the block ends normally."""
        with session_scope(self.sessions) as session:
            yield Vault.open(session, provider=self.provider, settings=self.settings)

    def open_vault(self, session: Session) -> Vault:
        return Vault.open(session, provider=self.provider, settings=self.settings)

    def check(self) -> None:
        """Stop with one clear line unless the database is reachable and current, and the keys fit it."""
        try:
            revision = migrate.current(self.engine)
        except SQLAlchemyError as exc:
            raise StartupError(f"cannot reach the database: {_first_line(exc)}") from None
        if revision is None:
            raise StartupError("the database has no pds tables: run `pds init` or `pds db upgrade`")
        if revision != migrate.head():
            raise StartupError(
                f"the database is at revision {revision}, not {migrate.head()}: run `pds db upgrade`"
            )
        with session_scope(self.sessions) as session:
            check_keys(session, self.provider)
            SigningKeys(session, provider=self.provider).ensure()
            self.checkpoints(session).ensure_signer()

    def checkpoints(self, session: Session) -> Checkpoints:
        return Checkpoints(session, provider=self.provider, origin=ledger_origin(self.settings))

    def session_secret(self) -> bytes:
        """The key that signs browser sessions, derived from the blind-index key (HKDF, its own label)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pds/browser-session/v1")
        return hkdf.derive(self.provider.blind_index_key())

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc)
    return text_.strip().splitlines()[0] if text_.strip() else type(exc).__name__
