#!/usr/bin/env python3
"""PyTorch reference benchmark for the Lorenz-63 local score network of SDA.

Reproduces, in plain eager PyTorch, the local score network used for Lorenz-63
in "Score-based Data Assimilation" (Rozet & Louppe, NeurIPS 2023), so that the
Rust crate (`sda bench`) can be timed side by side on the same machine with the
same thread count. Only timings are reported; data are random.

Network (eps_theta(x_window, t), window of 2k+1 = 5 states x 3 = 15 values):
  * time embedding: [cos(pi k t), sin(pi k t)], k = 1..16 -> Linear(32,256)
    -> SiLU -> Linear(256,32)
  * ResMLP: Linear(15+32, 256) -> 5 x [h + Lin(SiLU(Lin(LayerNorm(h))))]
    (LayerNorm without affine) -> Linear(256, 15) -> one width-15 block.
  * VP "cos" schedule: mu(t) = cos(acos(sqrt(eta)) t)^2,
    sigma(t) = sqrt(1 - mu^2 + eta^2), eta = 1e-3.

What is measured (each figure matches one line of `sda bench`):
  * train_steps_per_s: AdamW(lr=1e-3, wd=1e-3) steps on batches of 64 windows,
    x ~ N(0,1), t ~ U(0,1), loss = mean((eps_theta(mu x + sigma eps, t) - eps)^2);
    50 warm-up steps, then --steps timed steps.
  * guided_eval_ms: one guided (DPS-Gaussian) score evaluation for B = 64
    trajectories of L = 65 states, k = 2, at t = 0.5: unfold into 61 windows,
    one network call on [64*61, 15], compose per-state eps, likelihood
    log p(y | x_hat) with A(x) = x[:, ::8, :1], var = 0.05^2 + 0.03 (sigma/mu)^2,
    s = d log p / dx through the network, guided = eps - sigma s. Median of
    --evals runs after warm-up.
  * forward_ms: the same composed eps under torch.no_grad (no guidance).

Run it on an otherwise idle machine: with --threads equal to the core count,
OpenMP's spinning barriers make PyTorch many times slower when any other
process (e.g. a cargo build) competes for the cores; the table shows the
1-minute load average so that a contended run can be spotted
(OMP_WAIT_POLICY=PASSIVE softens this if the machine cannot be kept idle).

--autocast bf16 runs the network's layers under torch.autocast (bfloat16 matrix products,
float32 weights and optimiser), PyTorch's counterpart of `sda ... --precision bf16`.

Usage: python3 benches/pytorch_lorenz.py [--threads 2] [--steps 500] [--json]
       [--device cpu|cuda] [--evals 50] [--autocast none|bf16]
"""
import argparse
import json
import math
import statistics
import os
import time
import warnings

warnings.filterwarnings("ignore", message=".*Failed to initialize NumPy.*")
import torch  # noqa: E402
import torch.nn as nn

ETA = 1e-3
K, L, B, WIDTH, DEPTH, EMB = 2, 65, 64, 256, 5, 32
WIN = (2 * K + 1) * 3  # 15 values per window


def mu_sigma(t):
    mu = torch.cos(math.acos(math.sqrt(ETA)) * t) ** 2
    return mu, torch.sqrt(1 - mu**2 + ETA**2)


class Block(nn.Module):
    """h + Linear(SiLU(Linear(LayerNorm(h)))), LayerNorm without affine."""

    def __init__(self, n):
        super().__init__()
        self.norm = nn.LayerNorm(n, elementwise_affine=False)
        self.l1, self.l2 = nn.Linear(n, n), nn.Linear(n, n)

    def forward(self, h):
        return h + self.l2(torch.nn.functional.silu(self.l1(self.norm(h))))


