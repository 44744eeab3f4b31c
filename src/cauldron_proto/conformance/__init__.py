"""The conformance suite: cases as recorded frame traces, a runner and a recorder.

- :func:`run_suite` replays the cases against a broker at given addresses (real sockets);
- :func:`run_suite_on_core` replays them against the I/O-free routing core (fake clock);
- :func:`run_dispatcher_suite` plays the broker for a dispatcher and replays the dispatcher cases;
- :func:`run_client_suite` plays broker and dispatcher for a client driven through commands;
- :func:`load_cases` reads the cases (the packaged suite by default);
- :mod:`.recorder` is the recording proxy, :mod:`.to_case` turns a recording into a case.

See ``conformance/README.md`` for the case format.
"""

from .client_link import ClientLink, ClientStandIn, run_client_suite
from .core_link import CoreLink, run_suite_on_core
from .dispatcher_link import BrokerStandIn, DispatcherLink, run_dispatcher_suite
from .engine import Result, Settings, WireEvent, run_case
from .frames import CaseError
from .report import failed
from .runner import ZmqLink, run_cases, run_suite, select_cases
from .case_format import Case
from .loading import default_cases_dir, load_case, load_cases

__all__ = [
    "BrokerStandIn", "ClientLink", "ClientStandIn", "DispatcherLink", "run_client_suite",
    "run_dispatcher_suite", "Case", "CaseError", "CoreLink", "Result", "Settings", "WireEvent", "ZmqLink",
    "default_cases_dir", "failed", "load_case", "load_cases", "run_case", "run_cases",
    "run_suite", "run_suite_on_core", "select_cases",
]
