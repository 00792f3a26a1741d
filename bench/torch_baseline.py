#!/usr/bin/env python3
"""PyTorch baseline for `Edm.Bench kernels`: times the same ops at the same shapes with PyTorch
and writes the same JSON schema, so that `Edm.Bench compare ours.json torch.json` can join them.

Row schema (a JSON array): {op, shape, device, median_ms, gbps, gflops, baseline, baseline_ms,
ratio, note}. The baseline is a tensor copy of the same bytes (torch-copy); ratio = median_ms /
baseline_ms, as in ours. GB/s and GFLOP/s use the byte and FLOP counts of our bench files.

Settings: float32, TF32 off (matmul and cuDNN) unless --tf32 (then both on, and every row's note
says "tf32"), cudnn.benchmark on. Timing: CUDA events around
each repetition on GPU, time.perf_counter on CPU (after a synchronise); median of --reps after
warm-up. The JSON file is rewritten (atomically) after every row, so a run killed by a timeout
keeps what it measured; a case that raises is recorded as a row with NaN times and the error in
its note, and the run goes on (exit code 1 at the end).

Op names and shape strings (must equal Edm.Bench/Perf/*.cs; B = 64, --quick divides B by 16
unless noted):
  gelu, silu, axpy, add   "(n)"   n = 4M on cpu, 64M on cuda (--quick: /16)      ElementwiseBench.cs
  sum                     "(n)"   n = 16M on cpu, 64M on cuda (--quick: /16)     ElementwiseBench.cs
  gemm                    "(n, n, n)"  n in 512, 1024 on cpu; 512, 4096 on cuda;
                                   --quick: 512 only                             GemmBench.cs (branch nn)
  conv2d, conv2d-bwd      "B64 128->128 32x32 k3", "B64 256->256 16x16 k3";
                          conv2d-bwd = input + weight + bias gradients (no forward);
                          cpu --quick: B8                                        Conv2dBench.cs (branch nn)
  groupnorm, groupnorm_fwd_bwd  "(B, 128, 32, 32) G=32", "(B, 256, 16, 16) G=32"  GroupNormBench.cs
  groupnorm_silu, groupnorm_silu_fwd_bwd  the same shapes, silu(group_norm(x))      GroupNormBench.cs
  attention, attention_fwd_bwd  "(BH, 256, 256)", "(BH, 1024, 64)" = (B*heads, N, d),
                          F.scaled_dot_product_attention (the explicit softmax(QK^T/sqrt d)V
                          formula on torch < 2.0, noted in the row)               AttentionBench.cs
  softmax                 "(B*256, 256)", "(B*64, 1024)"                          SoftmaxBench.cs
  dropout                 "(B, 256, 16, 16) p=0.13"                               DropoutBench.cs
  upsample2x              "(B, 128, 16, 16)" (nearest)                            PoolingBench.cs
  avgpool2x               "(B, 128, 32, 32)"                                      PoolingBench.cs
  conv2d-geom             "B8 192->192 17x17 k1x7 s1", "B8 288->384 35x35 k3x3 s2" (--quick: B2),
                          forward without bias                                    Conv2dBench.cs
  batchnorm, batchnorm_train  "(B, 192, 35, 35)": eval forward; training forward + backward
                          (F.batch_norm, eps 1e-3)                                BatchNormBench.cs
  maxpool2d, avgpool2d, adaptive_avgpool2d  "(B, 64, 147, 147) k3 s2 p0", "(B, 288, 35, 35) k3 s1 p1"
                          (count_include_pad=False), "(B, 2048, 8, 8) -> (1, 1)"   Pool2dBench.cs
  bilinear                "(B, 3, 32, 32) -> (299, 299)" (align_corners=False)    InterpolateBench.cs
  step_ddpmpp             "ddpmpp-cifar10 (b, 3, 32, 32) label_dim 10": forward + EDM loss +
                          backward of DDPM++ (no optimizer); b = 8 on cpu (--quick: 2), 128 on
                          cuda (--quick too); baseline "none" (NaN); GFLOP/s from 3 x the forward's
                          conv/linear/attention FLOPs                             StepBench.cs
  step_ddpmpp_tiny        "ddpmpp-tiny (32, 1, R, R) label_dim 0", R = 16 and 32 (--quick: one row,
                          "ddpmpp-tiny (2, 1, 8, 8) label_dim 0"): forward + EDM loss + backward +
                          torch.optim.Adam step (lr 1e-3) of the tiny DDPM++ (1 channel,
                          unconditional, 188,769 parameters); baseline "none"     TinyStepBench.cs
  step_ddpmpp_tiny_fwd    "ddpmpp-tiny (64, 1, R, R) label_dim 0" (--quick as above, batch 2): the
                          preconditioned forward D(x; sigma) under torch.no_grad, eval mode
                                                                                  TinyStepBench.cs

Usage: python3 bench/torch_baseline.py --device cpu|cuda [--ops a,b] [--quick] [--json PATH]
       [--threads N] [--reps N] [--tf32]
       python3 bench/torch_baseline.py --export-onnx DIR
         writes DIR/ddpmpp-tiny-16.onnx and DIR/ddpmpp-tiny-32.onnx: the tiny network's
         preconditioned forward (x (64, 1, R, R), sigma (64)) -> D (64, 1, R, R), opset 17, for
         `Edm.Bench kernels --op step_ddpmpp_tiny_fwd --onnx DIR` (ONNX Runtime as the peer)
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F

B = 64
QUICK_DIVISOR = 16


def fmt(shape):
    """Our Shapes.Format: "(2, 3, 4)"."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


