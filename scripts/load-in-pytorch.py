#!/usr/bin/env python3
"""Loads one of our network snapshots (*.safetensors written by `train`) into NVlabs/edm's own PyTorch
networks and runs the denoiser once on fixed inputs.

    python3 scripts/load-in-pytorch.py --edm /path/to/edm-checkout --network models/mnist16-ddpmpp-tiny.safetensors \\
        [--out expected.io.safetensors] [--seed 0]

--edm is a checkout of https://github.com/NVlabs/edm; its modules are imported from there at run time
and none of its code is part of this script. Our snapshots use edm's parameter names, so the tensors go
into `net.model` with load_state_dict(strict=False). The only keys allowed to be missing are the
`resample_filter` buffers of up/down-sampling layers: edm computes them from the `resample_filter`
option when it builds the network, and our snapshots do not store them. Anything unexpected, any other
missing key or any shape mismatch is an error.

The file is read by hand (u64 little-endian header length, JSON header with dtype/shape/data_offsets
and "__metadata__", then raw little-endian float32 data), so the `safetensors` package is not needed.
(With it installed, `safetensors.torch.load_file(path)` gives the same tensors, and
`safetensors.safe_open(path, 'pt').metadata()` the metadata.)

The metadata (preset, resolution, channels, label_dim, augment_dim, dropout, label_dropout, precond,
sigma_data) picks edm's preconditioner class and its model keyword arguments. Supported presets:
ddpmpp-tiny, ncsnpp-tiny, ddpmpp-cifar10, ncsnpp-cifar10, adm-imagenet64.

Inputs, drawn with a fixed seed: x (4, C, R, R) ~ N(0, 1), sigma = [0.002, 0.3, 2.0, 80.0]; for a
class-conditional network class_labels one-hot with classes 0, 1, 2, 3 (mod label_dim); with
augment_dim > 0, augment_labels all zero. The preconditioner runs in eval mode under torch.no_grad().
With --out, x, sigma, the labels used and D = net(x, sigma, ...) are written as float32 to a
hand-written safetensors file (tensors packed back to back, header padded with spaces to 8 bytes),
which is then read back and compared bit for bit.
"""

import argparse
import json
import os
import struct
import sys

import torch

SNAPSHOT_FORMAT = 'edm-kernels-network-snapshot/1'
SIGMAS = [0.002, 0.3, 2.0, 80.0]
BATCH = len(SIGMAS)

# Our preset -> (edm model_type, edm model kwargs, the preset's dropout, attention at half the resolution).
_DDPMPP = dict(embedding_type='positional', encoder_type='standard', decoder_type='standard',
               channel_mult_noise=1, resample_filter=[1, 1])
_NCSNPP = dict(embedding_type='fourier', encoder_type='residual', decoder_type='standard',
               channel_mult_noise=2, resample_filter=[1, 3, 3, 1])
_CIFAR = dict(model_channels=128, channel_mult=[2, 2, 2], channel_mult_emb=4, num_blocks=4, attn_resolutions=[16])
_TINY = dict(model_channels=16, channel_mult=[1, 2], channel_mult_emb=4, num_blocks=1)
PRESETS = {
    'ddpmpp-cifar10': ('SongUNet', dict(_DDPMPP, **_CIFAR), 0.13, False),
    'ncsnpp-cifar10': ('SongUNet', dict(_NCSNPP, **_CIFAR), 0.13, False),
    'adm-imagenet64': ('DhariwalUNet', dict(model_channels=192, channel_mult=[1, 2, 3, 4], channel_mult_emb=4,
                                            num_blocks=3, attn_resolutions=[32, 16, 8]), 0.10, False),
    'ddpmpp-tiny': ('SongUNet', dict(_DDPMPP, **_TINY), 0.0, True),
    'ncsnpp-tiny': ('SongUNet', dict(_NCSNPP, **_TINY), 0.0, True),
}
REFUSED = {
    'adm-tiny': 'it uses 16 channels per attention head, and edm\'s DhariwalUNet always uses 64',
    'image-v1': 'it is k-diffusion\'s image_v1 architecture, which edm does not have',
    'image-v1-tiny': 'it is k-diffusion\'s image_v1 architecture, which edm does not have',
}
PRECONDS = {'edm': 'EDMPrecond', 'vp': 'VPPrecond', 've': 'VEPrecond', 'iddpm': 'iDDPMPrecond'}


