#!/usr/bin/env python3
"""PyTorch reference benchmark for the Kolmogorov U-Net local score of SDA.

Reproduces, in plain eager PyTorch, the local score network of the Kolmogorov
experiment of "Score-based Data Assimilation" (Rozet & Louppe, NeurIPS 2023)
exactly as the Rust crate builds it (src/nn/unet.rs, src/nn/embedding.rs,
src/score/net/mod.rs), so that `sda bench --network unet` and this script can be
timed side by side on the same card. Only timings are reported; data are random.

Network (eps_theta(x_window, t), k = 2: a window of 5 states of (u, v) on an
S x S grid, stacked along channels as state-major (s0.u, s0.v, s1.u, ...), plus
one context channel sin(4 y), y = 2 pi (j + 0.5) / S along the second axis):
  * time embedding: [cos(pi k t)..., sin(pi k t)...], k = 1..16 -> Linear(32,256)
    -> SiLU -> Linear(256, 64)
  * U-Net, hidden (96, 192, 384), 3 blocks per level, 3x3 circular convolutions:
      down 0: Conv(11 -> c0), blocks             -> skip 0
      down i: Conv_stride2(c_{i-1} -> c_i), blocks (no activation after the
              stride-2 convolution)              -> skip i
      up   i: blocks, then (i > 0) ChannelNorm, nearest x2, Conv(c_i -> c_{i-1})
              + skip i-1
      up   0: blocks, then Conv(c0 -> 10)
    block: h + Conv(SiLU(Conv(ChannelNorm(h + Linear(emb)))));
    ChannelNorm: over channels at each pixel, biased variance, eps 1e-5, no affine.
  * VP "cos" schedule: mu(t) = cos(acos(sqrt(eta)) t)^2,
    sigma(t) = sqrt(1 - mu^2 + eta^2), eta = 1e-3.

What is measured (each figure matches one line of `sda bench --network unet`):
  * train_steps_per_s: AdamW(lr=2e-4, wd=1e-3) steps on batches of --batch
    windows, x ~ N(0,1), t ~ U(0,1), loss = mean((eps_theta(mu x + sigma eps, t)
    - eps)^2) with mu, sigma at t = 0.5 as in `sda bench`.
  * guided_eval_ms: one SDA-guided noise estimate for ONE trajectory of L states
    (--states, default 8 and 64) at t = 0.5: the L - 4 windows in one network
    call, composed per state (first 2 states from window 0, centres, last 2 from
    the last window); x_hat = (x - sigma eps) / mu; scenario 1 observations
    A(x) = 8x8 block means of every 4th state, var = 0.1^2 + 1e-2 (sigma/mu)^2;
    s = d log p(y | x_hat) / dx through the network (autograd); guided = eps -
    sigma s. forward_ms: the composed eps under torch.no_grad.
  * assimilation seconds: the predictor-corrector sampler (T = 256, C = 1,
    tau = 0.5) with the guided estimate, one trajectory of 8 states.

Precision: --tf32 lets cuBLAS and cuDNN use TF32 tensor cores (fp32 storage,
10-bit mantissa products, fp32 accumulation); without it both are off (PyTorch
enables TF32 for cuDNN convolutions by default: this script turns it off, so the
default is true fp32). --autocast bf16 runs the network under torch.autocast
(bf16 matrix work, fp32 weights, optimiser and sampler state).

Usage: python3 benches/pytorch_unet.py [--device cuda] [--tf32] [--batch 32]
       [--size 64] [--preset paper|reduced] [--steps 50] [--evals 10] [--json]
"""
import argparse
import json
import math
import statistics
import time
import warnings

warnings.filterwarnings("ignore", message=".*Failed to initialize NumPy.*")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ETA = 1e-3
K = 2
W = 2 * K + 1  # states per window
PRESETS = {"paper": ((96, 192, 384), 3), "reduced": ((24, 48, 96), 1)}


def mu_sigma(t):
    mu = torch.cos(math.acos(math.sqrt(ETA)) * torch.as_tensor(t)) ** 2
    return mu, torch.sqrt(1 - mu**2 + ETA**2)


def channel_norm(x):
    """LayerNorm over the channel axis at each pixel, without affine."""
    mean = x.mean(dim=1, keepdim=True)
    var = (x - mean).square().mean(dim=1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)


