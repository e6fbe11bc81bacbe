"""snnTorch tutorial 6's convolutional network, as the tutorial writes it
(`tutorial_net`) and in the form Loihi can run (`CSNN`).

The tutorial max-pools the convolution's currents before the neurons: a max
of real values has no synapse-and-neuron form on Loihi, so spikedeploy
refuses it. Pooling the neurons' spikes instead is exact on Loihi (the max
of 0/1 spikes is an OR: a sum-pool feeding a threshold at 0.5):

    spikedeploy export --model examples/snntorch/tutorial6_csnn.py:CSNN \
        --weights model.pt --input-shape 1,28,28 --steps 25 -o csnn.nir
"""
import torch.nn as nn
import snntorch as snn
from snntorch import surrogate

beta = 0.5
spike_grad = surrogate.fast_sigmoid(slope=25)


def tutorial_net():
    """Tutorial 6 verbatim (init_hidden: one call is one time step): refused."""
    return nn.Sequential(nn.Conv2d(1, 12, 5),
                         nn.MaxPool2d(2),
                         snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                         nn.Conv2d(12, 64, 5),
                         nn.MaxPool2d(2),
                         snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                         nn.Flatten(),
                         nn.Linear(64 * 4 * 4, 10),
                         snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True,
                                   output=True))


class CSNN(nn.Module):
    """The same network pooling spikes: max-pool after the first neurons, an average
    pool after the second, learnable betas."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 12, 5)
        self.lif1 = snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True,
                              learn_beta=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(12, 64, 5)
        self.lif2 = snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True,
                              learn_beta=True)
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(64 * 4 * 4, 10)
        self.lif3 = snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True)

    def forward(self, x):
        spk1 = self.pool1(self.lif1(self.conv1(x)))
        spk2 = self.pool2(self.lif2(self.conv2(spk1)))
        spk3, mem3 = self.lif3(self.fc(spk2.flatten(1)))
        return spk3, mem3
