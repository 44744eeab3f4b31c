"""The broker's I/O-free routing core: ``BrokerCore`` takes frames and a time, gives frames.

See :mod:`cauldron_proto.broker.core.core` for the theory of operation; the owners of its
state are :mod:`.registry` (dispatchers, registration, liveness; :mod:`.keys` under CURVE),
:mod:`.requests` (in flight), :mod:`.owners` (learned keyword owners) and :mod:`.fanouts`.
"""

from .core import BrokerCore
from .stats import Stats
from .views import DispatcherView, ServicesView, ServiceView

__all__ = ["BrokerCore", "DispatcherView", "ServiceView", "ServicesView", "Stats"]
