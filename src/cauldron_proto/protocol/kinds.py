"""Message kinds of the protocol: build a message of a kind, and say whether one is of it.

Written by hand over the spec's kinds as data (:data:`~.tables.MESSAGE_KINDS`: direction,
command, field rules, payload type or fixed text, and which kinds answer which).

* :func:`build` makes a kind that answers nothing from its fields:
  ``build("welcome", service="KTEST", dispatcher="disp1")``. Required fields must be given,
  blank ones may not be; a kind with no fixed command (``inquiry``, the queries) needs
  ``command``.
* :func:`answer` makes a kind that answers another (it is among that kind's ``replies`` or
  ``errors``) from the message it answers, keeping its fields, identifier and routing prefix:
  ``answer("confirmed", welcome)``; ValueError for a message of another kind. A kind whose
  dispatcher frame is required, answering one whose is not, needs ``dispatcher=``.
* A payload with a fixed text is filled in (its template fields from the fields of the
  message, or keywords); any other payload goes through its payload type's encoder.
* :func:`is_kind` says whether a message is of a kind (its direction and, for kinds with
  one, its command).

The kinds the package itself builds have named builders too, with the fields as
arguments: ``welcome(service, dispatcher)``, ``heartbeat_answer(beat, now)``, ...
"""

from __future__ import annotations

import string
from typing import Any

from .codec import Message
from .payloads import PAYLOAD_CODECS
from .tables import MESSAGE_KINDS, TEXTS, MessageKind

__all__ = ["build", "answer", "is_kind", "ANSWERS",
           "inquiry", "welcome", "ready", "heartbeat", "heartbeat_answer", "confirmed", "broadcast",
           "client_dispatcher_query", "client_dispatcher_reply", "client_service_query", "client_service_error",
           "is_welcome", "is_heartbeat", "is_heartbeat_answer", "is_broadcast"]

_FIELDS = ("service", "dispatcher", "keyword")
_ENVELOPE_FIELDS = _FIELDS + ("command",)
_UNSET: Any = ...

#: The kinds each kind answers (it is among their ``replies`` or ``errors``), by name.
ANSWERS: dict[str, tuple[str, ...]] = {
    name: tuple(other for other, kind in MESSAGE_KINDS.items() if name in kind.replies + kind.errors)
    for name in MESSAGE_KINDS}


#: The template fields of each text a kind's payload is fixed to (computed once).
_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(field for _, field, _, _ in string.Formatter().parse(TEXTS[kind.payload_text]) if field)
    for name, kind in MESSAGE_KINDS.items() if kind.payload_text is not None}


def is_kind(name: str, message: Message) -> bool:
    """Whether ``message`` is of kind ``name`` (its direction and, if the kind has one, command)."""
    kind = MESSAGE_KINDS[name]
    return message.direction == kind.direction and (kind.command is None or message.command == kind.command)


def build(name: str, command: str | None = None, payload: object = None, *, service: str | None = None,
          dispatcher: str | None = None, keyword: str | None = None, identifier: bytes | None = None,
          prefix: tuple[bytes, ...] | list[bytes] = ()) -> Message:
    """A message of kind ``name``, which answers no other kind, from its fields."""
    kind = MESSAGE_KINDS[name]
    if ANSWERS[name]:
        raise TypeError(f"{name} answers {' or '.join(ANSWERS[name])}: made with answer({name!r}, request)")
    given = {"service": service, "dispatcher": dispatcher, "keyword": keyword}
    for field, value in given.items():
        rule = getattr(kind, field)
        if rule == "required" and value is None:
            raise TypeError(f"{name} needs {field}")
        if rule == "blank" and value is not None:
            raise TypeError(f"{name} has no {field} (it is blank)")
    if kind.command is None and command is None:
        raise TypeError(f"{name} needs a command")
    text = (_payload(kind, payload, {**given, "command": command}, optional=True)
            if payload is not None or kind.payload_text else None)
    return Message.new(kind.direction, **given, command=kind.command or command, payload=text,
                       identifier=identifier, prefix=prefix)


def answer(name: str, request: Message, payload: object = None, *, dispatcher: Any = _UNSET,
           **text_fields: Any) -> Message:
    """A message of kind ``name`` answering ``request``: its reply or error reply, keeping
    the request's fields, identifier and prefix; ``dispatcher`` names the answering one."""
    kind = MESSAGE_KINDS[name]
    answers = ANSWERS[name]
    if not answers:
        raise TypeError(f"{name} answers no kind: made with build({name!r}, ...)")
    if not any(is_kind(other, request) for other in answers):
        raise ValueError(f"{name} answers {' or '.join(answers)}, not {request.direction} {request.command}")
    if dispatcher is _UNSET and _names_dispatcher(kind, answers):
        raise TypeError(f"{name} names the answering dispatcher: give dispatcher=")
    fields = {field: getattr(request, field) for field in _TEXT_FIELDS.get(name, ()) if field in _ENVELOPE_FIELDS}
    text = _payload(kind, payload, {**fields, **text_fields}, optional=False)
    make = request.error if kind.direction[2] == "E" else request.reply
    return make(text) if dispatcher is _UNSET else make(text, dispatcher=dispatcher)


