"""A dispatcher's answers to client requests, without I/O: a request in, its reply out.

``answering(request, table, now)`` takes a decoded ``CDQ`` or ``SDQ`` message and the
dispatcher's :class:`~.keywords.KeywordTable`, and gives, as steps (see :mod:`.steps`), an
:class:`Answer` or the :class:`Store` a write or a computed read still has to make;
``finish(outcome, table)`` makes it and gives the :class:`Answer`: the ``CDP``/``SDP``
reply or ``CDE``/``SDE`` error reply, with the dispatcher's own name in the dispatcher frame
and the request's routing prefix kept (so the broker can take it back to the client), and
the broadcast the change of value calls for. A threaded layer calls ``finish`` under its
lock, so broadcasts leave in the order values were stored; ``answer`` does both in place.

Commands: ``update`` (the keyword's value), ``modify`` (write the payload; the resulting
value), ``identify`` (the KTL type of the keyword named in the payload, or in the keyword
frame when the payload is empty or blank; blank when this dispatcher does not have it),
``enumerate`` (the sorted keyword names joined with ``:``), ``units`` (JSON: the units text,
null, or an enumerated keyword's map of integer text to names), ``heartbeat`` (``now``, the
wall-clock time the layer gives). Anything else is ``Bad command 'NAME'!``. A read of a
keyword with no value is answered blank.

A handler returns the payload or a :class:`Store`, or is a generator of steps that returns
one: ``update`` and ``modify`` yield the keyword's ``on_read`` and ``validate``, which the
threaded dispatcher calls in a worker and :class:`cauldron_proto.aio.Dispatcher` awaits.
"""

from __future__ import annotations

import logging
from types import GeneratorType
from typing import Any, Callable, NamedTuple, Optional, Union

from ...protocol import Command, Message, Text
from ...protocol.payloads import encode_ktl_type, encode_list, encode_time, encode_units
from ...ktl import UNKNOWN_KEYWORD, WRITE_REFUSED, KTLValueError
from .keywords import KeywordState, KeywordTable
from .steps import Steps, run

__all__ = ["answer", "answering", "finish", "Answer", "Store", "HANDLERS", "KeywordProblem"]

_log = logging.getLogger("cauldron_proto.dispatcher")


class KeywordProblem(Exception):
    """A request this dispatcher answers with an error reply; the text is the payload."""


class Answer(NamedTuple):
    """The reply (or error reply) to send, and the broadcast to send before it (or None)."""

    reply: Message
    broadcast: Optional[Message] = None


class Store(NamedTuple):
    """A value ``request`` still has to store in ``keyword`` before it is answered."""

    request: Message
    keyword: KeywordState
    value: Any


Outcome = Union[Answer, Store]


def _keyword(request: Message, table: KeywordTable) -> KeywordState:
    keyword = table.get(request.keyword)
    if keyword is None:
        raise KeywordProblem(UNKNOWN_KEYWORD.format(keyword=request.keyword or "", service=table.service))
    return keyword


def _update(request, table, now):
    keyword = _keyword(request, table)
    if keyword.on_read is None:
        return keyword.ascii
    return Store(request, keyword, (yield from keyword.reading()))


def _modify(request, table, now):
    keyword = _keyword(request, table)
    try:
        return Store(request, keyword, (yield from keyword.writing(request.payload)))
    except Exception as exc:
        raise KeywordProblem(_refusal(keyword, exc)) from None


def _refusal(keyword: KeywordState, exc: Exception) -> str:
    """Why a write was refused: a value of the wrong type, or what ``validate`` raised."""
    if isinstance(exc, KTLValueError):
        return f"{keyword.name}: {exc}"
    return WRITE_REFUSED.format(keyword=keyword.name, reason=str(exc) or type(exc).__name__)


def _identify(request, table, now):
    name = request.payload if isinstance(request.payload, str) and request.payload else request.keyword
    keyword = table.get(name)
    return encode_ktl_type(None if keyword is None else keyword.type)


def _enumerate(request, table, now):
    return encode_list(sorted(table))  # no keywords: the empty string, as existing dispatchers answer


def _units(request, table, now):
    return encode_units(_keyword(request, table).units_answer)


def _heartbeat(request, table, now):
    return encode_time(now)


#: The commands a dispatcher answers, by name.
HANDLERS: dict[str, Callable] = {
    "update": _update,
    "modify": _modify,
    "identify": _identify,
    "enumerate": _enumerate,
    "units": _units,
    "heartbeat": _heartbeat,
}


def answer(request: Message, table: KeywordTable, now: float) -> Answer:
    """The answer to ``request`` (its user callbacks called in place), value stored."""
    return finish(run(answering(request, table, now)), table)


def answering(request: Message, table: KeywordTable, now: float) -> Steps[Outcome]:
    """The answer to ``request`` as steps: the user callbacks it needs are yielded (see
    :mod:`.steps`); an :class:`Answer`, or the :class:`Store` to :func:`finish`."""
    name = table.dispatcher
    handler = HANDLERS.get(request.command or "")
    if handler is None:
        return Answer(request.error(Text.BAD_COMMAND.format(command=request.command or ""), dispatcher=name))
    try:
        payload = handler(request, table, now)
        if isinstance(payload, GeneratorType):
            payload = yield from payload
    except KeywordProblem as exc:
        return Answer(request.error(str(exc), dispatcher=name))
    except Exception as exc:
        return Answer(_failed(request, exc, name))
    return payload if isinstance(payload, Store) else Answer(request.reply(payload, dispatcher=name))


def finish(outcome: Outcome, table: KeywordTable) -> Answer:
    """The :class:`Answer`, once the value of a :class:`Store` is stored (a value of the
    wrong type, from ``validate`` or ``on_read``, is an error reply)."""
    if isinstance(outcome, Answer):
        return outcome
    request, keyword, value = outcome
    try:
        change = table.store(keyword, value)
    except Exception as exc:
        if request.command == Command.MODIFY:
            return Answer(request.error(_refusal(keyword, exc), dispatcher=table.dispatcher))
        return Answer(_failed(request, exc, table.dispatcher))
    return Answer(request.reply(change.text, dispatcher=table.dispatcher), change.broadcast)


def _failed(request: Message, exc: Exception, name: str) -> Message:
    _log.error("%s: %s of %s raised", name, request.command, request.keyword, exc_info=exc)
    return request.error(f"{request.command} failed: {type(exc).__name__}: {exc}", dispatcher=name)
