"""What a worker's subscriptions watch: one Topic per distinct lookup and entity, shared by all who subscribed
to it, looked up again after each announced change and its balance offered to each of them.

A topic is poked by the ChangeFeed when its entity may have changed; it then looks the balance up again (in
its org's next batched statement, gateway.live.lookups) and, when the balance differs, offers it to every
subscription. A topic looks at most once per `interval`: pokes meanwhile merge into the next look. A
subscription sends at most one message per `interval` and keeps no queue: a balance offered while it waits
replaces the one before, so a slow subscriber gets the latest balance, never a backlog. A topic ends its
subscriptions with an error when its lookup fails or stops matching the entity it started with.

Nothing here is a task or a timer per subscription: a subscription is a small object in its topic's set;
timers exist only while a topic or a subscription waits out its interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from gateway.domain.lookup import Balance, Lookup, Matches, decide
from gateway.errors import GatewayError, ServiceUnavailable
from gateway.live.changes import ChangeFeed, entity_key
from gateway.live.lookups import Lookups
from gateway.observability.metrics import LIVE_MESSAGES

if TYPE_CHECKING:
    from gateway.live.plans import LivePlan

logger = logging.getLogger("gateway.live.topics")

# After the database could not answer, a topic looks again this much later (and keeps its subscriptions).
RETRY_SECONDS = 1.0
# A topic's state: nothing to do, waiting out its interval (pokes merge), its look asked (pokes look again).
_IDLE, _DELAYED, _ASKED = 0, 1, 2


class EntityChanged(GatewayError):
    code = "ENTITY_CHANGED"


class Outbox(Protocol):
    """Where a subscription's messages go: a WebSocket, an SSE stream, or graphql-core's execution."""

    def send(self, subscription: Subscription, balance: Balance) -> None:
        """Send this balance (the latest replaces one not yet sent)."""

    def end(self, subscription: Subscription, error: GatewayError | None) -> None:
        """Send the error (None: a fault of ours, masked) and end the subscription."""


class Subscription:
    """One client's subscription: where its messages go and what it was last sent."""

    __slots__ = ("ended", "held", "id", "live", "outbox", "plan", "resend", "sent", "sent_at", "topic")

    def __init__(self, id: str, outbox: Outbox, plan: LivePlan | None, live: Any) -> None:
        self.id = id  # the operation's id on a WebSocket
        self.outbox = outbox
        self.plan = plan  # None: graphql-core renders its messages
        self.live = live  # its connection's LiveContext
        self.topic: Topic | None = None
        self.sent: Balance | None = None
        self.sent_at = 0.0
        self.held = False  # a timer will offer it the latest balance once its interval is over
        self.resend = False
        self.ended = False


class Topic:
    __slots__ = ("again", "balance", "entity", "key", "looked_at", "lookup", "members", "payloads", "resend")
    __slots__ += ("state", "topics")

    def __init__(self, topics: Topics, key: tuple[Any, ...], lookup: Lookup, balance: Balance) -> None:
        self.topics = topics
        self.key = key
        self.lookup = lookup
        self.entity = (balance.entity_type, balance.entity_id)
        self.balance = balance
        self.members: set[Subscription] = set()
        self.payloads: dict[LivePlan, str] | None = None  # the balance's message payload per plan, once written
        self.looked_at = time.monotonic()
        self.state = _IDLE
        self.again = False  # poked while its look was asked: look once more
        self.resend = False

    def poke(self, *, resend: bool) -> None:
        self.topics.poke(self, resend)

    def payload(self, plan: LivePlan, balance: Balance) -> str:
        """`balance` written as `plan` has it: once per distinct plan for all the topic's subscribers."""
        if balance is not self.balance:
            return plan.render(balance)
        payloads = self.payloads
        if payloads is None:
            self.payloads = payloads = {}
        text = payloads.get(plan)
        if text is None:
            text = payloads[plan] = plan.render(balance)
        return text


