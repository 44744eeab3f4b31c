"""A dispatcher's answers to client requests, without I/O: a request in, its reply out.

``answer(request, keywords, service, name)`` takes a decoded ``CDQ`` or ``SDQ`` message
and gives the ``CDP``/``SDP`` reply or ``CDE``/``SDE`` error reply, with the dispatcher's
own ``name`` in the dispatcher frame and the request's routing prefix kept, so the broker
can take it back to the client. It runs in a worker thread, never in the I/O thread.

Commands: ``update`` (the keyword's value), ``modify`` (write the payload; the resulting
value), ``identify`` (the KTL type of the keyword named in the payload, or in the keyword
frame when the payload is empty or blank; blank when this dispatcher does not have it),
``enumerate`` (the sorted keyword names joined with ``:``), ``units`` (JSON: the units text,
null, or an enumerated keyword's map of integer text to names), ``heartbeat`` (the time).
Anything else is ``Bad command 'NAME'!``. A read of a keyword with no value is answered blank.

A handler returns the payload, or is a generator of steps (see :mod:`.steps`) that returns
it: ``update`` and ``modify`` yield the keyword's ``on_read`` and ``validate``, which the
threaded dispatcher calls in a worker and :class:`cauldron_proto.aio.Dispatcher` awaits.
:func:`answering` is the answer as steps; :func:`answer` runs it in place.
"""

from __future__ import annotations

import logging
import time
from types import GeneratorType
from typing import Callable, Mapping

from ...protocol import Message, Text
from ...protocol.payloads import encode_ktl_type, encode_list, encode_time, encode_units
from ...ktl import UNKNOWN_KEYWORD, WRITE_REFUSED, KTLValueError
from ..keyword import Keyword
from .steps import Steps, run

__all__ = ["answer", "answering", "HANDLERS", "KeywordProblem"]

_log = logging.getLogger("cauldron_proto.dispatcher")


class KeywordProblem(Exception):
    """A request this dispatcher answers with an error reply; the text is the payload."""


def _keyword(request: Message, keywords: Mapping[str, Keyword], service: str) -> Keyword:
    name = request.keyword
    keyword = keywords.get(name.upper()) if name else None
    if keyword is None:
        raise KeywordProblem(UNKNOWN_KEYWORD.format(keyword=name or "", service=service))
    return keyword


def _update(request, keywords, service):
    return (yield from _keyword(request, keywords, service).reading())


def _modify(request, keywords, service):
    keyword = _keyword(request, keywords, service)
    try:
        return (yield from keyword.writing(request.payload))
    except KTLValueError as exc:
        raise KeywordProblem(f"{keyword.name}: {exc}") from None
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise KeywordProblem(WRITE_REFUSED.format(keyword=keyword.name, reason=reason)) from None


def _identify(request, keywords, service):
    name = request.payload if isinstance(request.payload, str) and request.payload else request.keyword
    keyword = keywords.get(name.upper()) if name else None
    return encode_ktl_type(None if keyword is None else keyword.type)


def _enumerate(request, keywords, service):
    return encode_list(sorted(keywords))  # no keywords: the empty string, as existing dispatchers answer


def _units(request, keywords, service):
    return encode_units(_keyword(request, keywords, service).units_answer)


def _heartbeat(request, keywords, service):
    return encode_time(time.time())


#: The commands a dispatcher answers, by name.
HANDLERS: dict[str, Callable] = {
    "update": _update,
    "modify": _modify,
    "identify": _identify,
    "enumerate": _enumerate,
    "units": _units,
    "heartbeat": _heartbeat,
}


def answer(request: Message, keywords: Mapping[str, Keyword], service: str, name: str) -> Message:
    """The reply or error reply to ``request``, naming dispatcher ``name``."""
    return run(answering(request, keywords, service, name))


def answering(request: Message, keywords: Mapping[str, Keyword], service: str, name: str) -> Steps[Message]:
    """:func:`answer` as steps: the user callbacks it needs are yielded (see :mod:`.steps`)."""
    handler = HANDLERS.get(request.command or "")
    if handler is None:
        return request.error(Text.BAD_COMMAND.format(command=request.command or ""), dispatcher=name)
    try:
        payload = handler(request, keywords, service)
        if isinstance(payload, GeneratorType):
            payload = yield from payload
    except KeywordProblem as exc:
        return request.error(str(exc), dispatcher=name)
    except Exception as exc:
        _log.exception("%s: %s of %s raised", name, request.command, request.keyword)
        return request.error(f"{request.command} failed: {type(exc).__name__}: {exc}", dispatcher=name)
    return request.reply(payload, dispatcher=name)
