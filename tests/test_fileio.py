"""Atomic writes: what a writer killed by SIGKILL leaves is removed by the next write."""
import signal
import subprocess
import sys

import numpy as np

from spikedeploy.fileio import write_atomically

KILLED_WRITER = """
import os, signal, sys
from spikedeploy.fileio import write_atomically
def write(tmp):
    tmp.write_bytes(b"x" * 1_000_000)         # half-written output...
    os.kill(os.getpid(), signal.SIGKILL)      # ...and no chance to clean up
write_atomically(sys.argv[1], write)
"""


def test_a_sigkilled_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "o.npz"
    run = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], timeout=60)
    assert run.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].name.startswith(".o.npz.") and not target.exists()
    write_atomically(target, lambda tmp: np.savez(open(tmp, "wb"), a=np.arange(3)))
    assert [p.name for p in tmp_path.iterdir()] == ["o.npz"]
    assert np.load(target)["a"].tolist() == [0, 1, 2]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    target = tmp_path / "o.txt"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from spikedeploy.fileio import _temporary_prefix
        busy = tmp_path / (_temporary_prefix(target, sleeper.pid) + "abcd.tmp")
        busy.write_text("being written")
        write_atomically(target, lambda tmp: tmp.write_text("done"))
        assert busy.exists() and target.read_text() == "done"
    finally:
        sleeper.kill()
        sleeper.wait()