class Topics:
    def __init__(
        self,
        feed: ChangeFeed,
        lookups: Lookups,
        interval: float,
        ended: Callable[[Subscription, GatewayError | None], None],
    ) -> None:
        self._feed = feed
        self._ended = ended  # ends a subscription with an error (None: a fault of ours)
        self._lookups = lookups
        self._interval = interval
        self._topics: dict[tuple[Any, ...], Topic] = {}

    def __len__(self) -> int:
        return len(self._topics)

    def join(self, subscription: Subscription, lookup: Lookup, balance: Balance, announced: int) -> None:
        """The subscription, its first balance just looked up, joins its topic and is sent that balance.
        `announced`: the feed's count of announcements before that look."""
        subscriber = subscription.live.subscriber
        org_id = subscriber.org_id
        key = (org_id, subscriber.customer_id, lookup, balance.entity_type, balance.entity_id)
        topic = self._topics.get(key)
        stale = self._feed.announcements != announced  # a change may have committed after the look
        if topic is None:
            topic = self._topics[key] = Topic(self, key, lookup, balance)
            self._feed.watch(org_id, entity_key(balance.entity_type.value, balance.entity_id), topic)
        elif topic.balance == balance:
            balance = topic.balance  # kept once for all who were sent it
        else:
            stale = True  # one of the two looks is older: look again
        topic.members.add(subscription)
        subscription.topic = topic
        self._send(subscription, balance, time.monotonic())
        if stale:
            self.poke(topic, False)

    def leave(self, subscription: Subscription) -> None:
        topic = subscription.topic
        if topic is None:
            return
        subscription.topic = None
        topic.members.discard(subscription)
        if not topic.members and self._topics.get(topic.key) is topic:
            del self._topics[topic.key]
            entity_type, entity_id = topic.entity
            self._feed.unwatch(topic.key[0], entity_key(entity_type.value, entity_id), topic)

    def poke(self, topic: Topic, resend: bool) -> None:
        if resend:
            topic.resend = True
        if topic.state == _ASKED:
            topic.again = True
        elif topic.state == _IDLE:
            self._schedule(topic)

    def offer(self, subscription: Subscription) -> None:
        """Send the subscription its topic's balance, if it was not sent it, once its interval allows."""
        topic = subscription.topic
        if topic is None or subscription.held:
            return
        balance = topic.balance
        if not subscription.resend and subscription.sent == balance:
            return
        now = time.monotonic()
        wait = subscription.sent_at + self._interval - now
        if wait > 0:
            subscription.held = True
            asyncio.get_running_loop().call_later(wait, self._release, subscription)
            return
        self._send(subscription, balance, now)

    def _send(self, subscription: Subscription, balance: Balance, now: float) -> None:
        subscription.sent, subscription.sent_at, subscription.resend = balance, now, False
        LIVE_MESSAGES.inc()
        subscription.outbox.send(subscription, balance)

    def _release(self, subscription: Subscription) -> None:
        subscription.held = False
        if not subscription.ended:
            self.offer(subscription)

    def _schedule(self, topic: Topic, wait: float | None = None) -> None:
        if wait is None:
            wait = topic.looked_at + self._interval - time.monotonic()
        if wait > 0:
            topic.state = _DELAYED
            asyncio.get_running_loop().call_later(wait, self._ask, topic)
        else:
            self._ask(topic)

    def _ask(self, topic: Topic) -> None:
        if self._topics.get(topic.key) is not topic:
            return  # every subscription left
        topic.state, topic.again, topic.looked_at = _ASKED, False, time.monotonic()
        org_id, customer_id = topic.key[0], topic.key[1]
        self._lookups.ask(org_id, customer_id, topic.lookup, partial(self._looked, topic))

    def _looked(self, topic: Topic, found: Matches | Exception) -> None:
        topic.state = _IDLE
        if self._topics.get(topic.key) is not topic:
            return
        if isinstance(found, ServiceUnavailable):
            self._schedule(topic, RETRY_SECONDS)
            return
        try:
            if isinstance(found, Exception):
                raise found
            balance = decide(topic.lookup, found)
            if (balance.entity_type, balance.entity_id) != topic.entity:
                raise EntityChanged("the identifiers no longer match the entity this subscription started with")
        except GatewayError as error:
            self._end(topic, error)
            return
        except Exception:
            logger.exception("a live lookup failed")
            self._end(topic, None)
            return
        resend, topic.resend = topic.resend, False
        if resend or balance != topic.balance:
            topic.balance, topic.payloads = balance, None
            for subscription in tuple(topic.members):
                subscription.resend = subscription.resend or resend
                try:
                    self.offer(subscription)
                except Exception:
                    logger.exception("a live message could not be written")
                    self._ended(subscription, None)
        if topic.again:
            self._schedule(topic)

    def _end(self, topic: Topic, error: GatewayError | None) -> None:
        for subscription in tuple(topic.members):
            self._ended(subscription, error)
