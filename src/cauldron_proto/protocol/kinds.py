# GENERATED FILE: do not edit by hand.
# Generated from spec/protocol.yaml by `python -m codegen`; change the spec and regenerate.
# `python -m codegen --check` fails when this file is stale.
"""Every message kind of the cauldron-zmq protocol: a builder and a predicate each.

A kind that answers another (it is among that kind's ``replies`` or ``errors`` in the spec)
is built from the message it answers, keeping its fields and routing prefix:
``kinds.confirmed(welcome)``, ``kinds.heartbeat_answer(beat, now)``. Any other kind is built
from its fields: ``kinds.welcome(service, dispatcher)``,
``kinds.client_dispatcher_query(service, command, payload, keyword=...)``.
Required fields are positional, optional ones keywords, blank ones absent; a payload with a
fixed text is filled in (its template fields from the fields of the message), any other
payload goes through its payload type's encoder. ``kinds.is_welcome(message)`` and so on say
whether a message is of a kind (its direction and, for kinds with one, its command).
"""

from __future__ import annotations

from .codec import Message
from .payloads import encode_address, encode_fail_or_text, encode_text, encode_time, encode_value, encode_yesno
from .tables import Direction, Text

__all__ = [
    "inquiry", "is_inquiry",
    "inquiry_reply", "is_inquiry_reply",
    "welcome", "is_welcome",
    "confirmed", "is_confirmed",
    "ready", "is_ready",
    "heartbeat", "is_heartbeat",
    "heartbeat_answer", "is_heartbeat_answer",
    "dispatcher_broker_error", "is_dispatcher_broker_error",
    "lookup", "is_lookup",
    "lookup_reply", "is_lookup_reply",
    "locate", "is_locate",
    "locate_reply", "is_locate_reply",
    "client_broker_error", "is_client_broker_error",
    "client_dispatcher_query", "is_client_dispatcher_query",
    "client_dispatcher_reply", "is_client_dispatcher_reply",
    "client_dispatcher_error", "is_client_dispatcher_error",
    "client_service_query", "is_client_service_query",
    "client_service_reply", "is_client_service_reply",
    "client_service_error", "is_client_service_error",
    "service_dispatcher_query", "is_service_dispatcher_query",
    "service_dispatcher_reply", "is_service_dispatcher_reply",
    "service_dispatcher_error", "is_service_dispatcher_error",
    "broadcast", "is_broadcast",
]



