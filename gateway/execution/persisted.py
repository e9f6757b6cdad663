"""Documents named by hash or id: Apollo's automatic persisted queries, and trusted documents.

A request names its document by its text (`query`), by the SHA-256 of its text
(`extensions.persistedQuery.sha256Hash`, Apollo's protocol), or by the id a build
manifest gave it (`documentId`). Automatic persisted queries are registered per org
by the first request that sends hash and text together, once the text validates;
trusted documents are registered by an operator, for the whole deployment.

Each worker keeps what it has seen: a document named by its hash costs a dict lookup
once known, so sending the hash alone never costs more than sending the text. The
trusted set is read whole and read again once it is older than the cache lifetime,
which bounds how long a revoked document keeps working.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.db.database import Database
from gateway.db.persisted_documents import (
    find_persisted_query,
    live_trusted_documents,
    register_persisted_query,
    touch_persisted_query,
)
from gateway.db.refreshing import RefreshingCache
from gateway.errors import BadRequest, DocumentNotTrusted, GatewayError, PersistedQueryNotFound

logger = logging.getLogger("gateway.execution.persisted")

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Known (org, hash) pairs per worker; each entry holds one document text.
_CACHE_LIMIT = 10_000
# A document served from the cache is marked used in the database at most this often, off the request's path.
_TOUCH_EVERY = 3600.0


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class DocumentReference(NamedTuple):
    """What a request says about its document."""

    query: str | None
    sha256: str | None = None  # extensions.persistedQuery.sha256Hash, checked to be 64 hex digits
    document_id: str | None = None  # documentId

    @property
    def by_text_alone(self) -> bool:
        return self.sha256 is None and self.document_id is None


@dataclass(slots=True)
class _TrustedSet:
    by_id: dict[str, str] = field(default_factory=dict)
    by_sha256: dict[str, str] = field(default_factory=dict)
    texts: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Known:
    text: str
    touched_at: float


class PersistedDocuments:
    def __init__(
        self,
        database: Database,
        *,
        trusted_only: bool,
        max_per_org: int,
        trusted_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self.trusted_only = trusted_only
        self._max_per_org = max_per_org
        self._clock = clock
        self._known: OrderedDict[tuple[int, str], _Known] = OrderedDict()
        self._trusted: RefreshingCache[None, _TrustedSet] = RefreshingCache(
            self._load_trusted, trusted_ttl, clock=clock
        )
        self._background: set[asyncio.Task[None]] = set()

    async def text(self, reference: DocumentReference, org_id: int) -> str:
        """The document's text; raises PersistedQueryNotFound, DocumentNotTrusted or BadRequest.

        Checked before anything parses it: in trusted-only mode an unknown document costs a set lookup.
        """
        if reference.document_id is not None:
            trusted = await self._trusted_set()
            text = trusted.by_id.get(reference.document_id)
            if text is None and reference.document_id.startswith("sha256:"):
                text = trusted.by_sha256.get(reference.document_id.removeprefix("sha256:"))
            if text is None:
                raise PersistedQueryNotFound()
            return text
        if reference.sha256 is not None:
            if reference.query is not None:
                if sha256_of(reference.query) != reference.sha256:
                    raise BadRequest("extensions.persistedQuery.sha256Hash is not the SHA-256 of the query")
                await self._check_trusted(reference.query)
                return reference.query
            return await self._by_hash(org_id, reference.sha256)
        assert reference.query is not None
        await self._check_trusted(reference.query)
        return reference.query

    def known(self, org_id: int, sha256: str) -> bool:
        return (org_id, sha256) in self._known

    async def register(self, org_id: int, sha256: str, text: str) -> None:
        """Keep a validated document sent with its hash, for this org's later hash-only requests."""
        if self.trusted_only or (org_id, sha256) in self._known:
            return
        await register_persisted_query(self._database, org_id, sha256, text, self._max_per_org)
        self._remember(org_id, sha256, text)

    async def _by_hash(self, org_id: int, sha256: str) -> str:
        known = self._known.get((org_id, sha256))
        if known is not None:
            self._known.move_to_end((org_id, sha256))
            now = self._clock()
            if now - known.touched_at > _TOUCH_EVERY:
                known.touched_at = now
                self._in_background(touch_persisted_query(self._database, org_id, sha256))
            return known.text
        trusted = await self._trusted_set()
        text = trusted.by_sha256.get(sha256)
        if text is not None:
            return text
        if self.trusted_only:
            raise PersistedQueryNotFound()
        text = await find_persisted_query(self._database, org_id, sha256)
        if text is None:
            raise PersistedQueryNotFound()
        self._remember(org_id, sha256, text)
        self._in_background(touch_persisted_query(self._database, org_id, sha256))
        return text

    async def _check_trusted(self, text: str) -> None:
        if self.trusted_only and text not in (await self._trusted_set()).texts:
            raise DocumentNotTrusted("this gateway answers only its registered (trusted) documents")

    def _remember(self, org_id: int, sha256: str, text: str) -> None:
        self._known[(org_id, sha256)] = _Known(text, self._clock())
        while len(self._known) > _CACHE_LIMIT:
            self._known.popitem(last=False)

    async def _trusted_set(self) -> _TrustedSet:
        return await self._trusted.get(None)

    async def _load_trusted(self, _: None) -> _TrustedSet:
        documents = await live_trusted_documents(self._database)
        return _TrustedSet(
            by_id={document.document_id: document.document for document in documents},
            by_sha256={document.sha256: document.document for document in documents},
            texts={document.document for document in documents},
        )

    def _in_background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except GatewayError:
                logger.debug("could not record the use of a persisted query")

        # In a context of its own: its database time is not the request's (see the request log).
        task = asyncio.create_task(run(), context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
