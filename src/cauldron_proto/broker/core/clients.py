"""Requests the broker answers itself or routes for clients: UBQ, CBQ, CDQ, CSQ."""

from __future__ import annotations

from ...protocol import BLANK, Command, Message, Text
from .books import DispatcherRecord, InFlight
from .base import DELIMITER, CoreBase
from .fanout import FanOut



class ClientHandlers(CoreBase):
    """Handlers of the requests clients (and anyone, for inquiries) send."""

    def _inquiry(self, peer: bytes, message: Message) -> None:
        """UB?: the broker is alive (answered along any prefix)."""
        self._answer(peer, message, message.reply(Text.BROKER_ALIVE))

    def _client_broker(self, peer: bytes, message: Message) -> None:
        """CBQ: lookup, locate, or 'unknown command'."""
        if self._breaks_rules(peer, message, routed=False):
            return
        command = message.command
        if command == Command.LOOKUP:
            answer = message.reply(self.lookup_address)
        elif command == Command.LOCATE:
            service = self.books.services.get(message.service_key)  # type: ignore[arg-type]
            found = service is not None and bool(service.dispatchers)
            answer = message.reply(Text.LOCATE_YES if found else Text.LOCATE_NO)
        else:
            answer = message.error(Text.UNKNOWN_COMMAND)
        self._answer(peer, message, answer)

    def _client_dispatcher(self, peer: bytes, message: Message) -> None:
        """CDQ: route to the named dispatcher, or to the keyword's learned owner."""
        if message.prefix != DELIMITER:  # no field rules to check here: the hot path
            return self._refuse_prefix(peer, message)
        record = self._route(message)
        if record is None:
            return self._answer(peer, message, message.error(self._unroutable(message)))
        key = ("CD", peer, message.identifier)
        if key in record.in_flight:
            # The same request again (a retry): its one answer is on its way already.
            return self._drop("duplicate_request", peer, message)
        if len(record.in_flight) >= self.max_in_flight:
            busy = Text.DISPATCHER_BUSY.format(dispatcher=record.name, count=len(record.in_flight))
            return self._answer(peer, message, message.error(busy))
        record.in_flight[key] = InFlight(message)
        if message.frames[1] == BLANK:  # routed by keyword: name its owner, as the existing broker does
            message = message.with_dispatcher(record.name)
        self._send((record.peer, b"", peer, b""), message)

    def _route(self, message: Message) -> DispatcherRecord | None:
        """The dispatcher a CDQ goes to: by name, else by its keyword's learned owner."""
        service = self.books.services.get(message.service_key)  # type: ignore[arg-type]
        if service is None:
            return None
        name = message.dispatcher
        if name is not None:
            return service.dispatchers.get(name)
        keyword = message.keyword_key
        return None if keyword is None else service.owner(keyword)

    @staticmethod
    def _unroutable(message: Message) -> str:
        """Why a CDQ has no dispatcher to go to."""
        if message.dispatcher is not None:
            return Text.DISPATCHER_NOT_AVAILABLE.format(dispatcher=message.dispatcher, service=message.service)
        if message.keyword is not None:
            return Text.NO_DISPATCHER_FOR_KEYWORD.format(service=message.service, keyword=message.keyword)
        return Text.AMBIGUOUS_DISPATCHER.format(fields=message.fields_text())

    def _client_service(self, peer: bytes, message: Message) -> None:
        """CSQ: fan out to every dispatcher of the service (identify: maybe from the cache)."""
        if self._breaks_rules(peer, message):
            return
        service = self.books.services.get(message.service_key)  # type: ignore[arg-type]
        if service is None or not service.dispatchers:
            error = Text.NO_DISPATCHERS_FOR_SERVICE.format(service=message.service)
            return self._answer(peer, message, message.error(error))
        if message.command == Command.IDENTIFY and message.keyword is not None:
            cached = service.cached_type(message.keyword_key)  # type: ignore[arg-type]
            if cached is not None:
                self.stats.cache_hits += 1
                record, ktl_type = cached
                return self._answer(peer, message, message.reply(ktl_type, dispatcher=record.name))
        if (peer, message.identifier) in service.fanouts:
            return self._drop("duplicate_request", peer, message)
        fanout = FanOut(message, peer, service.name, self._now + self.fanout_timeout)
        service.fanouts[(peer, message.identifier)] = fanout
        for record in service.dispatchers.values():
            if len(record.in_flight) < self.max_in_flight:  # a full one counts as unusable
                self._send((record.peer, b"", peer, b""), fanout.copy_for(record))
        if fanout.done:
            return self._finish_fanout(fanout)
        self._schedule_changed()