class Case:
    """One timed op: run() launches it; bytes and flops per launch as in our bench."""

    def __init__(self, op, shape, nbytes, flops, run, note=None, grad=None, copy=True):
        self.op, self.shape, self.bytes, self.flops, self.run, self.note = op, shape, nbytes, flops, run, note
        self.grad = op.endswith("_fwd_bwd") if grad is None else grad  # autograd on while timed
        self.copy = copy  # time the torch-copy baseline (False: baseline "none", NaN)


def randn(dev, *shape, grad=False):
    return torch.randn(*shape, device=dev, dtype=torch.float32, requires_grad=grad)


def quick_note(quick):
    return f"--quick: batch {B} -> {B // QUICK_DIVISOR}" if quick else None


# --- foundation (ElementwiseBench.cs) -------------------------------------------------------------
def elementwise(op, dev, quick):
    cpu = dev.type == "cpu"
    n = (16 << 20 if op == "sum" else 4 << 20) if cpu else 64 << 20
    if quick:
        n //= 16
    x, y = randn(dev, n), randn(dev, n)
    run, nbytes, flops = {
        "gelu": (lambda: F.gelu(x), 8.0 * n, 20.0 * n),
        "silu": (lambda: F.silu(x), 8.0 * n, 5.0 * n),
        "axpy": (lambda: y.add_(x, alpha=1e-3), 12.0 * n, 2.0 * n),
        "add": (lambda: torch.add(x, y), 12.0 * n, 1.0 * n),
        "sum": (lambda: x.sum(), 4.0 * n, 1.0 * n),
    }[op]
    return [Case(op, fmt([n]), nbytes, flops, run)]


# --- part A (branch nn: GemmBench.cs, Conv2dBench.cs) ---------------------------------------------
def gemm(op, dev, quick):
    cpu = dev.type == "cpu"
    sizes = [512] if quick else ([512, 1024] if cpu else [512, 4096])
    cases = []
    for n in sizes:
        a, b, c = randn(dev, n, n), randn(dev, n, n), torch.empty(n, n, device=dev)
        cases.append(Case(op, f"({n}, {n}, {n})", 12.0 * n * n, 2.0 * n ** 3,
                          lambda a=a, b=b, c=c: torch.matmul(a, b, out=c)))
    return cases


def conv2d(op, dev, quick):
    batch = 8 if dev.type == "cpu" and quick else 64
    note = "CPU --quick: B=8 instead of 64" if dev.type == "cpu" and quick else None
    cases = []
    for c, hw in [(128, 32), (256, 16)]:
        x, w, bias = randn(dev, batch, c, hw, hw), randn(dev, c, c, 3, 3) * 0.05, randn(dev, c)
        dy = randn(dev, batch, c, hw, hw)
        fwd_flops = 2.0 * batch * c * c * 9 * hw * hw
        bwd = op == "conv2d-bwd"
        if bwd:
            def run(x=x, w=w, dy=dy):
                # Gradients of input, weight and bias without the forward.
                return torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], [1, 1], [1, 1], [1, 1],
                                                           False, [0, 0], 1, [True, True, True])
            nbytes = 4.0 * (2 * x.numel() + dy.numel() + 2 * w.numel())
        else:
            def run(x=x, w=w, bias=bias):
                return F.conv2d(x, w, bias, padding=1)
            nbytes = 4.0 * (x.numel() + dy.numel() + w.numel())
        cases.append(Case(op, f"B{batch} {c}->{c} {hw}x{hw} k3", nbytes, 2 * fwd_flops if bwd else fwd_flops, run, note))
    return cases


