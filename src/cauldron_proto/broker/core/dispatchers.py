"""What dispatchers send the broker (DBQ, DBE, replies), and their liveness (beats, expiry)."""

from __future__ import annotations

from ...protocol import Command, Direction, Message, Text, kinds
from .books import DispatcherRecord
from .keys import KeyRules

_ROUTED_REPLY = {Direction.CDP: "CD", Direction.CDE: "CD", Direction.SDP: "SD", Direction.SDE: "SD"}


class DispatcherHandlers(KeyRules):
    """Handlers of dispatcher messages, and the timers that watch dispatchers."""

    def _dispatcher_query(self, peer: bytes, message: Message) -> None:
        """DBQ: welcome, ready, heartbeat, or 'unknown command'."""
        if self._breaks_rules(peer, message):
            return
        command = message.command
        if command == Command.WELCOME:
            return self._welcome(peer, message)
        record = self.books.registered(peer, message.service_key, message.dispatcher)  # type: ignore[arg-type]
        if command not in (Command.READY, Command.HEARTBEAT):
            if record is not None:
                record.sent(message.identifier)
            return self._answer(peer, message, message.error(Text.UNKNOWN_COMMAND))
        if record is None:
            return self._stranger(peer, message)
        record.unanswered.pop(message.identifier, None)  # e.g. its answer to a heartbeat
        if command == Command.READY and not record.ready:
            record.ready = True
            self._schedule_changed()

    def _stranger(self, peer: bytes, message: Message) -> None:
        """``ready`` or a heartbeat answer from a socket the name is not registered at.

        The dispatcher is evidently alive (an existing Cauldron dispatcher welcomes once in
        its life: after it stalled past expiry, or the broker restarted, it only answers
        heartbeats), so a free name is registered again at this socket, ready, with no
        reply. A name held by another socket is not taken without a welcome: the sender is
        told to welcome, at most once per T per socket (an existing dispatcher answers a DBE
        with a DBQ, so answering every one would be an endless ping-pong).
        """
        key, name = message.service_key, message.dispatcher
        service = self.books.services.get(key)  # type: ignore[arg-type]
        if service is None or name not in service.dispatchers:
            if not self._may_register(peer, message, None):
                return
            record = DispatcherRecord(message.service, name, peer, self._now, self.timeout, self._key)  # type: ignore[arg-type]
            record.ready = True
            self.books.add(record)
            self.stats.readmitted += 1
            self._schedule_changed()
            self._log_event("dispatcher %s/%s at %s registered again by its %s (no welcome)",
                            key, name, peer.hex(), message.command)
            return
        if not self._once_per_period(self._told_to_welcome, peer):
            return self._drop("not_registered_told_already", peer, message)
        text = Text.DISPATCHER_NOT_REGISTERED.format(dispatcher=name, service=message.service)
        self._answer(peer, message, message.error(text))

    def _welcome(self, peer: bytes, message: Message) -> None:
        """Register (service, name) at ``peer``; a new socket replaces the old one."""
        key, name = message.service_key, message.dispatcher
        service = self.books.services.get(key)  # type: ignore[arg-type]
        old = None if service is None else service.dispatchers.get(name)  # type: ignore[arg-type]
        record = old
        if old is None or old.peer != peer:
            if not self._may_register(peer, message, old):
                return
            record = DispatcherRecord(message.service, name, peer, self._now, self.timeout, self._key)  # type: ignore[arg-type]
            self.books.add(record)
            self.stats.registered += 1
            self._schedule_changed()
            if old is not None:
                self.stats.replaced += 1
                self._log_event("dispatcher %s/%s moved from %s to %s", key, name, old.peer.hex(), peer.hex())
                self._retire(old, Text.DISPATCHER_REPLACED.format(dispatcher=name))
        record.sent(message.identifier)  # type: ignore[union-attr]
        self._answer(peer, message, kinds.confirmed(message))

    def _dispatcher_error(self, peer: bytes, message: Message) -> None:
        """DBE: discarded (its arrival was a sign of life)."""
        self._drop("dispatcher_error_discarded", peer, message)

    def _dispatcher_reply(self, peer: bytes, message: Message, error: str | None = None) -> None:
        """CDP/CDE relayed to its client, SDP/SDE given to its fan-out; exactly once.

        ``error``: the reply's frames broke a rule; the request gets this error instead.
        """
        if peer not in self.books.by_peer:
            return self._drop("reply_from_unregistered_peer", peer, message)
        prefix = message.prefix
        if len(prefix) != 3 or prefix[0] or prefix[2]:
            return self._drop("reply_without_client_prefix", peer, message)
        kind, client = _ROUTED_REPLY[message.direction], prefix[1]
        found = self.books.find_in_flight(peer, (kind, client, message.identifier))
        if found is None:
            return self._drop("reply_to_nothing_in_flight", peer, message)
        record, entry = found
        if entry.fanout is not None:
            entry.fanout.answer(record, None if error is not None else message)
            if entry.fanout.done:
                self._finish_fanout(entry.fanout)
        elif error is not None:
            self._send((client, b""), entry.request.error(error, dispatcher=record.name))
        else:
            self._learn(record, message)
            self._send((client, b""), message)

    def _learn(self, record: DispatcherRecord, reply: Message) -> None:
        """A successful reply teaches which dispatcher owns its keyword (and its type)."""
        if not reply.is_usable:
            return
        keyword, service = reply.keyword_key, self.books.services.get(record.service)
        if keyword is not None and service is not None:
            command = reply.command  # the payload is only worth reading for identify
            payload = reply.payload if command == Command.IDENTIFY else None
            service.learn(keyword, record.name, command, payload)  # type: ignore[arg-type]

    # -- timers --------------------------------------------------------------------------

    def _watch(self, record: DispatcherRecord, now: float) -> None:
        """Expire ``record`` after 5 T of silence; beat it when ready and idle for T."""
        if now >= record.expire_at:
            self._expire(record)
        elif record.ready and now >= record.next_beat_at:
            beat = kinds.heartbeat(record.service_name, record.name)
            self._send((record.peer, b""), beat)
            record.sent(beat.identifier)
            self.stats.heartbeats += 1
            record.next_beat_at = now + self.timeout