def fail(msg):
    sys.exit(f'load-in-pytorch: {msg}')


# ---------------------------------------------------------------------------------------------------
# safetensors by hand (float32 only, like our writer)

def read_safetensors(path):
    """Returns ({name: float32 tensor} in header order, {metadata key: value})."""
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        fail(f"'{path}' is {len(raw)} bytes, too short for a safetensors file")
    (n,) = struct.unpack('<Q', raw[:8])
    if n > len(raw) - 8:
        fail(f"'{path}': header length {n} runs past the end of the file (truncated?)")
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    data = memoryview(raw)[8 + n:]
    meta = header.pop('__metadata__', {}) or {}
    tensors = {}
    for name, info in header.items():
        if info['dtype'] != 'F32':
            fail(f"'{path}': tensor '{name}' has dtype {info['dtype']}; only F32 is supported")
        begin, end = info['data_offsets']
        count = 1
        for d in info['shape']:
            count *= d
        if end - begin != 4 * count or end > len(data):
            fail(f"'{path}': tensor '{name}' data_offsets [{begin}, {end}) do not fit shape {info['shape']} or the file")
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32) if count else torch.zeros(0)
        if sys.byteorder != 'little':
            t = t.view(torch.uint8).reshape(-1, 4).flip(1).reshape(-1).view(torch.float32)
        tensors[name] = t.reshape(info['shape'])
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, tensor), written as little-endian F32 back to back."""
    header = {}
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().to('cpu', torch.float32).contiguous()
        data = t.numpy().astype('<f4').tobytes()
        header[name] = dict(dtype='F32', shape=list(t.shape), data_offsets=[offset, offset + len(data)])
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hjson += b' ' * ((-len(hjson)) % 8)  # 8 + len(hjson) is then a multiple of 8
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------

def build_net(networks, meta, path):
    def get(key):
        if key not in meta:
            fail(f"'{path}' has no '{key}' in its metadata (not a network snapshot written by `train`?)")
        return meta[key]

    fmt = meta.get('format')
    if fmt != SNAPSHOT_FORMAT:
        fail(f"'{path}' is not a network snapshot (metadata format '{fmt}', expected '{SNAPSHOT_FORMAT}'); "
             "give a network-snapshot-*.safetensors, not a training state")
    preset = get('preset')
    if preset in REFUSED:
        fail(f"preset '{preset}' cannot be built with NVlabs/edm: {REFUSED[preset]}")
    if preset not in PRESETS:
        fail(f"preset '{preset}' is unknown to this script; supported: {', '.join(PRESETS)}")
    precond = get('precond')
    if precond not in PRECONDS:
        fail(f"precond '{precond}' is unknown; allowed: {', '.join(PRECONDS)}")
    model_type, kwargs, preset_dropout, attn_half = PRESETS[preset]
    res, ch = int(get('resolution')), int(get('channels'))
    label_dim, augment_dim = int(get('label_dim')), int(get('augment_dim'))
    kwargs = dict(kwargs)
    kwargs['dropout'] = preset_dropout if get('dropout') == 'preset' else float(get('dropout'))
    kwargs['label_dropout'] = float(meta.get('label_dropout', '0'))  # older snapshots lack it: none
    kwargs['augment_dim'] = augment_dim
    if attn_half:
        kwargs['attn_resolutions'] = [res // 2]
    precond_kwargs = dict(sigma_data=float(get('sigma_data'))) if precond == 'edm' else {}
    cls = getattr(networks, PRECONDS[precond])
    net = cls(img_resolution=res, img_channels=ch, label_dim=label_dim, use_fp16=False,
              model_type=model_type, **precond_kwargs, **kwargs)
    return net, dict(preset=preset, precond=precond, precond_class=PRECONDS[precond], model_type=model_type,
                     resolution=res, channels=ch, label_dim=label_dim, augment_dim=augment_dim, model_kwargs=kwargs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--edm', required=True, help='path to a checkout of NVlabs/edm (put on sys.path)')
    ap.add_argument('--network', required=True, help='our network snapshot (.safetensors)')
    ap.add_argument('--out', help='write x, sigma, labels and D here (.safetensors)')
    ap.add_argument('--seed', type=int, default=0, help='seed of x (default 0)')
    args = ap.parse_args()

    if not os.path.isfile(os.path.join(args.edm, 'training', 'networks.py')):
        fail(f"--edm '{args.edm}' is not an NVlabs/edm checkout (no training/networks.py)")
    if not os.path.isfile(args.network):
        fail(f"--network '{args.network}' does not exist")
    sys.path.insert(0, os.path.abspath(args.edm))
    from training import networks  # NVlabs/edm, imported from the given checkout

    torch.manual_seed(args.seed)  # edm's initial weights (all overwritten but Fourier freqs, which are loaded too)
    tensors, meta = read_safetensors(args.network)
    net, info = build_net(networks, meta, args.network)
    net.eval().requires_grad_(False)
    print(f"{args.network}: preset {info['preset']}, {info['resolution']}x{info['resolution']}x{info['channels']}, "
          f"label_dim {info['label_dim']}, augment_dim {info['augment_dim']} -> "
          f"{info['precond_class']}(model_type={info['model_type']!r}, ...)")

    try:
        missing, unexpected = net.model.load_state_dict(tensors, strict=False)
    except RuntimeError as e:  # shape mismatches are raised even with strict=False
        hint = (' (iDDPM needs 2 x channels model outputs; our presets build channels outputs)'
                if info['precond'] == 'iddpm' else '')
        fail(f"the snapshot does not fit edm's network{hint}: {e}")
    bad_missing = [k for k in missing if not k.endswith('resample_filter')]
    assert not unexpected, f'unexpected keys (in the snapshot, not in edm\'s network): {unexpected}'
    assert not bad_missing, f'missing keys other than resample_filter buffers: {bad_missing}'
    n_params = sum(p.numel() for p in net.model.parameters())
    print(f'loaded {len(tensors)} tensors into net.model ({n_params:,} parameters); '
          f'unexpected keys: 0; missing keys: {len(missing)}, all resample_filter buffers edm computes itself')

    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(BATCH, info['channels'], info['resolution'], info['resolution'], generator=g)
    sigma = torch.tensor(SIGMAS, dtype=torch.float32)
    inputs = [('x', x), ('sigma', sigma)]
    class_labels, kwargs = None, {}
    if info['label_dim'] > 0:
        class_labels = torch.nn.functional.one_hot(torch.arange(BATCH) % info['label_dim'],
                                                   info['label_dim']).to(torch.float32)
        inputs.append(('class_labels', class_labels))
    if info['augment_dim'] > 0:
        kwargs['augment_labels'] = torch.zeros(BATCH, info['augment_dim'])
        inputs.append(('augment_labels', kwargs['augment_labels']))
    with torch.no_grad():
        D = net(x, sigma, class_labels, **kwargs).to(torch.float32)
    if not torch.isfinite(D).all():
        fail('D has non-finite values')
    per_sigma = ', '.join(f'{s:g}: {D[i].abs().max().item():.6g}' for i, s in enumerate(SIGMAS))
    print(f'max |D| = {D.abs().max().item():.6g} (per sigma {per_sigma}); torch {torch.__version__}, seed {args.seed}')

    if args.out:
        md = dict(made_by='scripts/load-in-pytorch.py', network=os.path.basename(args.network),
                  preset=info['preset'], precond=info['precond'], seed=args.seed, torch=torch.__version__)
        write_safetensors(args.out, inputs + [('D', D)], md)
        back, _ = read_safetensors(args.out)
        for name, t in inputs + [('D', D)]:
            assert torch.equal(back[name], t), f'{args.out}: {name} did not read back bit for bit'
        print(f'wrote {args.out} ({os.path.getsize(args.out):,} bytes): ' +
              ', '.join(f'{n} {list(t.shape)}' for n, t in inputs + [('D', D)]))


if __name__ == '__main__':
    main()
