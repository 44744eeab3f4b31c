# GENERATED FILE: do not edit by hand.
# Generated from spec/protocol.yaml by `python -m codegen`; change the spec and regenerate.
# `python -m codegen --check` fails when this file is stale.
"""Protocol constants and tables of the cauldron-zmq protocol (spec version 1).

Directions, commands, texts, configuration keys and message kinds, as data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

PROTOCOL = 'cauldron-zmq'
SPEC_VERSION = 1

#: a dispatcher silent this many heartbeat periods T is expired by the broker (forgotten, its requests in flight answered 'Dispatcher Timed Out').
EXPIRY_MULTIPLE = 5
#: a dispatcher that hears nothing from the broker for this many heartbeat periods T reconnects and registers again.
DISPATCHER_LIVENESS = 3

#: The blank sentinel: the field is absent.
BLANK = b'\x01'
#: The fail sentinel: a failed result (for example a fan-out that got no usable answer).
FAIL_FRAME = b'\x02'

#: Number of envelope frames at the end of every protocol message.
ENVELOPE_SIZE = 7
#: Envelope frame names, in wire order.
FRAME_NAMES = ('service', 'dispatcher', 'keyword', 'direction', 'command', 'payload', 'identifier', )
#: Envelope frames whose content is text (decoded on access).
TEXT_FRAMES = ('service', 'dispatcher', 'keyword', 'direction', 'command', 'payload', )
#: Envelope frames that may hold the blank sentinel.
BLANK_FRAMES = frozenset({'service', 'dispatcher', 'keyword', 'command', 'payload', 'identifier', })
#: Envelope frames that may hold the fail sentinel.
FAIL_FRAMES = frozenset({'payload', 'identifier', })

#: Position of each envelope frame in the envelope, by name.
FRAME_INDEX = {'service': 0, 'dispatcher': 1, 'keyword': 2, 'direction': 3, 'command': 4, 'payload': 5, 'identifier': 6}
#: The same positions, one constant a frame (the codec reads them on every message).
SERVICE_AT = 0
DISPATCHER_AT = 1
KEYWORD_AT = 2
DIRECTION_AT = 3
COMMAND_AT = 4
PAYLOAD_AT = 5
IDENTIFIER_AT = 6
#: Positions of the text frames, in wire order.
TEXT_INDICES = (0, 1, 2, 3, 4, 5, )
#: Positions of the frames that may not hold the fail sentinel, in wire order.
NO_FAIL_INDICES = (0, 1, 2, 3, 4, )

#: Reasons for refusing frames, by rule id (templates for str.format).
RULES = {
    'too_few_frames': 'expected at least 7 frames, got {count}',
    'invalid_utf8': 'invalid UTF-8: {error}',
    'invalid_direction': '{value!r} is not a direction code',
    'fail_not_allowed': 'the fail sentinel is only valid in the payload and identifier frames',
    'keyword_without_service': 'a keyword needs a service (the service frame is blank)',
    'dispatcher_without_service': 'a dispatcher needs a service (the service frame is blank)',
    'field_required': '{kind} needs a {frame} (it is blank)',
    'field_must_be_blank': '{kind} must have a blank {frame}',
}


class Endpoint(StrEnum):
    """The letters of a direction code naming who sends and who answers."""

    CLIENT = 'C'
    SERVICE = 'S'
    DISPATCHER = 'D'
    BROKER = 'B'
    UNIDENTIFIED = 'U'


class Kind(StrEnum):
    """The last letter of a direction code."""

    QUERY = 'Q'
    REPLY = 'P'
    ERROR = 'E'
    BROADCAST = 'B'


class Direction(StrEnum):
    """The 24 direction codes: origin, responder, kind."""

    CDQ = 'CDQ'
    CDP = 'CDP'
    CDE = 'CDE'
    CDB = 'CDB'
    DBQ = 'DBQ'
    DBP = 'DBP'
    DBE = 'DBE'
    DBB = 'DBB'
    CBQ = 'CBQ'
    CBP = 'CBP'
    CBE = 'CBE'
    CBB = 'CBB'
    CSQ = 'CSQ'
    CSP = 'CSP'
    CSE = 'CSE'
    CSB = 'CSB'
    SDQ = 'SDQ'
    SDP = 'SDP'
    SDE = 'SDE'
    SDB = 'SDB'
    UBQ = 'UBQ'
    UBP = 'UBP'
    UBE = 'UBE'
    UBB = 'UBB'

    @property
    def origin(self) -> Endpoint:
        return Endpoint(self[0])

    @property
    def responder(self) -> Endpoint:
        return Endpoint(self[1])

    @property
    def kind(self) -> Kind:
        return Kind(self[2])

    @property
    def reply(self) -> "Direction":
        """The direction of a reply to a message with this direction."""
        return REPLY_DIRECTION[self]

    @property
    def error(self) -> "Direction":
        """The direction of an error reply to a message with this direction."""
        return ERROR_DIRECTION[self]


#: Direction of a reply, by direction (A reply keeps every field but the payload and turns Q or B into P; an error reply turns the kind into E. Asked for the reply of a P or E, the existing code gives Q: that is how a dispatcher answers the broker's heartbeat (DBP heartbeat -> DBQ heartbeat).)
REPLY_DIRECTION = {
    Direction.CDQ: Direction.CDP,
    Direction.CDP: Direction.CDQ,
    Direction.CDE: Direction.CDQ,
    Direction.CDB: Direction.CDP,
    Direction.DBQ: Direction.DBP,
    Direction.DBP: Direction.DBQ,
    Direction.DBE: Direction.DBQ,
    Direction.DBB: Direction.DBP,
    Direction.CBQ: Direction.CBP,
    Direction.CBP: Direction.CBQ,
    Direction.CBE: Direction.CBQ,
    Direction.CBB: Direction.CBP,
    Direction.CSQ: Direction.CSP,
    Direction.CSP: Direction.CSQ,
    Direction.CSE: Direction.CSQ,
    Direction.CSB: Direction.CSP,
    Direction.SDQ: Direction.SDP,
    Direction.SDP: Direction.SDQ,
    Direction.SDE: Direction.SDQ,
    Direction.SDB: Direction.SDP,
    Direction.UBQ: Direction.UBP,
    Direction.UBP: Direction.UBQ,
    Direction.UBE: Direction.UBQ,
    Direction.UBB: Direction.UBP,
}

#: Direction of an error reply, by direction.
ERROR_DIRECTION = {
    Direction.CDQ: Direction.CDE,
    Direction.CDP: Direction.CDE,
    Direction.CDE: Direction.CDE,
    Direction.CDB: Direction.CDE,
    Direction.DBQ: Direction.DBE,
    Direction.DBP: Direction.DBE,
    Direction.DBE: Direction.DBE,
    Direction.DBB: Direction.DBE,
    Direction.CBQ: Direction.CBE,
    Direction.CBP: Direction.CBE,
    Direction.CBE: Direction.CBE,
    Direction.CBB: Direction.CBE,
    Direction.CSQ: Direction.CSE,
    Direction.CSP: Direction.CSE,
    Direction.CSE: Direction.CSE,
    Direction.CSB: Direction.CSE,
    Direction.SDQ: Direction.SDE,
    Direction.SDP: Direction.SDE,
    Direction.SDE: Direction.SDE,
    Direction.SDB: Direction.SDE,
    Direction.UBQ: Direction.UBE,
    Direction.UBP: Direction.UBE,
    Direction.UBE: Direction.UBE,
    Direction.UBB: Direction.UBE,
}


class Command(StrEnum):
    """Command names the protocol defines (a peer may send others)."""

    CHECK = 'check'  # inquiry sent by ZMQBroker.check()
    WELCOME = 'welcome'  # a dispatcher registers
    READY = 'ready'  # a dispatcher is ready for work
    HEARTBEAT = 'heartbeat'  # heartbeat from the broker, and a dispatcher's answer
    LOOKUP = 'lookup'  # a client asks for the subscribe address
    LOCATE = 'locate'  # a client asks whether a service has a dispatcher
    STATUS = 'status'  # an operator asks what the broker serves and has done (JSON)
    UPDATE = 'update'  # read a keyword's current value
    MODIFY = 'modify'  # write a keyword's value
    IDENTIFY = 'identify'  # ask which dispatcher has a keyword, and its KTL type
    ENUMERATE = 'enumerate'  # list a dispatcher's keywords
    UNITS = 'units'  # a keyword's units, as JSON
    BROADCAST = 'broadcast'  # a keyword's new value, published


#: KTL type names a dispatcher answers to `identify`.
KTL_TYPES = ('basic', 'string', 'integer', 'double', 'float', 'boolean', 'enumerated', 'mask', 'integer array', 'double array', 'float array', )

#: Payload types, with what they mean.
PAYLOAD_TYPES = {
    'text': 'UTF-8 text',
    'blank': 'the blank sentinel (0x01)',
    'empty': 'the empty string, an empty frame: what the existing client sends as the payload of every read and units request (a blank payload is read the same)',
    'json': 'a JSON document',
    'units': ('a keyword\'s units as JSON: null, a string such as "\\u00b0C" (non-ASCII escaped, as the existing dispatcher writes it), or for an enumerated keyword an object mapping integer text to names, {"0": '
 '"Off", "1": "On"}'),
    'list': "names joined with ':' (no names: the empty string)",
    'address': 'a ZMQ address (transport://host:port)',
    'yesno': "the text 'yes' or 'no'",
    'ktl_type': 'a KTL type name, or blank for a keyword the dispatcher does not have',
    'value': "a keyword value in KTL's ascii form (numbers as decimal text, booleans as 0/1, enumerated values as the integer text of their enumerator; see cauldron_proto.ktl), blank for a keyword with no value",
    'time': 'a time stamp as decimal text, seconds since the epoch (the existing dispatcher writes one decimal)',
    'status': ("the broker's status as a JSON object: `broker` (version, uptime, T, limits, addresses, CURVE, the I/O its loop runs: `compiled` or `pure Python`), `services` (each with its dispatchers: state, "
 "last heard, key, keywords, requests in flight, and a latency histogram of its routed requests), `counters` (the routing core's), `relay` (the broadcast relay's, or null); see docs/operating.md. "
 'Never a routing id: connections are counted'),
    'fail_or_text': "text, several answers joined with ':', or the fail sentinel (0x02)",
}


class PayloadType(msgspec.Struct, frozen=True, gc=False):
    """How a payload type is written: its ``format`` (one the hand-written
    :mod:`.payloads` reads) and what that format needs: ``nullable`` (text that may be
    blank), ``separator`` (joined names), ``values`` (choice: text -> value), ``digits``
    (decimal), ``json_type`` (json: the type a document must have)."""

    name: str
    format: str
    nullable: bool = False
    separator: str | None = None
    values: dict[str, Any] | None = None
    digits: int | None = None
    json_type: Any = None


#: Every payload type, by name, as data for :mod:`.payloads`.
PAYLOAD_FORMATS = {
    'text': PayloadType('text', 'text', nullable=False, separator=None,
        values=None, digits=None, json_type=None),
    'blank': PayloadType('blank', 'blank', nullable=False, separator=None,
        values=None, digits=None, json_type=None),
    'empty': PayloadType('empty', 'empty', nullable=False, separator=None,
        values=None, digits=None, json_type=None),
    'json': PayloadType('json', 'json', nullable=False, separator=None,
        values=None, digits=None, json_type=Any),
    'units': PayloadType('units', 'json', nullable=False, separator=None,
        values=None, digits=None, json_type=None | str | dict[str, str]),
    'list': PayloadType('list', 'joined', nullable=False, separator=':',
        values=None, digits=None, json_type=None),
    'address': PayloadType('address', 'address', nullable=False, separator=None,
        values=None, digits=None, json_type=None),
    'yesno': PayloadType('yesno', 'choice', nullable=False, separator=None,
        values={'yes': True, 'no': False}, digits=None, json_type=None),
    'ktl_type': PayloadType('ktl_type', 'ktl_type', nullable=False, separator=None,
        values=None, digits=None, json_type=None),
    'value': PayloadType('value', 'text', nullable=True, separator=None,
        values=None, digits=None, json_type=None),
    'time': PayloadType('time', 'decimal', nullable=False, separator=None,
        values=None, digits=1, json_type=None),
    'status': PayloadType('status', 'json', nullable=False, separator=None,
        values=None, digits=None, json_type=dict[str, Any]),
    'fail_or_text': PayloadType('fail_or_text', 'fail_or_text', nullable=False, separator=None,
        values=None, digits=None, json_type=None),
}


class Text:
    """Texts the broker and dispatchers send; templated ones are filled with str.format."""

    #: payload of the inquiry reply (UBP) (sent by the broker)
    BROKER_ALIVE = 'Broker Alive'
    #: payload of the welcome reply (DBP) (sent by the broker)
    CONFIRMED = 'confirmed'
    #: DBE or CBE reply to a command the broker does not know (sent by the broker)
    UNKNOWN_COMMAND = 'unknown command'
    #: payload of the broker's heartbeat (DBP heartbeat) (sent by the broker)
    HEARTBEAT_BEAT = 'beat'
    #: CDE to every request pending at a dispatcher that expired (sent by the broker)
    DISPATCHER_TIMED_OUT = 'Dispatcher Timed Out'
    #: CDE to a query naming a dispatcher that is not registered (sent by the broker)
    DISPATCHER_NOT_AVAILABLE = "Dispatcher '{dispatcher}' is not available for '{service}'"
    #: CDE to a query with a blank dispatcher and a keyword no dispatcher is known to own (sent by the broker)
    NO_DISPATCHER_FOR_KEYWORD = 'No dispatcher is available for {service}.{keyword}'
    #: CDE to a query with neither a dispatcher nor a keyword; fields are the six text fields joined with '|' (sent by the broker)
    AMBIGUOUS_DISPATCHER = 'Ambiguous dispatcher specification in message |{fields}|'
    #: CSE to a fan-out for a service with no dispatcher (sent by the broker)
    NO_DISPATCHERS_FOR_SERVICE = "No dispatchers for '{service}'"
    #: CBP locate, the service has a dispatcher (sent by the broker)
    LOCATE_YES = 'yes'
    #: CBP locate, the service has no dispatcher (sent by the broker)
    LOCATE_NO = 'no'
    #: CDE to every request pending at a dispatcher's old socket when it registers again from a new one (the existing broker dropped these silently) (sent by the broker)
    DISPATCHER_REPLACED = "Dispatcher '{dispatcher}' re-registered before answering"
    #: DBE to a ready or heartbeat answer from a socket the dispatcher name is not registered at while another socket holds the name (at most once per T per socket); it must send welcome (sent by the broker)
    DISPATCHER_NOT_REGISTERED = "Dispatcher '{dispatcher}' is not registered for '{service}'; send welcome"
    #: DBE to a welcome (CURVE) for a dispatcher name registered by a connection authenticated with another key (at most once per T per socket); only the same key takes a name over (sent by the broker)
    DISPATCHER_OWNED_BY_ANOTHER_KEY = "Dispatcher '{dispatcher}' of '{service}' is registered by another key; refused"
    #: DBE to a welcome, ready or heartbeat answer (CURVE with a curve_dispatchers policy) from a key the policy does not let serve that service (at most once per T per socket) (sent by the broker)
    KEY_MAY_NOT_SERVE = "Key '{key}' may not register dispatchers of '{service}'; refused"
    #: error reply to a request whose frames break a rule but can still be answered (sent by the broker)
    MALFORMED_REQUEST = 'Malformed message: {reason}'
    #: error reply to a well-formed query with a direction the broker does not serve (for example SDQ from a client) (sent by the broker)
    NO_HANDLER = 'The broker does not handle {direction} messages'
    #: CDE to a request for a dispatcher that already has the broker's limit of requests in flight (so memory stays bounded when a dispatcher stops answering) (sent by the broker)
    DISPATCHER_BUSY = "Dispatcher '{dispatcher}' has {count} requests in flight; try again later"
    #: error reply to a request that breaks one of the broker's limits (a message over max_message_size, a welcome past max_dispatchers, max_dispatchers_per_connection or max_name_length), naming the limit and its value (sent by the broker)
    OVER_LIMIT = "{what}: over the broker's limit {limit} = {value}"
    #: CDE to a request the broker could not queue to its dispatcher (the dispatcher's queue is at max_queued_messages) (sent by the broker)
    DISPATCHER_NOT_READING = "Dispatcher '{dispatcher}' is not reading: {count} messages queued to it; try again later"
    #: CDE to a request the broker could not forward because its dispatcher's connection is closed (without waiting for the dispatcher to expire) (sent by the broker)
    DISPATCHER_GONE = "Dispatcher '{dispatcher}' of '{service}' has gone: its connection is closed"
    #: DBE to a welcome for a name registered at another connection whose dispatcher answered the heartbeat the welcome made the broker send it (within T): a live holder keeps its name (sent by the broker)
    NAME_HELD = "Dispatcher '{dispatcher}' of '{service}' is served by a live dispatcher on another connection, which answered the broker's heartbeat; not registered"
    #: a dispatcher's error reply to a command it does not know (sent by the dispatcher)
    BAD_COMMAND = "Bad command '{command}'!"
    #: a dispatcher's error reply to a command about a keyword it does not have (sent by the dispatcher)
    UNKNOWN_KEYWORD = "Unknown keyword '{keyword}' for '{service}'"
    #: a dispatcher's error reply to a modify its keyword's validation refused (sent by the dispatcher)
    WRITE_REFUSED = 'Write to {keyword} refused: {reason}'


#: Every text template, by name.
TEXTS = {
    'broker_alive': Text.BROKER_ALIVE,
    'confirmed': Text.CONFIRMED,
    'unknown_command': Text.UNKNOWN_COMMAND,
    'heartbeat_beat': Text.HEARTBEAT_BEAT,
    'dispatcher_timed_out': Text.DISPATCHER_TIMED_OUT,
    'dispatcher_not_available': Text.DISPATCHER_NOT_AVAILABLE,
    'no_dispatcher_for_keyword': Text.NO_DISPATCHER_FOR_KEYWORD,
    'ambiguous_dispatcher': Text.AMBIGUOUS_DISPATCHER,
    'no_dispatchers_for_service': Text.NO_DISPATCHERS_FOR_SERVICE,
    'locate_yes': Text.LOCATE_YES,
    'locate_no': Text.LOCATE_NO,
    'dispatcher_replaced': Text.DISPATCHER_REPLACED,
    'dispatcher_not_registered': Text.DISPATCHER_NOT_REGISTERED,
    'dispatcher_owned_by_another_key': Text.DISPATCHER_OWNED_BY_ANOTHER_KEY,
    'key_may_not_serve': Text.KEY_MAY_NOT_SERVE,
    'malformed_request': Text.MALFORMED_REQUEST,
    'no_handler': Text.NO_HANDLER,
    'dispatcher_busy': Text.DISPATCHER_BUSY,
    'over_limit': Text.OVER_LIMIT,
    'dispatcher_not_reading': Text.DISPATCHER_NOT_READING,
    'dispatcher_gone': Text.DISPATCHER_GONE,
    'name_held': Text.NAME_HELD,
    'bad_command': Text.BAD_COMMAND,
    'unknown_keyword': Text.UNKNOWN_KEYWORD,
    'write_refused': Text.WRITE_REFUSED,
}


class ConfigKey(msgspec.Struct, frozen=True, gc=False):
    """One key of the `[zmq]` configuration section."""

    name: str
    default: str
    type: str
    description: str


#: The configuration section the keys live in.
CONFIG_SECTION = 'zmq'

#: Every configuration key, by name.
CONFIG_KEYS = {
    'broker': ConfigKey('broker', 'tcp://localhost:6513', 'address', "the broker's ROUTER; clients, dispatchers and inquiries connect here"),
    'publish': ConfigKey('publish', 'tcp://localhost:6512', 'address', "the broker's XSUB; dispatchers' PUB sockets connect here to publish broadcasts"),
    'subscribe': ConfigKey('subscribe', 'tcp://localhost:6511', 'address', "the broker's XPUB; clients' SUB sockets connect here to receive broadcasts"),
    'timeout': ConfigKey('timeout', '5', 'seconds', "the broker's heartbeat period T; a dispatcher silent for 5 T is expired"),
    'heartbeat': ConfigKey('heartbeat', 'yes', 'boolean', 'whether the broker sends heartbeats and expires silent dispatchers'),
    'autobroker': ConfigKey('autobroker', 'no', 'boolean', 'a dispatcher that finds no broker may start one'),
    'pool': ConfigKey('pool', '8', 'integer', 'dispatcher worker threads'),
    'max_message_size': ConfigKey('max_message_size', '1048576', 'integer', ("limit: the largest message in bytes (all its frames) the broker takes on its ROUTER (1 MiB); a larger frame disconnects its peer (ZMQ's MAXMSGSIZE), a larger message of smaller frames is dropped "
 '(a request is answered with an error naming the limit)')),
    'max_frames': ConfigKey('max_frames', '16', 'integer', 'limit: frames in one message on the ROUTER (7 envelope frames and up to 9 routing frames), and in one broadcast; a message or broadcast with more is dropped'),
    'max_queued_messages': ConfigKey('max_queued_messages', '1000', 'integer', ("limit: messages the ROUTER queues toward one peer that is not reading (ZMQ's SNDHWM); past it a message to that peer is dropped and counted, and a request forwarded to a dispatcher that is not "
 'reading is answered with an error at once')),
    'max_in_flight': ConfigKey('max_in_flight', '10000', 'integer', 'limit: requests in flight at one dispatcher; more are answered with an error at once (a fan-out skips that dispatcher)'),
    'max_dispatchers': ConfigKey('max_dispatchers', '10000', 'integer', 'limit: dispatchers registered at the broker in all; a welcome past it is refused with an error naming the limit'),
    'max_dispatchers_per_connection': ConfigKey('max_dispatchers_per_connection', '100', 'integer', 'limit: dispatchers registered from one connection (routing id); a welcome past it is refused with an error naming the limit'),
    'max_keywords_per_dispatcher': ConfigKey('max_keywords_per_dispatcher', '20000', 'integer', 'limit: keyword owners (and identify answers) the broker learns from one dispatcher; past it its answers are still relayed but not learned'),
    'max_keywords': ConfigKey('max_keywords', '250000', 'integer', 'limit: keyword owners (and identify answers) the broker learns from all dispatchers; past it answers are still relayed but not learned'),
    'max_name_length': ConfigKey('max_name_length', '128', 'integer', 'limit: characters in a service, dispatcher or keyword name the broker registers or learns; a welcome with a longer name is refused with an error naming the limit, a longer keyword is not learned'),
    'max_broadcast_size': ConfigKey('max_broadcast_size', '262144', 'integer', ('limit: the largest broadcast in bytes (all its frames) the broker relays (256 KiB); a larger frame disconnects its publisher, a larger broadcast of smaller frames is dropped, counted '
 '(ZMQBroker.relay.stats) and logged')),
    'max_queued_broadcasts': ConfigKey('max_queued_broadcasts', '256', 'integer', ("limit: broadcasts the XPUB queues toward one subscriber that is not reading (ZMQ's SNDHWM); past it broadcasts to that subscriber are dropped (so it holds at most max_queued_broadcasts x "
 'max_broadcast_size bytes, 64 MiB by default, shared with other slow subscribers)')),
    'max_subscriptions': ConfigKey('max_subscriptions', '5000', 'integer', ('limit: subscriptions (a topic for one subscriber connection) the broker applies for all subscribers; one past it is not applied, counted and logged; a subscriber holding more refused ones than the '
 'limit, or holding refused ones when there is room again, is disconnected (a SUB then subscribes anew); a subscription longer than a service frame can be (4 x max_name_length + 2 bytes) disconnects '
 'its subscriber')),
    'http': ConfigKey('http', '', 'host_port', 'broker: [HOST:]PORT of its HTTP monitor, /healthz, /status and /metrics (Prometheus), loopback unless a host is given; needs prometheus_client, the [metrics] extra (empty: off)'),
    'curve_secret_key': ConfigKey('curve_secret_key', '', 'path', "broker: its CURVE secret key file (NAME.key_secret, from cauldron-keygen); when set, the broker's ROUTER, XSUB and XPUB accept only CURVE peers whose key is authorized (empty: no CURVE)"),
    'curve_authorized': ConfigKey('curve_authorized', '', 'path', 'broker: a folder of the public key files (NAME.key) of the peers allowed to connect, read again when it changes; * accepts any key (encrypted, not authenticated)'),
    'curve_dispatchers': ConfigKey('curve_dispatchers', '', 'path', ('broker, with CURVE: a policy file naming, per key name (a file stem in curve_authorized), the services whose dispatchers it may register (names or globs), read again when it changes; keys not '
 'named are clients only, and broadcasts for a service from a key not allowed to serve it are not relayed (empty: any authorized key may register a free name)')),
    'curve_key': ConfigKey('curve_key', '', 'path', 'clients and dispatchers: their own CURVE secret key file (NAME.key_secret); empty with curve_server_key set: a new key pair each time (accepted only with curve_authorized = *)'),
    'curve_server_key': ConfigKey('curve_server_key', '', 'path', "clients and dispatchers: the broker's public key file (NAME.key); when set, every socket to the broker uses CURVE (empty: no CURVE)"),
}

#: Default value of every configuration key, as written in an INI file.
CONFIG_DEFAULTS = {name: key.default for name, key in CONFIG_KEYS.items()}


class MessageKind(msgspec.Struct, frozen=True, gc=False):
    """One kind of message: its direction, command and field rules.

    ``command`` is None when any command is accepted. ``service``, ``dispatcher`` and
    ``keyword`` are "required", "blank" or "optional".
    """

    name: str
    summary: str
    direction: Direction
    command: str | None
    service: str
    dispatcher: str
    keyword: str
    payload: str
    payload_text: str | None = None
    replies: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


#: Every message kind, by name.
MESSAGE_KINDS = {
    'inquiry': MessageKind(
        name='inquiry',
        summary="Anyone asks whether a broker is alive (ZMQBroker.check() sends command 'check').",
        direction=Direction.UBQ,
        command=None,
        service='optional',
        dispatcher='optional',
        keyword='optional',
        payload='blank',
        payload_text=None,
        replies=('inquiry_reply', ),
        errors=(),
    ),
    'inquiry_reply': MessageKind(
        name='inquiry_reply',
        summary='The broker answers an inquiry, echoing command and identifier.',
        direction=Direction.UBP,
        command=None,
        service='optional',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text='broker_alive',
        replies=(),
        errors=(),
    ),
    'welcome': MessageKind(
        name='welcome',
        summary='A dispatcher registers its (service, dispatcher name) at its socket.',
        direction=Direction.DBQ,
        command='welcome',
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='blank',
        payload_text=None,
        replies=('confirmed', ),
        errors=('dispatcher_broker_error', ),
    ),
    'confirmed': MessageKind(
        name='confirmed',
        summary='The broker confirms a welcome.',
        direction=Direction.DBP,
        command='welcome',
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='text',
        payload_text='confirmed',
        replies=(),
        errors=(),
    ),
    'ready': MessageKind(
        name='ready',
        summary='A registered dispatcher is ready for work; no reply. Heartbeats start after it.',
        direction=Direction.DBQ,
        command='ready',
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='blank',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'heartbeat': MessageKind(
        name='heartbeat',
        summary='The broker asks a ready dispatcher idle for T to show it is alive.',
        direction=Direction.DBP,
        command='heartbeat',
        service='required',
        dispatcher='required',
        keyword='blank',
        payload='text',
        payload_text='heartbeat_beat',
        replies=('heartbeat_answer', ),
        errors=(),
    ),
    'heartbeat_answer': MessageKind(
        name='heartbeat_answer',
        summary='A dispatcher answers a heartbeat with the same identifier; no reply.',
        direction=Direction.DBQ,
        command='heartbeat',
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='time',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'dispatcher_broker_error': MessageKind(
        name='dispatcher_broker_error',
        summary="The broker's error reply to a dispatcher (unknown command, not registered); a DBE sent to the broker is discarded.",
        direction=Direction.DBE,
        command=None,
        service='optional',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text='unknown_command',
        replies=(),
        errors=(),
    ),
    'lookup': MessageKind(
        name='lookup',
        summary='A client asks for the address to connect its SUB socket to (the existing client sends the payload `subscribe`; any payload is answered).',
        direction=Direction.CBQ,
        command='lookup',
        service='optional',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=('lookup_reply', ),
        errors=('client_broker_error', ),
    ),
    'lookup_reply': MessageKind(
        name='lookup_reply',
        summary="The broker's subscribe address in its connect form.",
        direction=Direction.CBP,
        command='lookup',
        service='optional',
        dispatcher='optional',
        keyword='optional',
        payload='address',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'locate': MessageKind(
        name='locate',
        summary='A client asks whether a service has at least one dispatcher.',
        direction=Direction.CBQ,
        command='locate',
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='blank',
        payload_text=None,
        replies=('locate_reply', ),
        errors=('client_broker_error', ),
    ),
    'locate_reply': MessageKind(
        name='locate_reply',
        summary='yes if the service has a dispatcher, else no.',
        direction=Direction.CBP,
        command='locate',
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='yesno',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'client_broker_error': MessageKind(
        name='client_broker_error',
        summary="The broker's error reply to a client command it does not know.",
        direction=Direction.CBE,
        command=None,
        service='optional',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text='unknown_command',
        replies=(),
        errors=(),
    ),
    'client_dispatcher_query': MessageKind(
        name='client_dispatcher_query',
        summary="A client's request to one dispatcher, routed by dispatcher name, or with a blank dispatcher by the keyword's learned owner. The keyword commands below are its usual commands.",
        direction=Direction.CDQ,
        command=None,
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=('client_dispatcher_reply', ),
        errors=('client_dispatcher_error', ),
    ),
    'client_dispatcher_reply': MessageKind(
        name='client_dispatcher_reply',
        summary="A dispatcher's answer, relayed to the client unchanged but for the prefix; the dispatcher frame names the answering dispatcher.",
        direction=Direction.CDP,
        command=None,
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'client_dispatcher_error': MessageKind(
        name='client_dispatcher_error',
        summary="An error answer to a client's request, from the dispatcher or from the broker.",
        direction=Direction.CDE,
        command=None,
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'client_service_query': MessageKind(
        name='client_service_query',
        summary="A client's question to every dispatcher of a service (fan-out).",
        direction=Direction.CSQ,
        command=None,
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=('client_service_reply', ),
        errors=('client_service_error', ),
    ),
    'client_service_reply': MessageKind(
        name='client_service_reply',
        summary="The merged fan-out answer: one usable answer gives that payload with the dispatcher frame naming its dispatcher; several are joined with ':'; none gives the fail sentinel.",
        direction=Direction.CSP,
        command=None,
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='fail_or_text',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'client_service_error': MessageKind(
        name='client_service_error',
        summary="The broker's error answer to a fan-out (no dispatcher for the service).",
        direction=Direction.CSE,
        command=None,
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text='no_dispatchers_for_service',
        replies=(),
        errors=(),
    ),
    'service_dispatcher_query': MessageKind(
        name='service_dispatcher_query',
        summary="The broker's copy of a fan-out to one dispatcher, with the client's prefix.",
        direction=Direction.SDQ,
        command=None,
        service='required',
        dispatcher='optional',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=('service_dispatcher_reply', ),
        errors=('service_dispatcher_error', ),
    ),
    'service_dispatcher_reply': MessageKind(
        name='service_dispatcher_reply',
        summary="One dispatcher's answer to a fan-out copy.",
        direction=Direction.SDP,
        command=None,
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'service_dispatcher_error': MessageKind(
        name='service_dispatcher_error',
        summary="One dispatcher's error answer to a fan-out copy (counts as no usable answer).",
        direction=Direction.SDE,
        command=None,
        service='required',
        dispatcher='required',
        keyword='optional',
        payload='text',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'broadcast': MessageKind(
        name='broadcast',
        summary="A dispatcher publishes a keyword's new value on its PUB socket, with no prefix. Subscribers use the service name as topic prefix and drop services that only start with theirs.",
        direction=Direction.CDB,
        command='broadcast',
        service='required',
        dispatcher='required',
        keyword='required',
        payload='value',
        payload_text=None,
        replies=(),
        errors=(),
    ),
    'status': MessageKind(
        name='status',
        summary=('An operator asks the broker what it serves and has done (cauldron-status); a service names the one service to show, blank all. A broker without status (the existing Cauldron broker) answers '
 'client_broker_error.'),
        direction=Direction.CBQ,
        command='status',
        service='optional',
        dispatcher='blank',
        keyword='blank',
        payload='blank',
        payload_text=None,
        replies=('status_reply', ),
        errors=('client_broker_error', ),
    ),
    'status_reply': MessageKind(
        name='status_reply',
        summary="The broker's status as one JSON object (payload type status).",
        direction=Direction.CBP,
        command='status',
        service='optional',
        dispatcher='blank',
        keyword='blank',
        payload='status',
        payload_text=None,
        replies=(),
        errors=(),
    ),
}


#: The message kind of a (direction, command), for kinds with a command.
KIND_BY_ROUTE = {
    (Direction.DBQ, 'welcome'): MESSAGE_KINDS['welcome'],
    (Direction.DBP, 'welcome'): MESSAGE_KINDS['confirmed'],
    (Direction.DBQ, 'ready'): MESSAGE_KINDS['ready'],
    (Direction.DBP, 'heartbeat'): MESSAGE_KINDS['heartbeat'],
    (Direction.DBQ, 'heartbeat'): MESSAGE_KINDS['heartbeat_answer'],
    (Direction.CBQ, 'lookup'): MESSAGE_KINDS['lookup'],
    (Direction.CBP, 'lookup'): MESSAGE_KINDS['lookup_reply'],
    (Direction.CBQ, 'locate'): MESSAGE_KINDS['locate'],
    (Direction.CBP, 'locate'): MESSAGE_KINDS['locate_reply'],
    (Direction.CDB, 'broadcast'): MESSAGE_KINDS['broadcast'],
    (Direction.CBQ, 'status'): MESSAGE_KINDS['status'],
    (Direction.CBP, 'status'): MESSAGE_KINDS['status_reply'],
}

#: The message kind of a direction, for kinds that take any command.
KIND_BY_DIRECTION = {
    Direction.UBQ: MESSAGE_KINDS['inquiry'],
    Direction.UBP: MESSAGE_KINDS['inquiry_reply'],
    Direction.DBE: MESSAGE_KINDS['dispatcher_broker_error'],
    Direction.CBE: MESSAGE_KINDS['client_broker_error'],
    Direction.CDQ: MESSAGE_KINDS['client_dispatcher_query'],
    Direction.CDP: MESSAGE_KINDS['client_dispatcher_reply'],
    Direction.CDE: MESSAGE_KINDS['client_dispatcher_error'],
    Direction.CSQ: MESSAGE_KINDS['client_service_query'],
    Direction.CSP: MESSAGE_KINDS['client_service_reply'],
    Direction.CSE: MESSAGE_KINDS['client_service_error'],
    Direction.SDQ: MESSAGE_KINDS['service_dispatcher_query'],
    Direction.SDP: MESSAGE_KINDS['service_dispatcher_reply'],
    Direction.SDE: MESSAGE_KINDS['service_dispatcher_error'],
}


class KeywordCommand(msgspec.Struct, frozen=True, gc=False):
    """A command a dispatcher answers about its keywords."""

    name: str
    summary: str
    keyword: str
    payload: str
    reply_payload: str


#: The keyword commands, by name.
KEYWORD_COMMANDS = {
    'update': KeywordCommand('update', 'Read a keyword (the existing client sends an empty payload).', 'required', 'empty', 'value'),
    'modify': KeywordCommand('modify', 'Write a keyword; the reply is the resulting value.', 'required', 'value', 'value'),
    'identify': KeywordCommand('identify', 'Which dispatcher has this keyword, and what KTL type is it. The broker caches answers to the fan-out form.', 'required', 'text', 'ktl_type'),
    'enumerate': KeywordCommand('enumerate', "The dispatcher's keyword names, sorted.", 'optional', 'blank', 'list'),
    'units': KeywordCommand('units', "A keyword's units, as JSON (the existing client sends an empty payload).", 'required', 'empty', 'units'),
    'heartbeat': KeywordCommand('heartbeat', "The broker's heartbeat (DBP heartbeat, payload beat), answered with the time (DBQ heartbeat, same identifier).", 'optional', 'text', 'time'),
}
