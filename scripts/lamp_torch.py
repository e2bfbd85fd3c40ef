"""The fmnist-ae of docs/design.md (Architectures) in PyTorch, shared by the comparison scripts
(torch_check.py, torch_experiment.py, benches/pytorch_reference.py)."""
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
