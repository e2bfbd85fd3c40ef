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
    """lamp's `--init he` (conv-ae's default): kaiming_normal_ for leaky ReLU 0.2 on every weight
    (fan_in as PyTorch counts it), zero biases. PyTorch's own default is lamp's `--init pytorch`."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu", mode="fan_in")
            nn.init.zeros_(m.bias)
    return model
