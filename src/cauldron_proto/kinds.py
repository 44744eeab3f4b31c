"""A builder and a predicate for every message kind of the spec (generated).

``kinds.welcome("ktest", "ktest1")`` is the DBQ welcome a dispatcher sends;
``kinds.heartbeat_answer(beat, time.time())`` its answer to the broker's heartbeat ``beat``
(same fields and identifier, the time with one decimal); ``kinds.is_heartbeat(message)``
says whether a message is the broker's heartbeat.
"""

from ._generated.kinds import *  # noqa: F401,F403
from ._generated.kinds import __all__  # noqa: F401
