"""Quick standalone search for a training schedule of the 784-512-2 Bernoulli VAE (seed 003).

Mirrors the notebook's model and loss, without the notebook. Reports the test negative ELBO in nats per image
(analytic KL, Monte-Carlo reconstruction term averaged over --eval-samples draws of z per image).

    .venv/bin/python bench/vae_schedule.py --epochs 30 --schedule onecycle --peak-lr 3e-3 --batch 128
"""

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn


class Encoder(nn.Module):
    def __init__(self, dim_input=784, dim_latent=2, dim_hidden=512):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(dim_input, dim_hidden), nn.ReLU())
        self.mu = nn.Linear(dim_hidden, dim_latent)
        self.log_sigma_squared = nn.Linear(dim_hidden, dim_latent)

    def forward(self, x):
        h = self.hidden(x)
        return self.mu(h), self.log_sigma_squared(h)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())

    def forward(self, x):
        mu, lss = self.encoder(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * lss)
        return self.decoder(z), mu, lss


def loss_fn(x, x_rec, mu, lss, beta=1.0):
    kl = (-0.5 * (1 + lss - mu.pow(2) - lss.exp()).sum(1)).mean()
    return F.binary_cross_entropy(x_rec, x, reduction="sum") / x.shape[0] + beta * kl


def random_shift(batch, max_shift):
    """Translate each 28x28 image by a random integer offset in [-max_shift, max_shift]^2, filling with zeros."""
    images = F.pad(batch.view(-1, 1, 28, 28), (max_shift,) * 4)
    n = len(batch)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (n,)) for _ in range(2))
    rows = (dy[:, None] + torch.arange(28)[None, :])            # (n, 28)
    cols = (dx[:, None] + torch.arange(28)[None, :])
    out = images[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]]
    return out.reshape(n, 784)


def lr_at(step, total, peak, schedule, warmup_frac, final_frac):
    if schedule == "constant":
        return peak
    warm = max(1, int(warmup_frac * total))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    if schedule == "onecycle":  # cosine from peak down to final_frac * peak
        return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * progress)))
    if schedule == "linear":
        return peak * (final_frac + (1 - final_frac) * (1 - progress))
    raise ValueError(schedule)


@torch.no_grad()
def test_nelbo(model, x, samples, seed):
    torch.manual_seed(seed)
    total = 0.0
    for start in range(0, len(x), 1000):
        batch = x[start:start + 1000]
        mu, lss = model.encoder(batch)
        kl = (-0.5 * (1 + lss - mu.pow(2) - lss.exp()).sum(1))
        rec = torch.zeros(len(batch))
        for _ in range(samples):
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * lss)
            rec += F.binary_cross_entropy(model.decoder(z), batch, reduction="none").sum(1)
        total += (rec / samples + kl).sum().item()
    return total / len(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", default="data_cache")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batch-final", type=int, default=0, help="grow the batch linearly to this size")
    p.add_argument("--schedule", default="onecycle", choices=["constant", "onecycle", "linear"])
    p.add_argument("--peak-lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=float, default=0.05)
    p.add_argument("--final-frac", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--kl-warmup", type=float, default=0.0, help="KL weight rises linearly 0 -> 1 over this fraction")
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-samples", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled weight decay (0: plain Adam)")
    p.add_argument("--binarize-input", action="store_true",
                   help="the encoder sees a fresh Bernoulli(x) draw each step (the loss still compares with x)")
    p.add_argument("--input-noise", type=float, default=0.0, help="std of Gaussian noise added to the encoder input")
    p.add_argument("--shift", type=int, default=0, help="random translation of training images by up to N pixels")
    p.add_argument("--ema", default="", help="comma-separated decays of exponential moving averages of the weights")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    def load(train):
        ds = torchvision.datasets.MNIST(root=args.root, train=train, download=False)
        return ds.data.reshape(len(ds), -1).float() / 255.0

    x_train, x_test = load(True)[: args.n_train], load(False)
    torch.manual_seed(args.seed)
    model = Model()
    opt = (torch.optim.AdamW(model.parameters(), lr=args.peak_lr, weight_decay=args.weight_decay) if args.weight_decay
           else torch.optim.Adam(model.parameters(), lr=args.peak_lr))
    n = len(x_train)

    def batch_size(epoch):
        if not args.batch_final:
            return args.batch
        return int(round(args.batch + (args.batch_final - args.batch) * epoch / max(1, args.epochs - 1)))

    decays = [float(d) for d in args.ema.split(",") if d]
    averages = {d: [q.detach().clone() for q in model.parameters()] for d in decays}
    total_steps = sum(math.ceil(n / batch_size(e)) for e in range(args.epochs))
    step = 0
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        bs = batch_size(epoch)
        perm = torch.randperm(n)
        running = 0.0
        for start in range(0, n, bs):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, args.peak_lr, args.schedule, args.warmup, args.final_frac)
            batch = x_train[perm[start:start + bs]]
            beta = min(1.0, (step + 1) / (args.kl_warmup * total_steps)) if args.kl_warmup else 1.0
            if args.shift:
                batch = random_shift(batch, args.shift)
            seen = batch
            if args.binarize_input:
                seen = torch.bernoulli(batch)
            if args.input_noise:
                seen = seen + args.input_noise * torch.randn_like(seen)
            mu, lss = model.encoder(seen)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * lss)
            loss = loss_fn(batch, model.decoder(z), mu, lss, beta=beta)
            opt.zero_grad()
            loss.backward()
            if args.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            with torch.no_grad():
                for d, avg in averages.items():
                    torch._foreach_lerp_(avg, [q.detach() for q in model.parameters()], 1 - d)
            running += loss.item() * len(batch)
            step += 1
        line = f"epoch {epoch + 1:3d} bs {bs:4d} train {running / n:8.3f} t {time.perf_counter() - t0:6.1f}s"
        if args.eval_every and (epoch + 1) % args.eval_every == 0:
            line += f" test {test_nelbo(model, x_test, 1, 123):8.3f}"
        print(line, flush=True)
    train_time = time.perf_counter() - t0
    nelbo = test_nelbo(model, x_test, args.eval_samples, 123)
    for d, avg in averages.items():
        averaged = Model()
        with torch.no_grad():
            for q, a in zip(averaged.parameters(), avg):
                q.copy_(a)
        print(f"EMA {d} test_nelbo {test_nelbo(averaged, x_test, args.eval_samples, 123):.3f}")
    print(f"RESULT {vars(args)} test_nelbo {nelbo:.3f} nats train_time {train_time:.1f}s")


if __name__ == "__main__":
    main()