class CircularConv(nn.Module):
    """Circular padding of kernel // 2, then a valid convolution (stride 1 or 2)."""

    def __init__(self, i, o, kernel=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(i, o, kernel, stride=stride)
        self.pad = kernel // 2

    def forward(self, x):
        p = self.pad
        return self.conv(F.pad(x, (p, p, p, p), mode="circular"))


class ModBlock(nn.Module):
    """h + Conv(SiLU(Conv(ChannelNorm(h + Linear(emb)))))."""

    def __init__(self, c, emb):
        super().__init__()
        self.project = nn.Linear(emb, c)
        self.c1, self.c2 = CircularConv(c, c), CircularConv(c, c)

    def forward(self, h, emb):
        r = channel_norm(h + self.project(emb)[:, :, None, None])
        return h + self.c2(F.silu(self.c1(r)))


class UNet(nn.Module):
    def __init__(self, channels, context, hidden, blocks, emb):
        super().__init__()
        h = hidden
        self.heads = nn.ModuleList(
            [CircularConv(channels + context, h[0])]
            + [CircularConv(h[i - 1], h[i], stride=2) for i in range(1, len(h))]
        )
        self.down = nn.ModuleList(
            [nn.ModuleList([ModBlock(c, emb) for _ in range(blocks)]) for c in h]
        )
        self.up = nn.ModuleList(
            [nn.ModuleList([ModBlock(c, emb) for _ in range(blocks)]) for c in h]
        )
        self.tails = nn.ModuleList(
            [CircularConv(h[0], channels)] + [CircularConv(h[i], h[i - 1]) for i in range(1, len(h))]
        )

    def forward(self, x, context, emb):
        x = torch.cat([x, context], dim=1)
        skips = []
        for head, blocks in zip(self.heads, self.down):
            x = head(x)
            for b in blocks:
                x = b(x, emb)
            skips.append(x)
        skips.pop()
        for i in reversed(range(len(self.heads))):
            for b in self.up[i]:
                x = b(x, emb)
            if i > 0:
                up = F.interpolate(channel_norm(x), scale_factor=2, mode="nearest")
                x = self.tails[i](up) + skips.pop()
            else:
                x = self.tails[0](x)
        return x


class LocalScoreNet(nn.Module):
    """eps_theta on flattened windows [N, 5 * 2 * S * S] -> same shape."""

    def __init__(self, size, hidden, blocks, emb=64, freqs=16):
        super().__init__()
        self.size = size
        self.register_buffer("freqs", math.pi * torch.arange(1, freqs + 1, dtype=torch.float32))
        self.embed = nn.Sequential(nn.Linear(2 * freqs, 256), nn.SiLU(), nn.Linear(256, emb))
        self.unet = UNet(W * 2, 1, hidden, blocks, emb)
        j = torch.arange(size, dtype=torch.float32)
        forcing = torch.sin(4 * 2 * math.pi * (j + 0.5) / size)  # along the second axis
        self.register_buffer("forcing", forcing.expand(size, size).reshape(1, 1, size, size))

    def forward(self, x, t):
        n, s = x.shape[0], self.size
        ft = t[:, None] * self.freqs
        e = self.embed(torch.cat([ft.cos(), ft.sin()], dim=-1))
        fields = x.reshape(n, W * 2, s, s)
        return self.unet(fields, self.forcing.expand(n, 1, s, s), e).reshape(n, -1)


def composed_eps(net, x, t):
    """x: [B, L, F] -> eps: [B, L, F] from the L - 2k overlapping windows."""
    b, l, f = x.shape
    w = x.unfold(1, W, 1).permute(0, 1, 3, 2)  # [B, L-2k, 5, F]
    n = w.shape[1]
    e = net(w.reshape(b * n, -1), t.expand(b * n)).reshape(b, n, W, f)
    return torch.cat([e[:, 0, :K], e[:, :, K], e[:, -1, K + 1:]], dim=1)


def observe(x, size):
    """Scenario 1: every 4th state, 8x8 block means: [B, L, F] -> [B, M]."""
    x = x[:, ::4].reshape(x.shape[0], -1, 2, size // 8, 8, size // 8, 8)
    return x.mean(dim=(4, 6)).reshape(x.shape[0], -1)


def guided_eps(net, x, t, y, size, gamma=1e-2, std=0.1):
    mu, sigma = mu_sigma(t)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps = composed_eps(net, x, t)
        x_hat = (x - sigma * eps) / mu
        var = std**2 + gamma * (sigma / mu) ** 2
        log_p = -0.5 * ((y - observe(x_hat, size)) ** 2 / var).sum()
        (s,) = torch.autograd.grad(log_p, x)
    return eps.detach() - sigma * s


def sample(net, shape, y, size, steps, corrections, tau, dev, autocast):
    """The predictor-corrector sampler of docs/method.md section 6."""
    x = torch.randn(shape, device=dev)
    dt = 1.0 / steps
    for j in range(steps):
        t = 1.0 - j * dt
        s = t - dt
        (mu_t, sig_t), (mu_s, sig_s) = mu_sigma(t), mu_sigma(s)
        r = mu_s / mu_t
        with autocast():
            e = guided_eps(net, x, torch.tensor(t, device=dev), y, size).float()
        x = r * x + (sig_s - r * sig_t) * e
        for _ in range(corrections):
            z = torch.randn_like(x)
            with autocast():
                e = guided_eps(net, x, torch.tensor(s, device=dev), y, size).float()
            delta = tau / e.square().mean(dim=(1, 2), keepdim=True)
            x = x - (delta * e + torch.sqrt(2 * delta) * z) * sig_s
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tf32", action="store_true", help="TF32 tensor cores for matmul and conv")
    p.add_argument("--autocast", choices=["none", "bf16", "f16"], default="none")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--preset", choices=list(PRESETS), default="paper")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--evals", type=int, default=10)
    p.add_argument("--states", default="8,64")
    p.add_argument("--assimilation-states", type=int, default=8)
    p.add_argument("--sampler-steps", type=int, default=256)
    p.add_argument("--corrections", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    if cuda:
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(a.autocast)

    def autocast():
        return torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None)

    s = a.size
    hidden, blocks = PRESETS[a.preset]
    net = LocalScoreNet(s, hidden, blocks).to(dev)
    f = 2 * s * s

    # (a) training throughput
    opt = torch.optim.AdamW(net.parameters(), lr=2e-4, weight_decay=1e-3, eps=1e-8)
    mu, sigma = mu_sigma(0.5)

    def step():
        x = torch.randn(a.batch, W * f, device=dev)
        eps = torch.randn_like(x)
        t = torch.rand(a.batch, device=dev)
        with autocast():
            loss = (net(mu * x + sigma * eps, t).float() - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    steps_per_s = a.steps / (time.perf_counter() - t0)

    # (b) guided evaluation and plain forward for one trajectory of each length
    net.eval()

    def median_ms(fn):
        for _ in range(min(a.warmup, 3)):
            fn()
        sync()
        times = []
        for _ in range(a.evals):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(times)

    t = torch.tensor(0.5, device=dev)
    rows = []
    for l in [int(v) for v in a.states.split(",")]:
        x = torch.randn(1, l, f, device=dev)
        y = torch.zeros(1, observe(x, s).shape[1], device=dev)
        with autocast():
            out = guided_eps(net, x, t, y, s)
            assert out.shape == (1, l, f) and torch.isfinite(out).all()
            g = median_ms(lambda: guided_eps(net, x, t, y, s))
            with torch.no_grad():
                fw = median_ms(lambda: composed_eps(net, x, t))
        rows.append({"states": l, "guided_eval_ms": round(g, 3), "forward_ms": round(fw, 3)})

    # (c) one whole assimilation
    res = {
        "network": "unet",
        "torch": torch.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if cuda else "CPU",
        "precision": ("tf32" if a.tf32 else "f32") + (f"+autocast-{a.autocast}" if dtype else ""),
        "threads": torch.get_num_threads(),
        "size": s,
        "preset": a.preset,
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_steps_per_s": round(steps_per_s, 3),
        "guided": rows,
    }
    l = a.assimilation_states
    if l > 0:
        x = torch.zeros(1, l, f, device=dev)
        y = torch.zeros(1, observe(x, s).shape[1], device=dev)
        sync()
        t0 = time.perf_counter()
        x = sample(net, (1, l, f), y, s, a.sampler_steps, a.corrections, 0.5, dev, autocast)
        sync()
        secs = time.perf_counter() - t0
        res["assimilation"] = {
            "states": l,
            "steps": a.sampler_steps,
            "corrections": a.corrections,
            "seconds": round(secs, 3),
            "finite": bool(torch.isfinite(x).all()),
        }
    if a.json:
        print(json.dumps(res))
        return
    print(
        f"PyTorch {res['torch']} — Kolmogorov local score, k = 2, U-Net {list(hidden)}, "
        f"{blocks} blocks per level on {s}² ({res['parameters']} parameters) "
        f"on {res['device_name']} ({dev}, {res['precision']})"
    )
    lines = [(f"training steps/s (batch {a.batch})", steps_per_s)]
    for r in rows:
        lines.append((f"guided evaluation (1 × {r['states']} states), ms", r["guided_eval_ms"]))
        lines.append((f"forward only (1 × {r['states']} states), ms", r["forward_ms"]))
    if l > 0:
        c = res["assimilation"]
        lines.append(
            (f"assimilation of {l} states (T = {c['steps']}, C = {c['corrections']}), s", c["seconds"])
        )
    for k, v in lines:
        print(f"  {k:<52} {v:>10.2f}")


if __name__ == "__main__":
    main()
