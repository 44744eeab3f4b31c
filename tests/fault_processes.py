"""Real processes for the fault tests: the command-line tools (and small Python scripts) as
:class:`cauldron_proto.testing.ChildProcess` children that a test can freeze (SIGSTOP),
thaw (SIGCONT) and kill (SIGKILL); each is stopped and reaped on the way out.

    with broker_process(timeout=0.2) as broker:             # cauldron_proto.testing: cauldron-broker
        config = config_for(broker)
        with dispatcher_process(config, "KTEST", "disp1", "VALUE=1") as disp:
            disp.freeze(); ...; disp.thaw()
"""

from __future__ import annotations

import sys
from pathlib import Path
from cauldron_proto.testing import ChildProcess

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed: pip install -e . declares it in pyproject.toml"
    return str(path)


def dispatcher_process(config: dict[str, str], service: str, name: str, *keywords: str,
                       extra: tuple[str, ...] = ()) -> ChildProcess:
    """``cauldron-dispatcher`` serving ``keywords`` (``KEYWORD[:TYPE]=VALUE``), once registered."""
    argv = [tool("cauldron-dispatcher"), "-s", service, "-n", name, "--router", config["broker"],
            "--publish", config["publish"], "--timeout", config["timeout"], *extra]
    for keyword in keywords:
        argv += ["-k", keyword]
    proc = ChildProcess(argv)
    try:
        line = proc.read_line()
        assert "serving" in line, line
    except BaseException:
        proc.stop()
        raise
    return proc


def python_process(script: str, *args: str) -> ChildProcess:
    """``python -c script args...`` (the test's own interpreter and installed package)."""
    return ChildProcess([sys.executable, "-c", script, *args])
