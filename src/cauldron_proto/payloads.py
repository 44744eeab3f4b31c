"""Typed payloads: a decoder and an encoder per payload type of the spec (generated).

``decode_units('{"0": "Off", "1": "On"}')`` gives ``{"0": "Off", "1": "On"}``;
``decode_ktl_type(None)`` gives None (the keyword is not there); ``encode_time(t)`` the
time with one decimal, as the existing dispatcher answers a heartbeat. A payload that is not
of its type raises :class:`PayloadError` (a ``ValueError``) naming the type and the reason.
"""

from ._generated.payloads import *  # noqa: F401,F403
from ._generated.payloads import __all__  # noqa: F401
