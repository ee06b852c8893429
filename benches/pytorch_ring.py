#!/usr/bin/env python3
"""PyTorch reference benchmark for the Lorenz-96 ring network of `sda train`.

The same function as `sda bench --network ring`, written the way a PyTorch user would: the
window's 2k + 1 = 5 states are the channels of a 1-D signal over the 40 positions of the ring;
a circular Conv1d of kernel 9 maps them (with the time embedding as 32 more constant channels)
to the hidden width, then residual blocks of 1x1 convolutions (LayerNorm over channels without
affine, SiLU), a 1x1 projection back to 5 channels and one width-5 block. That is exactly the
residual MLP that `sda` runs on every position's 9 x 5 patch, with one weight set along the
ring. Only timings are reported; data are random.

What is measured: AdamW(lr=1e-3, wd=1e-3) steps on batches of --batch windows (40 positions
each), x ~ N(0, 1), t ~ U(0, 1), loss = mean((eps(mu x + sigma eps, t) - eps)^2); --warmup
untimed steps, then --steps timed ones. Run it beside `sda bench --network ring` on an
otherwise idle machine with the same thread count.

Usage: python3 benches/pytorch_ring.py [--threads 2] [--steps 50] [--batch 64] [--json]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ETA = 1e-3
K, POS, KERNEL, WIDTH, DEPTH, EMB = 2, 40, 9, 128, 5, 32
W = 2 * K + 1


def mu_sigma(t):
    mu = torch.cos(math.acos(math.sqrt(ETA)) * t) ** 2
    return mu, torch.sqrt(1 - mu**2 + ETA**2)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of [N, C, P], without affine."""

    def forward(self, h):
        return F.layer_norm(h.transpose(1, 2), h.shape[1:2]).transpose(1, 2)


class Block(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.norm = ChannelNorm()
        self.l1, self.l2 = nn.Conv1d(n, n, 1), nn.Conv1d(n, n, 1)

    def forward(self, h):
        return h + self.l2(F.silu(self.l1(self.norm(h))))


class RingScoreNet(nn.Module):
    def __init__(self, freqs=16):
        super().__init__()
        self.register_buffer("freqs", math.pi * torch.arange(1, freqs + 1, dtype=torch.float32))
        self.embed = nn.Sequential(nn.Linear(2 * freqs, 256), nn.SiLU(), nn.Linear(256, EMB))
        self.head = nn.Conv1d(W, WIDTH, KERNEL, padding=KERNEL // 2, padding_mode="circular",
                              bias=True)
        self.head_emb = nn.Linear(EMB, WIDTH, bias=False)  # the embedding's part of the head
        self.blocks = nn.Sequential(*[Block(WIDTH) for _ in range(DEPTH)])
        self.out = nn.Conv1d(WIDTH, W, 1)
        self.tail = Block(W)

    def forward(self, x, t):  # x: [N, 5, 40], t: [N] -> [N, 5, 40]
        ft = t[:, None] * self.freqs
        e = self.embed(torch.cat([ft.cos(), ft.sin()], dim=-1))
        h = self.head(x) + self.head_emb(e)[:, :, None]
        return self.tail(self.out(self.blocks(h)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = RingScoreNet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-3)

    def step():
        x = torch.randn(a.batch, W, POS)
        t = torch.rand(a.batch)
        mu, sigma = mu_sigma(t[:, None, None])
        eps = torch.randn_like(x)
        loss = (net(mu * x + sigma * eps, t) - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    rate = a.steps / (time.perf_counter() - t0)
    res = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "network": "ring", "batch": a.batch, "train_steps_per_s": round(rate, 2),
           "parameters": sum(p.numel() for p in net.parameters())}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {res['torch']} ({res['threads']} threads): ring network, "
              f"{res['parameters']} parameters, {rate:.2f} training steps/s (batch {a.batch})")


if __name__ == "__main__":
    main()