# --- part B (this branch: GroupNormBench.cs, AttentionBench.cs, ...) ------------------------------
def groupnorm(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    backward = op.endswith("_fwd_bwd")
    silu = op.startswith("groupnorm_silu")           # silu(group_norm(x)): the pair our fused op replaces
    act = F.silu if silu else (lambda t: t)
    cases = []
    for c, hw in [(128, 32), (256, 16)]:
        x = randn(dev, b, c, hw, hw, grad=backward)
        w, bias = randn(dev, c, grad=backward), randn(dev, c, grad=backward)
        gy = randn(dev, b, c, hw, hw)
        count = x.numel()
        if backward:
            def run(x=x, w=w, bias=bias, gy=gy):
                x.grad = w.grad = bias.grad = None
                act(F.group_norm(x, 32, w, bias, 1e-5)).backward(gy)
        else:
            def run(x=x, w=w, bias=bias):
                return act(F.group_norm(x, 32, w, bias, 1e-5))
        cases.append(Case(op, f"{fmt([b, c, hw, hw])} G=32", (20.0 if backward else 8.0) * count,
                          (20.0 if backward else 8.0) * count, run, quick_note(quick)))
    return cases


def attention(op, dev, quick):
    bh = B // QUICK_DIVISOR if quick else B
    backward = op == "attention_fwd_bwd"
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    note = quick_note(quick)
    if sdpa is None:
        note = "; ".join(s for s in [note, "explicit softmax formula (torch < 2.0: no SDPA)"] if s)

    def attend(q, k, v):
        if sdpa is not None:
            return sdpa(q, k, v)
        return torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(q.shape[-1])), dim=-1) @ v

    cases = []
    for n, d in [(256, 256), (1024, 64)]:
        q, k, v = (randn(dev, bh, n, d, grad=backward) for _ in range(3))
        g = randn(dev, bh, n, d)
        elems, fwd_flops = bh * n * d, 4.0 * bh * n * n * d
        if backward:
            def run(q=q, k=k, v=v, g=g):
                q.grad = k.grad = v.grad = None
                attend(q, k, v).backward(g)
        else:
            def run(q=q, k=k, v=v):
                return attend(q, k, v)
        cases.append(Case(op, fmt([bh, n, d]), 4.0 * (12 if backward else 4) * elems,
                          3.5 * fwd_flops if backward else fwd_flops, run, note))
    return cases