def _names_dispatcher(kind: MessageKind, answers: tuple[str, ...]) -> bool:
    """An answer that must name its dispatcher, to a request that may not."""
    return kind.dispatcher == "required" and any(MESSAGE_KINDS[a].dispatcher != "required" for a in answers)


def _payload(kind: MessageKind, payload: object, fields: dict[str, Any], optional: bool) -> Any:
    """The payload of a message of ``kind``: its fixed text (filled from ``fields``), blank,
    or ``payload`` through its type's encoder (None stays blank when ``optional``)."""
    if kind.payload_text is not None:
        template, names = TEXTS[kind.payload_text], _TEXT_FIELDS[kind.name]
        return template.format(**{field: fields[field] for field in names}) if names else template
    if kind.payload == "blank" or (optional and payload is None):
        return None
    return PAYLOAD_CODECS[kind.payload].encode(payload)


# -- the kinds the package builds, by name --------------------------------------------------------

def inquiry(command: str, *, service: str | None = None, dispatcher: str | None = None,
            keyword: str | None = None, identifier: bytes | None = None, prefix=()) -> Message:
    """Is a broker alive? (UBQ ``command``; ``ZMQBroker.check()`` sends ``check``)."""
    return build("inquiry", command, service=service, dispatcher=dispatcher, keyword=keyword,
                 identifier=identifier, prefix=prefix)


def welcome(service: str, dispatcher: str, *, keyword: str | None = None, identifier: bytes | None = None,
            prefix=()) -> Message:
    """A dispatcher registers its (service, dispatcher name) at its socket (DBQ welcome)."""
    return build("welcome", service=service, dispatcher=dispatcher, keyword=keyword, identifier=identifier,
                 prefix=prefix)


def ready(service: str, dispatcher: str, *, keyword: str | None = None, identifier: bytes | None = None,
          prefix=()) -> Message:
    """A registered dispatcher is ready for work (DBQ ready)."""
    return build("ready", service=service, dispatcher=dispatcher, keyword=keyword, identifier=identifier,
                 prefix=prefix)


def heartbeat(service: str, dispatcher: str, *, identifier: bytes | None = None, prefix=()) -> Message:
    """The broker asks a ready dispatcher idle for T to show it is alive (DBP heartbeat)."""
    return build("heartbeat", service=service, dispatcher=dispatcher, identifier=identifier, prefix=prefix)


def heartbeat_answer(beat: Message, now: float, *, dispatcher: Any = _UNSET) -> Message:
    """A dispatcher's answer to heartbeat ``beat``: the time ``now`` (DBQ heartbeat, the same
    identifier); the one way heartbeats are answered."""
    return answer("heartbeat_answer", beat, now, dispatcher=dispatcher)


def confirmed(welcome: Message, *, dispatcher: Any = _UNSET) -> Message:
    """The broker confirms ``welcome`` (DBP welcome ``confirmed``)."""
    return answer("confirmed", welcome, dispatcher=dispatcher)


def broadcast(service: str, dispatcher: str, keyword: str, payload: object = None, *,
              identifier: bytes | None = None, prefix=()) -> Message:
    """A dispatcher publishes a keyword's new value (CDB broadcast)."""
    return build("broadcast", payload=payload, service=service, dispatcher=dispatcher, keyword=keyword,
                 identifier=identifier, prefix=prefix)


def client_dispatcher_query(service: str, command: str, payload: object = None, *, dispatcher: str | None = None,
                            keyword: str | None = None, identifier: bytes | None = None, prefix=()) -> Message:
    """A client's request to one dispatcher (CDQ)."""
    return build("client_dispatcher_query", command, payload, service=service, dispatcher=dispatcher,
                 keyword=keyword, identifier=identifier, prefix=prefix)


def client_dispatcher_reply(request: Message, payload: object, *, dispatcher: str) -> Message:
    """A dispatcher's answer to ``request``, naming the answering ``dispatcher`` (CDP)."""
    return answer("client_dispatcher_reply", request, payload, dispatcher=dispatcher)


def client_service_query(service: str, command: str, payload: object = None, *, dispatcher: str | None = None,
                         keyword: str | None = None, identifier: bytes | None = None, prefix=()) -> Message:
    """A client's question to every dispatcher of a service, a fan-out (CSQ)."""
    return build("client_service_query", command, payload, service=service, dispatcher=dispatcher,
                 keyword=keyword, identifier=identifier, prefix=prefix)


def client_service_error(request: Message, *, dispatcher: Any = _UNSET) -> Message:
    """The broker's error answer to a fan-out with no dispatcher for the service (CSE)."""
    return answer("client_service_error", request, dispatcher=dispatcher)


def is_welcome(message: Message) -> bool:
    return is_kind("welcome", message)


def is_heartbeat(message: Message) -> bool:
    return is_kind("heartbeat", message)


def is_heartbeat_answer(message: Message) -> bool:
    return is_kind("heartbeat_answer", message)


def is_broadcast(message: Message) -> bool:
    return is_kind("broadcast", message)
