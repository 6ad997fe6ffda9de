"""Who owns a run: a ``kill -9``ed orchestrator is a zombie until PID 1 reaps it (in a container, maybe never);
it has ended all the same, so its run shows as interrupted and can be resumed at once."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil

from orchestrator import Owner
from orchestrator._owner import same_process
from tests.helpers import wait_for


def test_a_zombie_owner_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = psutil.Process(child.pid).create_time()
        owner = Owner(Owner.current().host, child.pid, start)
        assert owner.alive() and same_process(child.pid, start)
        child.send_signal(signal.SIGKILL)
        wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10)  # not reaped yet
        assert not owner.alive() and not same_process(child.pid, start)
    finally:
        child.kill()
        child.wait()
