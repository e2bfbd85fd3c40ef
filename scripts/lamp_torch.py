"""The models of docs/design.md (Architectures) in PyTorch, shared by the comparison scripts
(torch_check.py, torch_experiment.py, torch_gpu.py, benches/pytorch_reference.py): fmnist-ae with
PyTorch's names (checkpoints load into it), and the conv-ae family."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class FmnistAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 32, 3, 2, 1)
        self.enc2 = nn.Conv2d(32, 64, 3, 2, 1)
        self.enc3 = nn.Linear(3136, 32)
        self.dec1 = nn.Linear(32, 3136)
        self.dec2 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.dec3 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, x):
        h = F.leaky_relu(self.enc1(x), 0.2)
        h = F.leaky_relu(self.enc2(h), 0.2)
        h = F.leaky_relu(self.dec1(self.enc3(h.flatten(1))), 0.2).view(-1, 64, 7, 7)
        return torch.sigmoid(self.dec3(F.leaky_relu(self.dec2(h), 0.2)))


class ConvAE(nn.Module):
    def __init__(self, channels, size, stages, latent):
        super().__init__()
        self.enc = nn.ModuleList()
        c = channels
        for s in stages:
            self.enc.append(nn.Conv2d(c, s, 3, 2, 1))
            c = s
        self.side = size >> len(stages)
        self.top = stages[-1]
        flat = self.top * self.side * self.side
        self.to_latent = nn.Linear(flat, latent)
        self.from_latent = nn.Linear(latent, flat)
        self.dec = nn.ModuleList()
        for s in list(reversed(stages[:-1])) + [channels]:
            self.dec.append(nn.ConvTranspose2d(c, s, 4, 2, 1))
            c = s

    def forward(self, x):
        for conv in self.enc:
            x = F.leaky_relu(conv(x), 0.2)
        x = F.leaky_relu(self.from_latent(self.to_latent(x.flatten(1))), 0.2)
        x = x.view(-1, self.top, self.side, self.side)
        for i, deconv in enumerate(self.dec):
            x = deconv(x)
            x = torch.sigmoid(x) if i == len(self.dec) - 1 else F.leaky_relu(x, 0.2)
        return x


def init_he(model):
    """lamp's `--init he` (the default for a conv-ae of 4 stages or more; src/model/init.rs): every weight normal with
    variance gain^2 / n, n the inputs each output sums (in x k^2 for a convolution, in x (k/s)^2
    for a transposed one, in for a linear layer), gain sqrt(2/1.04) before a leaky ReLU of slope
    0.2 and 1 before the latent code or the sigmoid; zero biases. PyTorch's own default is lamp's
    `--init pytorch`."""
    if isinstance(model, FmnistAE):
        layers = [model.enc1, model.enc2, model.enc3, model.dec1, model.dec2, model.dec3]
        plain = {model.enc3, model.dec3}
    else:
        layers = list(model.enc) + [model.to_latent, model.from_latent] + list(model.dec)
        plain = {model.to_latent, model.dec[-1]}
    for m in layers:
        w = m.weight
        if isinstance(m, nn.Linear):
            n = w.shape[1]
        elif isinstance(m, nn.ConvTranspose2d):
            n = w.shape[0] * (m.kernel_size[0] // m.stride[0]) * (m.kernel_size[1] // m.stride[1])
        else:
            n = w.shape[1] * m.kernel_size[0] * m.kernel_size[1]
        gain = 1.0 if m in plain else (2.0 / (1 + 0.2 ** 2)) ** 0.5
        with torch.no_grad():
            w.normal_(0.0, gain / n ** 0.5)
            m.bias.zero_()
    return model