def inquiry(command: str, *, service: "str | None" = None, dispatcher: "str | None" = None, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """Anyone asks whether a broker is alive (ZMQBroker.check() sends command 'check'). (UBQ)"""
    return Message.new(
        Direction.UBQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command=command,
        identifier=identifier,
        prefix=prefix,
    )


def is_inquiry(message: Message) -> bool:
    """Whether ``message`` is a inquiry (UBQ)."""
    return message.direction == Direction.UBQ



def inquiry_reply(request: Message, *, dispatcher: "str | None | object" = ...) -> Message:
    """The broker answers an inquiry, echoing command and identifier.

    Built from the inquiry it answers (UBP).
    """
    payload = Text.BROKER_ALIVE
    if not (is_inquiry(request)):
        raise ValueError(f"inquiry_reply answers inquiry, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_inquiry_reply(message: Message) -> bool:
    """Whether ``message`` is a inquiry_reply (UBP)."""
    return message.direction == Direction.UBP



def welcome(service: str, dispatcher: str, *, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A dispatcher registers its (service, dispatcher name) at its socket. (DBQ)"""
    return Message.new(
        Direction.DBQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command='welcome',
        identifier=identifier,
        prefix=prefix,
    )


def is_welcome(message: Message) -> bool:
    """Whether ``message`` is a welcome (DBQ welcome)."""
    return message.direction == Direction.DBQ and message.command == 'welcome'



def confirmed(request: Message, *, dispatcher: "str | None | object" = ...) -> Message:
    """The broker confirms a welcome.

    Built from the welcome it answers (DBP).
    """
    payload = Text.CONFIRMED
    if not (is_welcome(request)):
        raise ValueError(f"confirmed answers welcome, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_confirmed(message: Message) -> bool:
    """Whether ``message`` is a confirmed (DBP welcome)."""
    return message.direction == Direction.DBP and message.command == 'welcome'



def ready(service: str, dispatcher: str, *, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A registered dispatcher is ready for work; no reply. Heartbeats start after it. (DBQ)"""
    return Message.new(
        Direction.DBQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command='ready',
        identifier=identifier,
        prefix=prefix,
    )


def is_ready(message: Message) -> bool:
    """Whether ``message`` is a ready (DBQ ready)."""
    return message.direction == Direction.DBQ and message.command == 'ready'



def heartbeat(service: str, dispatcher: str, *, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """The broker asks a ready dispatcher idle for T to show it is alive. (DBP)"""
    return Message.new(
        Direction.DBP,
        service=service,
        dispatcher=dispatcher,
        command='heartbeat',
        payload=Text.HEARTBEAT_BEAT,
        identifier=identifier,
        prefix=prefix,
    )


def is_heartbeat(message: Message) -> bool:
    """Whether ``message`` is a heartbeat (DBP heartbeat)."""
    return message.direction == Direction.DBP and message.command == 'heartbeat'



def heartbeat_answer(request: Message, payload, *, dispatcher: "str | None | object" = ...) -> Message:
    """A dispatcher answers a heartbeat with the same identifier; no reply.

    Built from the heartbeat it answers (DBQ).
    """
    payload = encode_time(payload)
    if not (is_heartbeat(request)):
        raise ValueError(f"heartbeat_answer answers heartbeat, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_heartbeat_answer(message: Message) -> bool:
    """Whether ``message`` is a heartbeat_answer (DBQ heartbeat)."""
    return message.direction == Direction.DBQ and message.command == 'heartbeat'



def dispatcher_broker_error(request: Message, *, dispatcher: "str | None | object" = ...) -> Message:
    """The broker's error reply to a dispatcher (unknown command, not registered); a DBE sent
    to the broker is discarded.

    Built from the welcome it answers (DBE).
    """
    payload = Text.UNKNOWN_COMMAND
    if not (is_welcome(request)):
        raise ValueError(f"dispatcher_broker_error answers welcome, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.error(payload)
    return request.error(payload, dispatcher=dispatcher)


def is_dispatcher_broker_error(message: Message) -> bool:
    """Whether ``message`` is a dispatcher_broker_error (DBE)."""
    return message.direction == Direction.DBE



def lookup(payload: object = None, *, service: "str | None" = None, dispatcher: "str | None" = None, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A client asks for the address to connect its SUB socket to (the existing client sends
    the payload `subscribe`; any payload is answered). (CBQ)"""
    return Message.new(
        Direction.CBQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command='lookup',
        payload=None if payload is None else encode_text(payload),
        identifier=identifier,
        prefix=prefix,
    )


def is_lookup(message: Message) -> bool:
    """Whether ``message`` is a lookup (CBQ lookup)."""
    return message.direction == Direction.CBQ and message.command == 'lookup'



def lookup_reply(request: Message, payload, *, dispatcher: "str | None | object" = ...) -> Message:
    """The broker's subscribe address in its connect form.

    Built from the lookup it answers (CBP).
    """
    payload = encode_address(payload)
    if not (is_lookup(request)):
        raise ValueError(f"lookup_reply answers lookup, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_lookup_reply(message: Message) -> bool:
    """Whether ``message`` is a lookup_reply (CBP lookup)."""
    return message.direction == Direction.CBP and message.command == 'lookup'



def locate(service: str, *, dispatcher: "str | None" = None, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A client asks whether a service has at least one dispatcher. (CBQ)"""
    return Message.new(
        Direction.CBQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command='locate',
        identifier=identifier,
        prefix=prefix,
    )


def is_locate(message: Message) -> bool:
    """Whether ``message`` is a locate (CBQ locate)."""
    return message.direction == Direction.CBQ and message.command == 'locate'



def locate_reply(request: Message, payload, *, dispatcher: "str | None | object" = ...) -> Message:
    """yes if the service has a dispatcher, else no.

    Built from the locate it answers (CBP).
    """
    payload = encode_yesno(payload)
    if not (is_locate(request)):
        raise ValueError(f"locate_reply answers locate, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_locate_reply(message: Message) -> bool:
    """Whether ``message`` is a locate_reply (CBP locate)."""
    return message.direction == Direction.CBP and message.command == 'locate'



def client_broker_error(request: Message, *, dispatcher: "str | None | object" = ...) -> Message:
    """The broker's error reply to a client command it does not know.

    Built from the lookup or locate it answers (CBE).
    """
    payload = Text.UNKNOWN_COMMAND
    if not (is_lookup(request) or is_locate(request)):
        raise ValueError(f"client_broker_error answers lookup or locate, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.error(payload)
    return request.error(payload, dispatcher=dispatcher)


def is_client_broker_error(message: Message) -> bool:
    """Whether ``message`` is a client_broker_error (CBE)."""
    return message.direction == Direction.CBE



def client_dispatcher_query(service: str, command: str, payload: object = None, *, dispatcher: "str | None" = None, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A client's request to one dispatcher, routed by dispatcher name, or with a blank
    dispatcher by the keyword's learned owner. The keyword commands below are its usual
    commands. (CDQ)"""
    return Message.new(
        Direction.CDQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command=command,
        payload=None if payload is None else encode_text(payload),
        identifier=identifier,
        prefix=prefix,
    )


def is_client_dispatcher_query(message: Message) -> bool:
    """Whether ``message`` is a client_dispatcher_query (CDQ)."""
    return message.direction == Direction.CDQ



def client_dispatcher_reply(request: Message, payload, *, dispatcher: str) -> Message:
    """A dispatcher's answer, relayed to the client unchanged but for the prefix; the
    dispatcher frame names the answering dispatcher.

    Built from the client_dispatcher_query it answers (CDP), naming the answering ``dispatcher``.
    """
    payload = encode_text(payload)
    if not (is_client_dispatcher_query(request)):
        raise ValueError(f"client_dispatcher_reply answers client_dispatcher_query, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_client_dispatcher_reply(message: Message) -> bool:
    """Whether ``message`` is a client_dispatcher_reply (CDP)."""
    return message.direction == Direction.CDP



def client_dispatcher_error(request: Message, payload, *, dispatcher: "str | None | object" = ...) -> Message:
    """An error answer to a client's request, from the dispatcher or from the broker.

    Built from the client_dispatcher_query it answers (CDE).
    """
    payload = encode_text(payload)
    if not (is_client_dispatcher_query(request)):
        raise ValueError(f"client_dispatcher_error answers client_dispatcher_query, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.error(payload)
    return request.error(payload, dispatcher=dispatcher)


def is_client_dispatcher_error(message: Message) -> bool:
    """Whether ``message`` is a client_dispatcher_error (CDE)."""
    return message.direction == Direction.CDE



def client_service_query(service: str, command: str, payload: object = None, *, dispatcher: "str | None" = None, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A client's question to every dispatcher of a service (fan-out). (CSQ)"""
    return Message.new(
        Direction.CSQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command=command,
        payload=None if payload is None else encode_text(payload),
        identifier=identifier,
        prefix=prefix,
    )


def is_client_service_query(message: Message) -> bool:
    """Whether ``message`` is a client_service_query (CSQ)."""
    return message.direction == Direction.CSQ



def client_service_reply(request: Message, payload, *, dispatcher: "str | None | object" = ...) -> Message:
    """The merged fan-out answer: one usable answer gives that payload with the dispatcher
    frame naming its dispatcher; several are joined with ':'; none gives the fail sentinel.

    Built from the client_service_query it answers (CSP).
    """
    payload = encode_fail_or_text(payload)
    if not (is_client_service_query(request)):
        raise ValueError(f"client_service_reply answers client_service_query, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_client_service_reply(message: Message) -> bool:
    """Whether ``message`` is a client_service_reply (CSP)."""
    return message.direction == Direction.CSP



def client_service_error(request: Message, *, dispatcher: "str | None | object" = ...) -> Message:
    """The broker's error answer to a fan-out (no dispatcher for the service).

    Built from the client_service_query it answers (CSE).
    """
    payload = Text.NO_DISPATCHERS_FOR_SERVICE.format(service=request.service)
    if not (is_client_service_query(request)):
        raise ValueError(f"client_service_error answers client_service_query, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.error(payload)
    return request.error(payload, dispatcher=dispatcher)


def is_client_service_error(message: Message) -> bool:
    """Whether ``message`` is a client_service_error (CSE)."""
    return message.direction == Direction.CSE



def service_dispatcher_query(service: str, command: str, payload: object = None, *, dispatcher: "str | None" = None, keyword: "str | None" = None, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """The broker's copy of a fan-out to one dispatcher, with the client's prefix. (SDQ)"""
    return Message.new(
        Direction.SDQ,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command=command,
        payload=None if payload is None else encode_text(payload),
        identifier=identifier,
        prefix=prefix,
    )


def is_service_dispatcher_query(message: Message) -> bool:
    """Whether ``message`` is a service_dispatcher_query (SDQ)."""
    return message.direction == Direction.SDQ



def service_dispatcher_reply(request: Message, payload, *, dispatcher: str) -> Message:
    """One dispatcher's answer to a fan-out copy.

    Built from the service_dispatcher_query it answers (SDP), naming the answering ``dispatcher``.
    """
    payload = encode_text(payload)
    if not (is_service_dispatcher_query(request)):
        raise ValueError(f"service_dispatcher_reply answers service_dispatcher_query, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.reply(payload)
    return request.reply(payload, dispatcher=dispatcher)


def is_service_dispatcher_reply(message: Message) -> bool:
    """Whether ``message`` is a service_dispatcher_reply (SDP)."""
    return message.direction == Direction.SDP



def service_dispatcher_error(request: Message, payload, *, dispatcher: str) -> Message:
    """One dispatcher's error answer to a fan-out copy (counts as no usable answer).

    Built from the service_dispatcher_query it answers (SDE), naming the answering ``dispatcher``.
    """
    payload = encode_text(payload)
    if not (is_service_dispatcher_query(request)):
        raise ValueError(f"service_dispatcher_error answers service_dispatcher_query, not {request.direction} {request.command}")
    if dispatcher is ...:
        return request.error(payload)
    return request.error(payload, dispatcher=dispatcher)


def is_service_dispatcher_error(message: Message) -> bool:
    """Whether ``message`` is a service_dispatcher_error (SDE)."""
    return message.direction == Direction.SDE



def broadcast(service: str, dispatcher: str, keyword: str, payload: object = None, *, identifier: "bytes | None" = None, prefix: "tuple[bytes, ...] | list[bytes]" = ()) -> Message:
    """A dispatcher publishes a keyword's new value on its PUB socket, with no prefix.
    Subscribers use the service name as topic prefix and drop services that only start with
    theirs. (CDB)"""
    return Message.new(
        Direction.CDB,
        service=service,
        dispatcher=dispatcher,
        keyword=keyword,
        command='broadcast',
        payload=None if payload is None else encode_value(payload),
        identifier=identifier,
        prefix=prefix,
    )


def is_broadcast(message: Message) -> bool:
    """Whether ``message`` is a broadcast (CDB broadcast)."""
    return message.direction == Direction.CDB and message.command == 'broadcast'

