#!/usr/bin/env python3
"""Parity fixture for the FID Inception-v3 (Edm.Model/Metrics/InceptionV3.cs) from PyTorch.

Builds the FID Inception-v3 feature network in plain torch.nn (this file's own code, written from
the architecture that pytorch-fid's inception.py and torchvision's Inception3 describe: BasicConv2d =
conv without bias + BatchNorm2d(eps=0.001) + ReLU; FID blocks A, C, E_1 average-pool without counting
the padding, E_2 max-pools; the input is resized to 299x299 bilinearly with align_corners=False and
mapped from [0, 1] to [-1, 1]), with seeded random weights, every channel count divided by
--width-divisor. The batch-norm running statistics are set from a calibration batch (one forward in
training mode with momentum 1), and the affine parameters perturbed, so that activations stay O(1)
through the 48 units and no batch norm is the identity.

Writes to --out:
  weights.safetensors  the state dict under PyTorch's names (Conv2d_1a_3x3.conv.weight,
                       Mixed_5b.branch_pool.bn.running_var, ...), float32; num_batches_tracked
                       dropped (int64, which the engine's reader refuses); plus an unused fc.weight
                       and fc.bias, as a converted pt_inception state dict has them
  io.safetensors       "input" (B, 3, S, S) in [0, 1], "block0".."block2" (the stage outputs) and
                       "features" (B, 2048 / d), the pool3 features, computed in float32; and the
                       same four computed in float64 from the same float32 weights and input
                       ("block0_f64", ..., "features_f64", stored as float32), which measure how much
                       float32 rounding itself moves each output (the test's yardstick)
Usage (repository root):
  python3 scripts/inception_parity.py --out Edm.Tests/Fixtures/inception            # d = 16, committed
  python3 scripts/inception_parity.py --width-divisor 1 --out /tmp/inception-full   # the real width
  EDM_INCEPTION_FIXTURE=/tmp/inception-full dotnet test -c Release --filter InceptionV3Tests

Converting real weights: `--convert pt_inception-2015-12-05-6726825d.pth --out DIR` writes
DIR/pt_inception.safetensors from pytorch-fid's released state dict (float32, num_batches_tracked
dropped), for `fid ref|calc --features inception:DIR/pt_inception.safetensors`.
"""