def softmax(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    cases = []
    for rows, cols in [(b * 256, 256), (b * 64, 1024)]:
        x = randn(dev, rows, cols)
        cases.append(Case(op, fmt([rows, cols]), 8.0 * rows * cols, 5.0 * rows * cols,
                          lambda x=x: torch.softmax(x, dim=-1), quick_note(quick)))
    return cases


def dropout(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    x = randn(dev, b, 256, 16, 16)
    return [Case(op, f"{fmt(x.shape)} p=0.13", 8.0 * x.numel(), float(x.numel()),
                 lambda: F.dropout(x, 0.13, training=True), quick_note(quick))]


def pooling(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    if op == "upsample2x":
        x = randn(dev, b, 128, 16, 16)
        return [Case(op, fmt(x.shape), 4.0 * 5 * x.numel(), 0.0,
                     lambda: F.interpolate(x, scale_factor=2, mode="nearest"), quick_note(quick))]
    x = randn(dev, b, 128, 32, 32)
    return [Case(op, fmt(x.shape), 4.0 * 1.25 * x.numel(), float(x.numel()),
                 lambda: F.avg_pool2d(x, 2), quick_note(quick))]


# --- issue 14 (the FID Inception-v3's layers) ----------------------------------------------------------
def conv2d_geom(op, dev, quick):
    batch = 2 if quick else 8
    note = "--quick: B=2 instead of 8" if quick else None
    cases = []
    for cin, cout, hw, kh, kw, stride, pad in [(192, 192, 17, 1, 7, 1, (0, 3)), (288, 384, 35, 3, 3, 2, (0, 0))]:
        x, w = randn(dev, batch, cin, hw, hw), randn(dev, cout, cin, kh, kw) * 0.05
        ho, wo = (hw + 2 * pad[0] - kh) // stride + 1, (hw + 2 * pad[1] - kw) // stride + 1
        flops = 2.0 * batch * cout * cin * kh * kw * ho * wo
        nbytes = 4.0 * (x.numel() + w.numel() + batch * cout * ho * wo)
        cases.append(Case(op, f"B{batch} {cin}->{cout} {hw}x{hw} k{kh}x{kw} s{stride}", nbytes, flops,
                          lambda x=x, w=w, s=stride, p=pad: F.conv2d(x, w, None, stride=s, padding=p), note))
    return cases


def batchnorm(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    train = op == "batchnorm_train"
    x = randn(dev, b, 192, 35, 35, grad=train)
    w, bias = randn(dev, 192, grad=train), randn(dev, 192, grad=train)
    rm, rv = randn(dev, 192), torch.full((192,), 1.5, device=dev)
    gy = randn(dev, b, 192, 35, 35)
    n = x.numel()
    if train:
        def run():
            x.grad = w.grad = bias.grad = None
            F.batch_norm(x, rm, rv, w, bias, training=True, momentum=0.1, eps=1e-3).backward(gy)
    else:
        def run():
            return F.batch_norm(x, rm, rv, w, bias, training=False, eps=1e-3)
    return [Case(op, fmt(x.shape), 4.0 * (7 if train else 2) * n, (14.0 if train else 2.0) * n, run, quick_note(quick))]


def pool2d(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    if op == "maxpool2d":
        x = randn(dev, b, 64, 147, 147)
        y = F.max_pool2d(x, 3, 2)
        run, shape, taps = (lambda: F.max_pool2d(x, 3, 2)), f"{fmt(x.shape)} k3 s2 p0", 9
    elif op == "avgpool2d":
        x = randn(dev, b, 288, 35, 35)
        y = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        run, shape, taps = (lambda: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)), f"{fmt(x.shape)} k3 s1 p1", 9
    else:
        x = randn(dev, b, 2048, 8, 8)
        y = F.adaptive_avg_pool2d(x, 1)
        run, shape, taps = (lambda: F.adaptive_avg_pool2d(x, 1)), f"{fmt(x.shape)} -> (1, 1)", 64
    return [Case(op, shape, 4.0 * (x.numel() + y.numel()), float(y.numel() * taps), run, quick_note(quick))]


def bilinear(op, dev, quick):
    b = B // QUICK_DIVISOR if quick else B
    x = randn(dev, b, 3, 32, 32)
    out = b * 3 * 299 * 299
    return [Case(op, f"{fmt(x.shape)} -> (299, 299)", 4.0 * (x.numel() + out), 11.0 * out,
                 lambda: F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False), quick_note(quick))]


# --- step_ddpmpp (StepBench.cs): one training step of DDPM++ without the optimizer ------------------
# A plain PyTorch DDPM++ (SongUNet "VP" architecture) written from EDM's Appendix F.4 and
# docs/formulas.md section 7, as the CIFAR-10 configuration: 128 base channels, multipliers
# [2, 2, 2], embedding width 4 x 128, 4 blocks per resolution, attention (one head) at 16x16 and in
# the bottleneck, group norm with min(32, C/4) groups and eps 1e-6, SiLU, skip_scale sqrt(0.5),
# dropout 0.13, resample filter [1, 1], positional noise embedding, class conditioning by a Linear
# of the one-hot labels times sqrt(label_dim). With label_dim 10 and no augmentation it has
# 55,734,147 parameters, like our ddpmpp-cifar10 preset. Initialisation is PyTorch's default (it
# does not change the time of a step).
STEP_LABEL_DIM = 10
STEP_PARAMETERS = 55_734_147
SKIP_SCALE = math.sqrt(0.5)


def step_batch(dev, quick):
    """StepBench.BatchFor: 128 on a GPU (--quick too); on the CPU 8, or 2 with --quick."""
    return 128 if dev.type != "cpu" else (2 if quick else 8)


def step_shape(batch):
    """StepBench.ShapeString."""
    return f"ddpmpp-cifar10 {fmt([batch, 3, 32, 32])} label_dim {STEP_LABEL_DIM}"


def norm(c):
    return torch.nn.GroupNorm(min(32, c // 4), c, eps=1e-6)


class ResampleConv(torch.nn.Module):
    """k x k convolution (same padding; k = 0: none) after optional 2x resampling by the [1, 1]
    FIR filter. With [1, 1] the downsampling filter is a 2x2 box average (avg_pool2d) and the
    upsampling filter (transposed, gain 4) copies each pixel into its 2x2 block (nearest)."""

    def __init__(self, cin, cout, k, up=False, down=False):
        super().__init__()
        self.up, self.down = up, down
        self.conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2) if k else None

    def forward(self, x):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.down:
            x = F.avg_pool2d(x, 2)
        return self.conv(x) if self.conv is not None else x


class DdpmBlock(torch.nn.Module):
    """UNet block: GN-SiLU-conv3x3(-resample), + Linear(emb), GN-SiLU-dropout-conv3x3, + skip
    (1x1 conv when channels or resolution change), x skip_scale; then optional one-head
    self-attention GN-qkv-softmax(q^T k / sqrt C)-v-proj, + residual, x skip_scale."""

    def __init__(self, cin, cout, emb, up=False, down=False, attention=False, takes_skip=False, dropout=0.13):
        super().__init__()
        self.takes_skip, self.attention, self.dropout = takes_skip, attention, dropout
        self.norm0 = norm(cin)
        self.conv0 = ResampleConv(cin, cout, 3, up, down)
        self.affine = torch.nn.Linear(emb, cout)
        self.norm1 = norm(cout)
        self.conv1 = ResampleConv(cout, cout, 3)
        self.skip = ResampleConv(cin, cout, 1, up, down) if cin != cout or up or down else None
        if attention:
            self.norm2 = norm(cout)
            self.qkv = torch.nn.Conv2d(cout, 3 * cout, 1)
            self.proj = torch.nn.Conv2d(cout, cout, 1)
            self.attn_scale = 1 / math.sqrt(cout)  # a constant, so the ONNX export traces no shape arithmetic

    def forward(self, x, emb):
        h = self.conv0(F.silu(self.norm0(x)))
        h = F.silu(self.norm1(h + self.affine(emb)[:, :, None, None]))
        h = self.conv1(F.dropout(h, self.dropout, self.training))
        x = (h + (self.skip(x) if self.skip is not None else x)) * SKIP_SCALE
        if self.attention:
            b, c, hh, ww = x.shape
            # (B, 3C, H, W) read as (B, C, 3, N): channel 3i + j of qkv is component j of channel i.
            # Batched matrix products (not einsum): they export to ONNX MatMul, ONNX Runtime's fast path.
            q, k, v = self.qkv(self.norm2(x)).reshape(b, c, 3, hh * ww).unbind(2)       # (B, C, N) each
            p = torch.softmax(torch.bmm(q.transpose(1, 2), k * self.attn_scale), dim=2)   # (B, N, N) = q^T k
            a = torch.bmm(v, p.transpose(1, 2)).reshape(b, c, hh, ww)                   # a[c, q] = sum_k p[q, k] v[c, k]
            x = (self.proj(a) + x) * SKIP_SCALE
        return x


class DdpmPP(torch.nn.Module):
    """F(x; c_noise, class labels) of DDPM++ (labels None and no label layer when label_dim is 0)."""

    def __init__(self, res=32, img_ch=3, label_dim=STEP_LABEL_DIM, ch=128, mult=(2, 2, 2), blocks=4, attn=(16,), dropout=0.13):
        super().__init__()
        emb = 4 * ch
        self.noise_ch, self.label_dim = ch, label_dim
        self.map_label = torch.nn.Linear(label_dim, ch) if label_dim else None
        self.map_layer0 = torch.nn.Linear(ch, emb)
        self.map_layer1 = torch.nn.Linear(emb, emb)
        self.enc, self.dec = torch.nn.ModuleList(), torch.nn.ModuleList()
        skip_ch, c = [], img_ch
        for level, m in enumerate(mult):
            r = res >> level
            if level == 0:
                self.enc.append(ResampleConv(c, ch, 3))
                c = ch
            else:
                self.enc.append(DdpmBlock(c, c, emb, down=True, dropout=dropout))
            skip_ch.append(c)
            for _ in range(blocks):
                self.enc.append(DdpmBlock(c, ch * m, emb, attention=r in attn, dropout=dropout))
                c = ch * m
                skip_ch.append(c)
        for level in reversed(range(len(mult))):
            r = res >> level
            if level == len(mult) - 1:
                self.dec.append(DdpmBlock(c, c, emb, attention=True, dropout=dropout))
                self.dec.append(DdpmBlock(c, c, emb, dropout=dropout))
            else:
                self.dec.append(DdpmBlock(c, c, emb, up=True, dropout=dropout))
            for idx in range(blocks + 1):
                cin = c + skip_ch.pop()
                c = ch * mult[level]
                self.dec.append(DdpmBlock(cin, c, emb, attention=idx == blocks and r in attn, takes_skip=True, dropout=dropout))
        self.out_norm = norm(c)
        self.out_conv = torch.nn.Conv2d(c, img_ch, 3, padding=1)

    def embed(self, c_noise):
        """Positional embedding (max_positions 10000, endpoint: the last frequency is 1/10000),
        with the sine half first."""
        half = self.noise_ch // 2
        freqs = (1.0 / 10000) ** (torch.arange(half, dtype=torch.float32, device=c_noise.device) / (half - 1))
        a = c_noise[:, None].float() * freqs[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)

    def forward(self, x, c_noise, labels):
        emb = self.embed(c_noise)
        if self.map_label is not None:
            emb = emb + self.map_label(labels * math.sqrt(self.label_dim))
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))
        skips = []
        for m in self.enc:
            x = m(x, emb) if isinstance(m, DdpmBlock) else m(x)
            skips.append(x)
        for m in self.dec:
            if m.takes_skip:
                x = torch.cat([x, skips.pop()], dim=1)
            x = m(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))


def edm_denoise(net, x, sigma, labels=None, sigma_data=0.5):
    """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) under the EDM preconditioning (Table 1);
    sigma (B, 1, 1, 1)."""
    s2 = sigma ** 2 + sigma_data ** 2
    c_skip, c_out, c_in = sigma_data ** 2 / s2, sigma * sigma_data / s2.sqrt(), 1 / s2.sqrt()
    c_noise = sigma.log().flatten() / 4
    return c_skip * x + c_out * net(c_in * x, c_noise, labels)


def edm_loss(net, y, labels, p_mean=-1.2, p_std=1.2, sigma_data=0.5):
    """EDM loss (docs/formulas.md section 6) through the EDM preconditioning (Table 1): sum over
    pixels of lambda(sigma) ||D(y + n; sigma) - y||^2, averaged over the batch."""
    b = y.shape[0]
    sigma = torch.exp(p_mean + p_std * torch.randn(b, 1, 1, 1, device=y.device))
    weight = (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2
    x = y + torch.randn_like(y) * sigma
    d = edm_denoise(net, x, sigma, labels, sigma_data)
    return (weight * (d - y) ** 2).sum() / b


def forward_flops(net, y, labels):
    """2 x MACs of every Conv2d, Linear and attention product in one forward (hooks on the output
    shapes; group norm and elementwise work not counted), as StepFlops in StepBench.cs."""
    total = [0.0]

    def hook(m, inputs, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += 2.0 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            total[0] += 2.0 * out.numel() * m.in_features
        elif isinstance(m, DdpmBlock) and m.attention:
            b, c, hh, ww = out.shape
            total[0] += 4.0 * b * (hh * ww) ** 2 * c

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net(y, torch.zeros(y.shape[0], device=y.device), labels)
    for h in handles:
        h.remove()
    return total[0]


def step_ddpmpp(op, dev, quick):
    batch = step_batch(dev, quick)
    net = DdpmPP().to(dev).train()
    params = sum(p.numel() for p in net.parameters())
    print(f"step_ddpmpp: DDPM++ parameters {params:,} (ours: {STEP_PARAMETERS:,}; "
          f"{'equal' if params == STEP_PARAMETERS else 'DIFFERENT'})", flush=True)
    y = torch.rand(batch, 3, 32, 32, device=dev) * 2 - 1
    labels = F.one_hot(torch.arange(batch, device=dev) % STEP_LABEL_DIM, STEP_LABEL_DIM).float()
    flops = 3 * forward_flops(net, y, labels)

    def run():
        net.zero_grad(set_to_none=True)
        edm_loss(net, y, labels).backward()

    note = (f"images/s = {batch} x 1000 / ms; {params:,} parameters; GFLOP/s from {flops / 1e9:.1f} GFLOP per step "
            "(3 x forward conv/linear/attention FLOPs)")
    return [Case(op, step_shape(batch), 0.0, flops, run, note, grad=True, copy=False)]


# --- step_ddpmpp_tiny (TinyStepBench.cs): the ddpmpp-tiny preset, 1 channel, unconditional ----------
# model_channels 16, channel_mult [1, 2], num_blocks 1, attention at R/2 (one head), dropout 0,
# positional embedding, label_dim 0: 188,769 parameters at every resolution, like ours.
TINY_PARAMETERS = 188_769
TINY_STEP_BATCH, TINY_FWD_BATCH, TINY_QUICK_BATCH = 32, 64, 2


def tiny_net(res):
    """Presets.Create("ddpmpp-tiny", resolution: res, channels: 1, labelDim: 0)."""
    return DdpmPP(res=res, img_ch=1, label_dim=0, ch=16, mult=(1, 2), blocks=1, attn=(res // 2,), dropout=0.0)


def tiny_shape(batch, res):
    """TinyStepBench.ShapeString."""
    return f"ddpmpp-tiny {fmt([batch, 1, res, res])} label_dim 0"


def tiny_parameters(op, net):
    """Prints the parameter count and asserts it equals ours."""
    params = sum(p.numel() for p in net.parameters())
    print(f"{op}: DDPM++ tiny parameters {params:,} (ours: {TINY_PARAMETERS:,}; "
          f"{'equal' if params == TINY_PARAMETERS else 'DIFFERENT'})", flush=True)
    assert params == TINY_PARAMETERS, f"the tiny network has {params:,} parameters, ours {TINY_PARAMETERS:,}"
    return params


class EdmPrecond(torch.nn.Module):
    """D(x; sigma) of an unconditional network, sigma (B,): the exported and timed forward."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, sigma):
        return edm_denoise(self.net, x, sigma.reshape(-1, 1, 1, 1))


def tiny_inputs(batch, res, dev):
    """x = y + sigma n, y uniform in [-1, 1], sigma log-spaced over [0.002, 80] (TinyDenoise)."""
    sigma = torch.exp(torch.linspace(math.log(0.002), math.log(80), batch, device=dev))
    y = torch.rand(batch, 1, res, res, device=dev) * 2 - 1
    return y + torch.randn_like(y) * sigma[:, None, None, None], sigma


def step_ddpmpp_tiny(op, dev, quick):
    forward_only = op == "step_ddpmpp_tiny_fwd"
    cases = []
    for res in ([8] if quick else [16, 32]):
        batch = TINY_QUICK_BATCH if quick else (TINY_FWD_BATCH if forward_only else TINY_STEP_BATCH)
        net = tiny_net(res).to(dev)
        params = tiny_parameters(op, net)
        x, sigma = tiny_inputs(batch, res, dev)
        fwd = forward_flops(net, x, None)
        if forward_only:
            precond = EdmPrecond(net.eval())

            def run(precond=precond, x=x, sigma=sigma):
                return precond(x, sigma)
            note = (f"images/s = {batch} x 1000 / ms; {params:,} parameters; D(x; sigma) under torch.no_grad, eval; "
                    f"{fwd / 1e9:.2f} GFLOP per pass")
            cases.append(Case(op, tiny_shape(batch, res), 0.0, fwd, run, note, grad=False, copy=False))
        else:
            net.train()
            y = torch.rand(batch, 1, res, res, device=dev) * 2 - 1
            opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

            def run(net=net, y=y, opt=opt):
                opt.zero_grad(set_to_none=True)
                edm_loss(net, y, None).backward()
                opt.step()
            note = (f"images/s = {batch} x 1000 / ms; {params:,} parameters; forward + EDM loss + backward + Adam (lr 0.001); "
                    f"GFLOP/s from {3 * fwd / 1e9:.2f} GFLOP per step (3 x forward conv/linear/attention FLOPs)")
            cases.append(Case(op, tiny_shape(batch, res), 0.0, 3 * fwd, run, note, grad=True, copy=False))
    return cases


def export_onnx(out_dir):
    """Writes DIR/ddpmpp-tiny-{16,32}.onnx: D(x; sigma) of the tiny network at batch 64, fixed shapes."""
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    for res in (16, 32):
        net = tiny_net(res).eval()
        tiny_parameters("export-onnx", net)
        x, sigma = tiny_inputs(TINY_FWD_BATCH, res, torch.device("cpu"))
        path = os.path.join(out_dir, f"ddpmpp-tiny-{res}.onnx")
        tmp = path + ".tmp"
        with torch.no_grad(), warnings.catch_warnings():
            # torch 1.13's exporter warns about its own constants' shape inference; the shapes are fixed.
            warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
            torch.onnx.export(EdmPrecond(net), (x, sigma), tmp, opset_version=17, input_names=["x", "sigma"],
                              output_names=["D"], do_constant_folding=True)
        os.replace(tmp, path)
        print(f"wrote {path}: x {fmt(x.shape)}, sigma {fmt(sigma.shape)} -> D {fmt(x.shape)}, opset 17")
    return 0


OPS = {
    "gelu": elementwise, "silu": elementwise, "axpy": elementwise, "add": elementwise, "sum": elementwise,
    "gemm": gemm, "conv2d": conv2d, "conv2d-bwd": conv2d,
    "groupnorm": groupnorm, "groupnorm_fwd_bwd": groupnorm, "groupnorm_silu": groupnorm, "groupnorm_silu_fwd_bwd": groupnorm,
    "attention": attention, "attention_fwd_bwd": attention,
    "softmax": softmax, "dropout": dropout, "upsample2x": pooling, "avgpool2x": pooling,
    "conv2d-geom": conv2d_geom, "batchnorm": batchnorm, "batchnorm_train": batchnorm,
    "maxpool2d": pool2d, "avgpool2d": pool2d, "adaptive_avgpool2d": pool2d, "bilinear": bilinear,
    "step_ddpmpp": step_ddpmpp,
    "step_ddpmpp_tiny": step_ddpmpp_tiny, "step_ddpmpp_tiny_fwd": step_ddpmpp_tiny,
}

# Ops of our bench without a PyTorch row (accepted in --ops so that one list serves both benches).
OURS_ONLY = {"point_denoise", "adam", "tape", "step_ddpmpp_conv", "step_ddpmpp_groupnorm", "step_ddpmpp_attention"}


def median_ms(run, dev, reps, warmup=3, max_seconds=10.0):
    """Median of synchronised repetitions (CUDA events on GPU, perf_counter on CPU)."""
    for _ in range(warmup):
        run()
    times, start = [], time.perf_counter()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        for _ in range(reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            run()
            e1.record()
            e1.synchronize()
            times.append(e0.elapsed_time(e1))
            if time.perf_counter() - start > max_seconds and len(times) >= 3:
                break
    else:
        for _ in range(reps):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
            if time.perf_counter() - start > max_seconds and len(times) >= 3:
                break
    return statistics.median(times)


def json_number(v):
    """Non-finite floats as the strings our C# writer uses ("NaN", "Infinity"): valid JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def failed_row(op, shape, device, e):
    nan = float("nan")
    return {"op": op, "shape": shape, "device": device, "median_ms": nan, "gbps": nan, "gflops": nan,
            "baseline": "none", "baseline_ms": nan, "ratio": nan, "note": f"error: {type(e).__name__}: {e}"[:300]}


def write_rows(path, rows):
    """Rewrites the JSON file atomically (called after every row: a killed run keeps its rows)."""
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        # Non-finite numbers as the strings our C# writer uses ("NaN"), which keeps the file valid JSON.
        json.dump([{k: json_number(v) for k, v in r.items()} for r in rows], f, indent=2)
    os.replace(tmp, path)


def copy_baseline(nbytes, dev):
    """A tensor copy moving nbytes in total (half read, half written), like our d2d-copy."""
    n = max(1, int(nbytes / 8))
    src, dst = torch.zeros(n, device=dev), torch.empty(n, device=dev)
    return lambda: dst.copy_(src)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--ops", help="comma-separated op names (default: all): " + ", ".join(OPS))
    ap.add_argument("--quick", action="store_true", help="smaller sizes, as `kernels --quick`")
    ap.add_argument("--json", help="write the rows to this path")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per case (median reported)")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in matmul and cuDNN (PyTorch's default for convolutions); rows noted 'tf32'")
    ap.add_argument("--export-onnx", metavar="DIR",
                    help="write DIR/ddpmpp-tiny-16.onnx and -32.onnx (the tiny network's D(x; sigma), batch 64) and exit")
    args = ap.parse_args(argv)
    if args.export_onnx:
        return export_onnx(args.export_onnx)

    ops = list(OPS) if not args.ops else [o.strip() for o in args.ops.split(",") if o.strip()]
    skipped = [o for o in ops if o in OURS_ONLY]
    if skipped:
        print(f"skipped (ours only, no PyTorch counterpart): {', '.join(skipped)}")
        ops = [o for o in ops if o not in OURS_ONLY]
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        print(f"error: unknown op '{','.join(unknown)}' in --ops; allowed: {', '.join(OPS)}", file=sys.stderr)
        return 2
    if args.reps < 1:
        print(f"error: --reps must be >= 1, got {args.reps}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)

    dev = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    # float32 everywhere unless --tf32: no TF32 shortcuts in matmul or cuDNN; cuDNN picks its fastest algorithms.
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__} on {name}{' (TF32 on)' if args.tf32 else ''}; ratio = time / torch-copy time")
    print(f"{'op':<18} {'shape':<28} {'ms':>9} {'GB/s':>8} {'GFLOP/s':>8} | {'copy ms':>9} | {'ratio':>6}")
    rows = []
    failed = 0
    device_name = "cuda:0" if dev.type == "cuda" else "cpu"
    for op in ops:
        try:
            cases = iter(OPS[op](op, dev, args.quick))
            while True:
                try:
                    case = next(cases)
                except StopIteration:
                    break
                note = ", ".join(x for x in (case.note, "tf32" if args.tf32 else None) if x) or None
                try:
                    with torch.enable_grad() if case.grad else torch.no_grad():
                        ms = median_ms(case.run, dev, args.reps)
                    bms = median_ms(copy_baseline(case.bytes, dev), dev, args.reps) if case.copy else float("nan")
                    row = {
                        "op": case.op, "shape": case.shape, "device": device_name,
                        "median_ms": ms, "gbps": case.bytes / 1e6 / ms, "gflops": case.flops / 1e6 / ms,
                        "baseline": "torch-copy" if case.copy else "none", "baseline_ms": bms, "ratio": ms / bms,
                        "note": note,
                    }
                    print(f"{row['op']:<18} {row['shape']:<28} {ms:9.3f} {row['gbps']:8.1f} {row['gflops']:8.1f} | {bms:9.3f} | "
                          f"{row['ratio']:6.2f}{'  ' + note if note else ''}", flush=True)
                except Exception as e:  # recorded, not fatal: the next rows still run
                    failed += 1
                    row = failed_row(case.op, case.shape, device_name, e)
                    print(f"{case.op:<18} {case.shape:<28} FAILED: {row['note']}", flush=True)
                rows.append(row)
                write_rows(args.json, rows)
                del case
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
        except Exception as e:  # building the op's cases failed
            failed += 1
            rows.append(failed_row(op, "-", device_name, e))
            print(f"{op:<18} {'-':<28} FAILED: {rows[-1]['note']}", flush=True)
            write_rows(args.json, rows)
    if failed:
        print(f"{failed} case(s) failed (recorded in the rows' notes)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
