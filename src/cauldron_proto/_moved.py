"""Modules that moved in the layout of 0.1 keep working from their old paths.

``import cauldron_proto.routing`` gives the module ``cauldron_proto.broker.core`` itself (the
same object, so ``cauldron_proto.routing.BrokerCore is cauldron_proto.broker.core.BrokerCore``),
and so on for each entry of :data:`MOVED`. A finder on ``sys.meta_path`` answers only these
names; it imports the new module on first use, so an old path loads no more than the new one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

#: old module path -> where it is now
MOVED = {
    "cauldron_proto.routing": "cauldron_proto.broker.core",
    "cauldron_proto.broker_sockets": "cauldron_proto.broker.sockets",
    "cauldron_proto.broker_relay": "cauldron_proto.broker.relay",
    "cauldron_proto.broker_launch": "cauldron_proto.broker.launch",
    "cauldron_proto.broker_process": "cauldron_proto.broker.process",
    "cauldron_proto.zap": "cauldron_proto.security.zap",
    "cauldron_proto.policy": "cauldron_proto.security.policy",
    "cauldron_proto.dispatcher.registration": "cauldron_proto.dispatcher.core.registration",
    "cauldron_proto.dispatcher.handlers": "cauldron_proto.dispatcher.core.handlers",
    "cauldron_proto.dispatcher.steps": "cauldron_proto.dispatcher.core.steps",
    "cauldron_proto.kinds": "cauldron_proto.protocol.kinds",
    "cauldron_proto.payloads": "cauldron_proto.protocol.payloads",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` and loads each as the module it moved to."""

    def __init__(self) -> None:
        self._specs: dict = {}  # a moved module's name -> its own spec

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the module was imported under its new path), but the import system
        set ``__spec__`` to the old path's: the module keeps its own (its relative imports
        resolve against it)."""
        module.__spec__ = self._specs[module.__name__]


def install() -> None:
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
