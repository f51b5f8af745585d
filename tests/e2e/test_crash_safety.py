"""kill -9 of the server at random moments while instances launch, stop and terminate (see
chaos.py): nothing acknowledged is lost, states match the host, nothing leaks, metering agrees.
`scripts/bench-crash` runs the same with fifty kills. Needs root, runc and network
namespaces; skipped (and reported) otherwise."""

import os
import shutil
import tempfile

import pytest

import chaos
from conftest import Server, host_can_run_instances, shut_down, with_default_image

why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")

KILLS = int(os.environ.get("GUREUM_CRASH_KILLS", "8"))


def test_random_kills_lose_and_leak_nothing():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-crash-")
    s = with_default_image(Server(os.path.join(tmp, "data"), env={"GUREUM_WARM_POOL": "2"}).start())
    try:
        summary = chaos.run(s, s.image["ImageId"], kills=KILLS, check_every=4, seed=15)
        print(summary)
        assert summary["kills"] == KILLS and summary["checks"] >= 2
        assert summary["instances"] >= 3, "the client made too few instances to mean anything"
    finally:
        try:
            shut_down(s, artifact="test_crash_safety")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