class LocalScoreNet(nn.Module):
    def __init__(self, features=WIN, emb=EMB, width=WIDTH, depth=DEPTH, freqs=16):
        super().__init__()
        self.register_buffer("freqs", math.pi * torch.arange(1, freqs + 1, dtype=torch.float32))
        self.embed = nn.Sequential(nn.Linear(2 * freqs, 256), nn.SiLU(), nn.Linear(256, emb))
        self.inp = nn.Linear(features + emb, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.out = nn.Linear(width, features)
        self.tail = Block(features)

    def forward(self, x, t):  # x: [N, 15], t: [N] -> eps: [N, 15]
        ft = t[:, None] * self.freqs
        e = self.embed(torch.cat([ft.cos(), ft.sin()], dim=-1))
        h = self.blocks(self.inp(torch.cat([x, e], dim=-1)))
        return self.tail(self.out(h))


AUTOCAST = None  # set by --autocast: a dtype for torch.autocast, or None


def run_net(net, x, t):
    """net(x, t), under autocast when --autocast asks for it (output back to float32)."""
    if AUTOCAST is None:
        return net(x, t)
    with torch.autocast(device_type=x.device.type, dtype=AUTOCAST):
        return net(x, t).float()


def composed_eps(net, x, t):
    """x: [B, L, 3] -> eps: [B, L, 3] from the L-2k overlapping windows."""
    b, l, d = x.shape
    w = x.unfold(1, 2 * K + 1, 1).permute(0, 1, 3, 2)  # [B, L-2k, 5, 3]
    n = w.shape[1]
    e = run_net(net, w.reshape(b * n, -1), t.expand(b * n)).reshape(b, n, 2 * K + 1, d)
    return torch.cat([e[:, 0, :K], e[:, :, K], e[:, -1, K + 1:]], dim=1)


def guided_eps(net, x, t, y):
    mu, sigma = mu_sigma(t)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps = composed_eps(net, x, t)
        x_hat = (x - sigma * eps) / mu
        var = 0.05**2 + 0.03 * (sigma / mu) ** 2
        log_p = -0.5 * ((y - x_hat[:, ::8, :1]) ** 2 / var).sum()
        (s,) = torch.autograd.grad(log_p, x)
    return eps.detach() - sigma * s


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--evals", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--autocast", choices=["none", "bf16"], default="none")
    a = p.parse_args()
    global AUTOCAST
    AUTOCAST = torch.bfloat16 if a.autocast == "bf16" else None

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    net = LocalScoreNet().to(dev)

    # (a) training throughput
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-3)
    data = torch.randn(a.warmup + a.steps, B, WIN, device=dev)

    def step(x):
        t = torch.rand(x.shape[0], device=dev)
        mu, sigma = mu_sigma(t[:, None])
        eps = torch.randn_like(x)
        loss = (run_net(net, mu * x + sigma * eps, t) - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(a.warmup):
        step(data[i])
    sync()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(data[a.warmup + i])
    sync()
    steps_per_s = a.steps / (time.perf_counter() - t0)

    # (b) guided evaluation and plain forward of the composed score
    net.eval()
    x = torch.randn(B, L, 3, device=dev)
    y = torch.randn(B, (L + 7) // 8, 1, device=dev)
    t = torch.tensor(0.5, device=dev)

    def median_ms(fn):
        for _ in range(5):
            fn()
        sync()
        times = []
        for _ in range(a.evals):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(times)

    out = guided_eps(net, x, t, y)
    assert out.shape == (B, L, 3) and torch.isfinite(out).all()
    guided_ms = median_ms(lambda: guided_eps(net, x, t, y))
    with torch.no_grad():
        forward_ms = median_ms(lambda: composed_eps(net, x, t))

    res = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_steps_per_s": round(steps_per_s, 2),
        "guided_eval_ms": round(guided_ms, 3),
        "forward_ms": round(forward_ms, 3),
        "autocast": a.autocast,
    }
    if a.json:
        print(json.dumps(res))
        return
    n_params = sum(p.numel() for p in net.parameters())
    print(f"PyTorch Lorenz-63 local score benchmark ({dev}, {n_params} parameters)")
    rows = [
        ("torch version", res["torch"]),
        ("threads", res["threads"]),
        ("autocast", a.autocast),
        (f"train steps/s (batch {B})", f"{steps_per_s:.1f}"),
        (f"guided eval ms (B={B}, L={L})", f"{guided_ms:.2f}"),
        (f"forward ms (B={B}, L={L})", f"{forward_ms:.2f}"),
        ("load average (1 min)", f"{os.getloadavg()[0]:.2f}"),
    ]
    for k, v in rows:
        print(f"  {k:<30} {v}")


if __name__ == "__main__":
    main()
