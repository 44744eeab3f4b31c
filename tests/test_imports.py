"""The protocol and the routing core load no I/O library; the package's public names still work."""

from __future__ import annotations

import subprocess
import sys

import pytest

IO_MODULES = ("zmq", "zmq.auth", "asyncio", "multiprocessing", "jinja2")


@pytest.mark.parametrize("module", ["cauldron_proto", "cauldron_proto.protocol", "cauldron_proto.broker",
                                    "cauldron_proto.broker.core", "cauldron_proto.protocol.kinds",
                                    "cauldron_proto.protocol.payloads", "cauldron_proto.ktl", "cauldron_proto.config",
                                    "cauldron_proto.client.core", "cauldron_proto.dispatcher.core.handlers",
                                    "cauldron_proto.dispatcher.core.registration",
                                    "cauldron_proto.security.policy"])
def test_the_io_free_parts_import_no_io_library(module):
    code = (f"import sys, {module}; "
            f"print(' '.join(m for m in {IO_MODULES!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "", f"import {module} loaded {loaded.stdout.strip()}"


def test_public_names_load_on_first_use():
    import cauldron_proto

    from cauldron_proto import BindError, BrokerError, ZMQBroker, client, dispatcher, security

    assert ZMQBroker.__module__ == "cauldron_proto.broker.zmq_broker" and issubclass(BindError, BrokerError)
    assert client.Service and dispatcher.Service and security.BrokerCurve
    assert client.Service.__module__ == "cauldron_proto.client.service" and dispatcher.default_dispatcher_name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        client.nope  # noqa: B018
    assert {"ZMQBroker", "client", "dispatcher", "security", "kinds", "payloads"} <= set(dir(cauldron_proto))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cauldron_proto.nope  # noqa: B018
