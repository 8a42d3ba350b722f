#!/usr/bin/python3
"""The KD-MRI DC-CNN teacher and student in PyTorch, for speed comparison only (never a runtime
dependency). Same networks as the workstation: 1 real channel, nc cascades of nd 3×3 convs (32
filters, ReLU but the last), no residual, data consistency keeping the real part of an orthonormal
unshifted inverse FFT; L1 loss, Adam 1e-3. Prints one JSON object.

    /usr/bin/python3 scripts/bench/pytorch_bench.py --size 256 --batch 4 --steps 3
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


class Cascade(nn.Module):
    def __init__(self, nd, nf=32):
        super().__init__()
        chans = [1] + [nf] * (nd - 1) + [1]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:]))

    def forward(self, x):
        for i, c in enumerate(self.convs):
            x = c(x)
            if i < len(self.convs) - 1:
                x = torch.relu(x)
        return x


def dc(x, k0, mask):
    k = torch.fft.fft2(x[:, 0], norm='ortho')
    k = k0 + (1 - mask) * k
    return torch.fft.ifft2(k, norm='ortho').real.unsqueeze(1)


class DcCnn(nn.Module):
    def __init__(self, nd, nc=5):
        super().__init__()
        self.cascades = nn.ModuleList(Cascade(nd) for _ in range(nc))

    def forward(self, x, k0, mask):
        for c in self.cascades:
            x = dc(c(x), k0, mask)
        return x


def bench(nd, size, batch, steps):
    torch.manual_seed(42)
    net = DcCnn(nd)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size)
    y = torch.rand(batch, 1, size, size)
    k0 = torch.zeros(batch, size, size, dtype=torch.complex64)
    mask = torch.zeros(size, size)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.l1_loss(net(x, k0, mask), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
    with torch.no_grad():
        net(x, k0, mask)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            net(x, k0, mask)
            runs.append(time.perf_counter() - t)
        infer = statistics.median(runs)

        # batch-1 latency: one warm-up call, then the median of three (as the TypeScript side)
        x1, k1 = x[:1], k0[:1]
        net(x1, k1, mask)
        lat = []
        for _ in range(3):
            t = time.perf_counter()
            net(x1, k1, mask)
            lat.append(time.perf_counter() - t)
    return {
        'train_slices_per_s': batch / warm,
        'infer_slices_per_s': batch / infer,
        'infer_ms_per_slice_warm': statistics.median(lat) * 1000,
        'first_step_ms': times[0] * 1000,
        'params': sum(p.numel() for p in net.parameters()),
    }


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = {'torch': torch.__version__, 'threads': a.threads,
           'teacher': bench(5, a.size, a.batch, a.steps), 'student': bench(3, a.size, a.batch, a.steps)}
    print(json.dumps(out))
