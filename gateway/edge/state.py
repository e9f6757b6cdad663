"""What the app's lifespan opens and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.access.api_keys import ApiKeyAuthenticator
from gateway.db.database import Database
from gateway.execution.persisted import PersistedDocuments
from gateway.live.service import LiveService


@dataclass(frozen=True, slots=True)
class AppState:
    database: Database
    authenticator: ApiKeyAuthenticator
    documents: PersistedDocuments
    live: LiveService
