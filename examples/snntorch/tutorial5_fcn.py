"""snnTorch tutorial 5's network, as the tutorial writes it: a fully connected
784-1000-10 network whose forward loops over 25 time steps itself, with
snnTorch's default neurons (subtractive reset, reset_delay=True).

    spikedeploy export --model examples/snntorch/tutorial5_fcn.py:Net \
        --weights model.pt --input-shape 784 -o tutorial5.nir
"""
import torch
import torch.nn as nn
import snntorch as snn

num_inputs = 28 * 28
num_hidden = 1000
num_outputs = 10
num_steps = 25
beta = 0.95


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        mem2_rec = []
        for step in range(num_steps):
            cur1 = self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)
