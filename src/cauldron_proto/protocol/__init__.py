# GENERATED FILE: do not edit by hand.
# Generated from spec/protocol.yaml by `python -m codegen`; change the spec and regenerate.
# `python -m codegen --check` fails when this file is stale.
"""The protocol: the generated constants and tables, and the hand-written envelope codec
(:mod:`.codec`, which takes every frame position from the tables)."""

from .codec import *  # noqa: F401,F403
from .codec import __all__ as _codec_all
from .tables import (  # noqa: F401
    BLANK,
    BLANK_FRAMES,
    CONFIG_DEFAULTS,
    CONFIG_KEYS,
    CONFIG_SECTION,
    DISPATCHER_LIVENESS,
    ENVELOPE_SIZE,
    ERROR_DIRECTION,
    EXPIRY_MULTIPLE,
    FAIL_FRAME,
    FAIL_FRAMES,
    FRAME_NAMES,
    KEYWORD_COMMANDS,
    KTL_TYPES,
    MESSAGE_KINDS,
    PAYLOAD_TYPES,
    PROTOCOL,
    REPLY_DIRECTION,
    RULES,
    SPEC_VERSION,
    TEXT_FRAMES,
    TEXTS,
    Command,
    ConfigKey,
    Direction,
    Endpoint,
    Kind,
    KeywordCommand,
    MessageKind,
    Text,
)

__all__ = [
    *_codec_all,
    "BLANK", "BLANK_FRAMES", "CONFIG_DEFAULTS", "CONFIG_KEYS", "CONFIG_SECTION", "DISPATCHER_LIVENESS",
    "ENVELOPE_SIZE", "ERROR_DIRECTION", "EXPIRY_MULTIPLE", "FAIL_FRAME", "FAIL_FRAMES", "FRAME_NAMES",
    "KEYWORD_COMMANDS", "KTL_TYPES", "MESSAGE_KINDS", "PAYLOAD_TYPES", "PROTOCOL", "REPLY_DIRECTION", "RULES",
    "SPEC_VERSION", "TEXT_FRAMES", "TEXTS", "Command", "ConfigKey", "Direction", "Endpoint", "Kind",
    "KeywordCommand", "MessageKind", "Text",
]
