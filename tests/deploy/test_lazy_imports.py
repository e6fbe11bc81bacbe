"""Commands that need neither torch nor Lava do not load them (about 0.7 s of torch alone):
each runs in a fresh interpreter and reports which heavy modules it imported."""
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "snntorch", "lava", "tonic", "ray", "matplotlib")
PROBE = """
import contextlib, io, json, sys
from spikedeploy.deploy.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps([code, [m for m in {heavy!r} if m in sys.modules]]))
"""


@pytest.mark.parametrize("argv", [
    ["check", "{nir}"],
    ["simulate", "{nir}", "--samples", "5"],
    ["verify", "{nir}", "--no-lava", "--samples", "5", "--precision", "fixed",
     "--max-disagreement", "1"],
    ["sweep", "{nir}", "--samples", "5", "--gammas", "1.0"],
    ["resources", "{nir}"],
    ["energy", "{nir}", "--samples", "5"],
], ids=lambda a: a[0])
def test_reference_commands_load_no_torch_and_no_lava(trained, argv):
    args = [a.format(nir=trained["nir"]) for a in argv] + ["-q"]
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                         capture_output=True, text=True, timeout=120)
    code, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 0, out.stderr
    assert loaded == [], loaded
