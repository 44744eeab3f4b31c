"""The broker's I/O-free routing core: ``BrokerCore`` takes frames and a time, gives frames.

See :mod:`cauldron_proto.broker.core.core` for the theory of operation.
"""

from .core import BrokerCore
from .stats import Stats
from .views import DispatcherView, ServicesView, ServiceView

__all__ = ["BrokerCore", "DispatcherView", "ServiceView", "ServicesView", "Stats"]
