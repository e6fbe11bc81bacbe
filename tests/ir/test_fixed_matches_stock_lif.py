"""Our fixed-point neuron is Loihi's arithmetic: it equals Lava's own bit-accurate LIF.

Runs Lava's stock Dense -> LIF (PyLifModelBitAcc) in a subprocess, with
scalar parameters the stock process can hold, and compares its spikes with
spikedeploy's integer reference on the same integers.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from spikedeploy.ir.fixed_point import dense_fixed, neuron_step_fixed
from spikedeploy.ir.semantics import NeuronParams

pytestmark = pytest.mark.lava

STOCK_SCRIPT = r"""
import json, sys, numpy as np
import spikedeploy.compat.lava_py311
from lava.proc.lif.process import LIF
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer as Src
from lava.proc.io.sink import RingBuffer as Snk
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.run_conditions import RunSteps
job = json.loads(sys.stdin.read())
x = np.array(job["x"]); w = np.array(job["w"])
steps = x.shape[1]
src = Src(data=x); d = Dense(weights=w, num_message_bits=0)
lif = LIF(shape=(w.shape[0],), du=job["du"], dv=job["dv"], vth=job["vth"],
          bias_mant=np.array(job["bias_mant"]), bias_exp=job["bias_exp"])
snk = Snk(shape=(w.shape[0],), buffer=steps)
src.s_out.connect(d.s_in); d.a_out.connect(lif.a_in); lif.s_out.connect(snk.a_in)
try:
    lif.run(condition=RunSteps(steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    print(json.dumps(snk.data.get().astype(int).tolist()))
finally:
    lif.stop()
"""


@pytest.mark.parametrize("du,dv", [(4095, 410), (1000, 100), (0, 0)])
def test_integer_neuron_equals_lava_pylifmodelbitacc(du, dv):
    rng = np.random.default_rng(du + dv)
    n_in, n_out, steps = 16, 12, 60
    x = (rng.random((n_in, steps)) < 0.4).astype(int)
    w = 2 * rng.integers(-128, 128, (n_out, n_in))           # even 8-bit mantissas
    bias_mant = rng.integers(-300, 300, n_out)
    job = dict(x=x.tolist(), w=w.tolist(), du=du, dv=dv, vth=300, bias_mant=bias_mant.tolist(),
               bias_exp=2)
    out = subprocess.run([sys.executable, "-c", STOCK_SCRIPT], input=json.dumps(job),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lava_spikes = np.array(json.loads(out.stdout.strip().splitlines()[-1]))

    # integer parameters: the bias is bias_mant << bias_exp, as Loihi applies it
    p = NeuronParams(du=np.full(n_out, du), dv=np.full(n_out, dv), gain=np.ones(n_out, np.int64),
                     bias=bias_mant << 2, v_th=np.full(n_out, 300),
                     v_reset=np.zeros(n_out, np.int64), v_init=np.zeros(n_out, np.int64),
                     input_bias=np.zeros(n_out, np.int64), reset_mode="zero")
    u = v = np.zeros((1, n_out), np.int64)
    a = np.zeros((1, n_out), np.int64)
    ours = []
    for t in range(steps):   # Dense delivers step t-1's accumulation at step t
        u, v, z = neuron_step_fixed(u, v, a, p)
        ours.append(z[0])
        a = dense_fixed(w, 0, x[:, t][None, :])
    ours = np.array(ours).T
    assert lava_spikes.sum() > 0
    np.testing.assert_array_equal(ours, lava_spikes)