import argparse
import copy
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg3(x):
    # TensorFlow-style: the padded zeros are not counted.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    def __init__(self, cin, pool, d):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64 // d, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48 // d, 1)
        self.branch5x5_2 = BasicConv2d(48 // d, 64 // d, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // d, 1)
        self.branch3x3dbl_2 = BasicConv2d(64 // d, 96 // d, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // d, 96 // d, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool, 1)
        self.out = (64 + 64 + 96) // d + pool

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        e = self.branch_pool(avg3(x))
        return torch.cat([a, b, c, e], 1)


class BlockB(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384 // d, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // d, 1)
        self.branch3x3dbl_2 = BasicConv2d(64 // d, 96 // d, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // d, 96 // d, 3, stride=2)
        self.out = (384 + 96) // d + cin

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockC(nn.Module):
    def __init__(self, cin, c7, d):
        super().__init__()
        o = 192 // d
        self.branch1x1 = BasicConv2d(cin, o, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, o, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, o, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, o, 1)
        self.out = 4 * o

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = x
        for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = m(c)
        e = self.branch_pool(avg3(x))
        return torch.cat([a, b, c, e], 1)


class BlockD(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192 // d, 1)
        self.branch3x3_2 = BasicConv2d(192 // d, 320 // d, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192 // d, 1)
        self.branch7x7x3_2 = BasicConv2d(192 // d, 192 // d, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192 // d, 192 // d, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192 // d, 192 // d, 3, stride=2)
        self.out = (320 + 192) // d + cin

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockE(nn.Module):
    def __init__(self, cin, max_pool, d):
        super().__init__()
        c = 384 // d
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320 // d, 1)
        self.branch3x3_1 = BasicConv2d(cin, c, 1)
        self.branch3x3_2a = BasicConv2d(c, c, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(c, c, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448 // d, 1)
        self.branch3x3dbl_2 = BasicConv2d(448 // d, c, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(c, c, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(c, c, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192 // d, 1)
        self.out = (320 + 4 * 384 + 192) // d

    def forward(self, x):
        a = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
        u = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(u), self.branch3x3dbl_3b(u)], 1)
        p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else avg3(x)
        return torch.cat([a, b, c, self.branch_pool(p)], 1)


class FidInception(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32 // d, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32 // d, 32 // d, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32 // d, 64 // d, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64 // d, 80 // d, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80 // d, 192 // d, 3)
        self.Mixed_5b = BlockA(192 // d, 32 // d, d)
        self.Mixed_5c = BlockA(self.Mixed_5b.out, 64 // d, d)
        self.Mixed_5d = BlockA(self.Mixed_5c.out, 64 // d, d)
        self.Mixed_6a = BlockB(self.Mixed_5d.out, d)
        self.Mixed_6b = BlockC(self.Mixed_6a.out, 128 // d, d)
        self.Mixed_6c = BlockC(self.Mixed_6b.out, 160 // d, d)
        self.Mixed_6d = BlockC(self.Mixed_6c.out, 160 // d, d)
        self.Mixed_6e = BlockC(self.Mixed_6d.out, 192 // d, d)
        self.Mixed_7a = BlockD(self.Mixed_6e.out, d)
        self.Mixed_7b = BlockE(self.Mixed_7a.out, False, d)
        self.Mixed_7c = BlockE(self.Mixed_7b.out, True, d)

    def forward(self, images):
        """images (B, 3, H, W) in [0, 1] -> (block0, block1, block2, features (B, 2048 / d))."""
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        b0 = F.max_pool2d(x, kernel_size=3, stride=2)
        b1 = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(b0)), kernel_size=3, stride=2)
        x = b1
        for m in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = m(x)
        b2 = x
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        features = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return b0, b1, b2, features


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer (float32 only): 8-byte header length, JSON header, raw data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return os.path.getsize(path)


def state_dict_f32(sd):
    return {k: v.float() for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--width-divisor", type=int, default=16, choices=[1, 2, 4, 8, 16])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=32, help="input resolution before the resize to 299")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--convert", metavar="PTH", help="convert pytorch-fid's pt_inception .pth instead")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    if a.convert:
        sd = torch.load(a.convert, map_location="cpu")
        n = write_safetensors(os.path.join(a.out, "pt_inception.safetensors"), state_dict_f32(sd), {"source": os.path.basename(a.convert)})
        print(f"wrote {a.out}/pt_inception.safetensors ({n} bytes, {len(sd)} tensors in the .pth)")
        return 0

    torch.manual_seed(a.seed)
    d = a.width_divisor
    net = FidInception(d)
    calib = torch.rand(4, 3, a.size, a.size)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0           # running statistics := this batch's
        net.train()
        net(calib)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
        net.eval()
        images = torch.rand(a.batch, 3, a.size, a.size)
        b0, b1, b2, features = net(images)
        exact = [t.float() for t in copy.deepcopy(net).double()(images.double())]

    sd = state_dict_f32(net.state_dict())
    sd["fc.weight"] = torch.randn(10, 2048 // d)   # unused by the feature network, as in a converted pt_inception file
    sd["fc.bias"] = torch.randn(10)
    n1 = write_safetensors(os.path.join(a.out, "weights.safetensors"), sd, {"width_divisor": str(d), "seed": str(a.seed)})
    n2 = write_safetensors(os.path.join(a.out, "io.safetensors"),
                           {"input": images, "block0": b0, "block1": b1, "block2": b2, "features": features,
                            "block0_f64": exact[0], "block1_f64": exact[1], "block2_f64": exact[2], "features_f64": exact[3]})
    for name, t32, t64 in zip(["block0", "block1", "block2", "features"], [b0, b1, b2, features], exact):
        print(f"  {name}: max |float32 - float64| = {(t32 - t64).abs().max().item():.3e}, max |float64| = {t64.abs().max().item():.3f}")
    params = sum(v.numel() for k, v in sd.items() if not k.startswith("fc."))
    print(f"width divisor {d}: {params} tensors' values, features {tuple(features.shape)}, "
          f"mean {features.mean().item():.4f}, std {features.std().item():.4f}")
    print(f"wrote {a.out}/weights.safetensors ({n1} bytes), {a.out}/io.safetensors ({n2} bytes); torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
