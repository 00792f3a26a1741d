#!/usr/bin/env python3
"""Makes the interop test fixtures in Edm.Tests/Fixtures/interop: tiny NVlabs/edm network snapshots
(.pkl, written the way edm's training loop writes them), the denoiser output expected from each for
fixed inputs (<name>.io.safetensors), PyTorch .pth files (zip, checkpoint dict, legacy, whole module)
and a set of bad inputs that a reader must refuse.

Regenerate (from the repository root) with:

    python3 scripts/make-interop-fixtures.py --edm /path/to/edm-checkout --out Edm.Tests/Fixtures/interop

--edm is a checkout of https://github.com/NVlabs/edm. Its modules are imported from there at run time;
none of its code is part of this script. Before anything is pickled, the module source that edm's
persistence mechanism embeds in every snapshot is replaced by a one-line placeholder, so the fixtures
hold no NVlabs/edm source. (To load one of them back with edm itself, register a
torch_utils.persistence.import_hook that puts the real module source back; the self-check at the end
of this script does exactly that.)

Everything is float32 on the CPU and the seeds are fixed, so repeated runs give the same tensors and
values. The zip .pth files come out byte-identical; the .pkl files and the legacy .pth do not, because
PyTorch's legacy format names each storage by its memory address (the keys, and in the legacy .pth the
order of the storages, change from run to run). Made with PyTorch 1.13 (Debian python3-torch).
"""

import argparse
import collections
import contextlib
import copy
import inspect
import io
import json
import os
import pickle
import struct
import sys
import zipfile

PLACEHOLDER_SRC = "# module source omitted from this test fixture\n"

# Strings that would betray embedded edm source text (checked in every file written).
FORBIDDEN = [b'def forward', b'Copyright', b'persistent_class', b'import torch', b'NVIDIA',
             b'Creative Commons', b'super().__init__', b'def __init__', b'silu(']

IMG_RES = 8
IMG_CH = 1
SIGMAS = [0.3, 7.0]  # inside sigma_min..sigma_max of all four preconditioners

ARCHS = {
    # DDPM++ as in edm's train.py --arch=ddpmpp, shrunk.
    'ddpmpp': dict(model_type='SongUNet', embedding_type='positional', encoder_type='standard',
                   decoder_type='standard', channel_mult_noise=1, resample_filter=[1, 1],
                   model_channels=8, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4]),
    # NCSN++ as in edm's train.py --arch=ncsnpp, shrunk.
    'ncsnpp': dict(model_type='SongUNet', embedding_type='fourier', encoder_type='residual',
                   decoder_type='standard', channel_mult_noise=2, resample_filter=[1, 3, 3, 1],
                   model_channels=8, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4]),
    # ADM: attention has 64 channels per head (hard-coded), so >= 64 channels; num_blocks is set per fixture.
    'adm': dict(model_type='DhariwalUNet', model_channels=64, channel_mult=[1], channel_mult_emb=1,
                attn_resolutions=[]),
}

PRECONDS = {
    'edm': ('training.networks.EDMPrecond', 'training.loss.EDMLoss', dict(sigma_data=0.5)),
    'vp': ('training.networks.VPPrecond', 'training.loss.VPLoss', dict()),
    've': ('training.networks.VEPrecond', 'training.loss.VELoss', dict()),
    'iddpm': ('training.networks.iDDPMPrecond', 'training.loss.EDMLoss', dict()),
}

# name, arch, precond, label_dim, augment_dim, extra model kwargs, seed
FIXTURES = [
    ('ddpmpp-edm', 'ddpmpp', 'edm', 3, 0, {}, 101),
    ('ddpmpp-vp', 'ddpmpp', 'vp', 0, 0, {}, 102),
    ('ddpmpp-ve', 'ddpmpp', 've', 0, 0, {}, 103),
    ('ddpmpp-iddpm', 'ddpmpp', 'iddpm', 0, 0, {}, 104),
    ('ncsnpp-edm', 'ncsnpp', 'edm', 0, 9, {}, 105),
    ('adm-edm', 'adm', 'edm', 0, 0, dict(num_blocks=0), 106),
    ('adm-vp', 'adm', 'vp', 0, 0, dict(num_blocks=0), 107),
    ('adm-ve', 'adm', 've', 0, 0, dict(num_blocks=0), 108),
    ('adm-iddpm', 'adm', 'iddpm', 0, 0, dict(num_blocks=0), 109),
]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--edm', required=True, help='path to a checkout of NVlabs/edm (put on sys.path)')
    ap.add_argument('--out', required=True, help='output folder, e.g. Edm.Tests/Fixtures/interop')
    ap.add_argument('--no-check', action='store_true', help='skip reloading the fixtures afterwards')
    return ap.parse_args()


# ---------------------------------------------------------------------------------------------------
# safetensors, written by hand

def write_safetensors(path, tensors):
    """tensors: list of (name, float32 torch tensor). Little-endian F32, packed back to back."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors:
        t = t.detach().to('cpu').contiguous()
        assert t.dtype == torch.float32, name
        data = t.numpy().astype('<f4').tobytes()
        header[name] = dict(dtype='F32', shape=list(t.shape), data_offsets=[offset, offset + len(data)])
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hjson += b' ' * ((-len(hjson)) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(info['shape'])
    return out


# ---------------------------------------------------------------------------------------------------
# edm objects

def persistent_classes(*roots):
    """Decorated (persistent) classes reachable from the given objects, plus all in edm's modules."""
    found = []

    def add(cls):
        if persistence.is_persistent(cls) and cls not in found:
            found.append(cls)

    for root in roots:
        if isinstance(root, torch.nn.Module):
            for m in root.modules():
                add(type(m))
        elif root is not None:
            add(type(root))
    for mod in (training.networks, training.loss):
        for value in vars(mod).values():
            if isinstance(value, type):
                add(value)
    return found


@contextlib.contextmanager
def placeholder_source(*roots):
    """While active, every persistent class reachable from roots embeds PLACEHOLDER_SRC instead of
    edm's module source when pickled. (Restored afterwards: copy.deepcopy of a persistent object goes
    through the same reduce/reconstruct path and needs the real source.)"""
    saved = []
    for cls in persistent_classes(*roots):
        assert hasattr(cls, '_orig_module_src') and hasattr(cls, '_orig_class_name')
        saved.append((cls, cls.__dict__.get('_orig_module_src')))
        cls._orig_module_src = PLACEHOLDER_SRC
    try:
        yield
    finally:
        for cls, src in saved:
            cls._orig_module_src = src


def build(arch, precond, label_dim, augment_dim, extra, seed):
    net_class, loss_class, precond_kwargs = PRECONDS[precond]
    # Keyword order as in edm's train.py: architecture, (augment_dim), dropout/use_fp16, preconditioner,
    # then the interface kwargs the training loop adds.
    network_kwargs = dict(ARCHS[arch])
    network_kwargs.update(extra)
    if augment_dim:
        network_kwargs['augment_dim'] = augment_dim
    network_kwargs.update(dropout=0.0, use_fp16=False)
    network_kwargs.update(precond_kwargs)
    interface_kwargs = dict(img_resolution=IMG_RES, img_channels=IMG_CH, label_dim=label_dim)

    torch.manual_seed(seed)
    net = dnnlib.util.construct_class_by_name(class_name=net_class, **network_kwargs, **interface_kwargs)
    net.train().requires_grad_(True)
    # Random weights everywhere: zero-initialised layers become non-zero. Buffers stay as built.
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    loss_fn = dnnlib.util.construct_class_by_name(class_name=loss_class)
    # What the training loop pickles: a deep copy of the EMA network in eval mode without grads.
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    return ema, loss_fn


def snapshot_dict(ema, loss_fn, label_dim):
    dataset_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path='fixture.zip',
                          use_labels=label_dim > 0, xflip=False, cache=True, resolution=IMG_RES, max_size=100)
    data = dict(ema=ema, loss_fn=loss_fn, augment_pipe=None, dataset_kwargs=dict(dataset_kwargs))
    for key, value in data.items():
        if isinstance(value, torch.nn.Module):
            data[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
    return data


def write_pickle(path, data):
    roots = data.values() if isinstance(data, dict) else [data]
    with placeholder_source(*roots), open(path, 'wb') as f:
        pickle.dump(data, f)


def make_inputs(net, label_dim, augment_dim, seed):
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn([2, IMG_CH, IMG_RES, IMG_RES], generator=g, dtype=torch.float32)
    sigma = torch.tensor(SIGMAS, dtype=torch.float32)
    assert float(net.sigma_min) < min(SIGMAS) and max(SIGMAS) < float(net.sigma_max)
    tensors = [('x', x), ('sigma', sigma)]
    class_labels = None
    kwargs = {}
    if label_dim:
        class_labels = torch.zeros([2, label_dim], dtype=torch.float32)
        class_labels[0, 0] = 1
        class_labels[1, label_dim - 1] = 1
        tensors.append(('class_labels', class_labels))
    if augment_dim:
        aug = torch.randn([2, augment_dim], generator=g, dtype=torch.float32) * 0.1
        kwargs['augment_labels'] = aug
        tensors.append(('augment_labels', aug))
    return tensors, x, sigma, class_labels, kwargs


def param_count(net):
    return sum(p.numel() for p in net.parameters())


def buffer_count(net):
    return sum(b.numel() for b in net.buffers())


# ---------------------------------------------------------------------------------------------------
# bad inputs

class _RunsShell:
    def __reduce__(self):
        return (os.system, ('echo should-not-run',))


class _Evaluates:
    def __reduce__(self):
        return (eval, ("print('should-not-run')",))


# ---------------------------------------------------------------------------------------------------

def main():
    args = parse_args()
    global torch, dnnlib, persistence, training
    sys.path.insert(0, os.path.abspath(args.edm))
    import torch
    import dnnlib
    from torch_utils import persistence
    import training.networks
    import training.loss

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = args.out
    os.makedirs(out, exist_ok=True)
    written = []

    nets = {}
    for name, arch, precond, label_dim, augment_dim, extra, seed in FIXTURES:
        ema, loss_fn = build(arch, precond, label_dim, augment_dim, extra, seed)
        data = snapshot_dict(ema, loss_fn, label_dim)
        net = data['ema']
        path = os.path.join(out, f'{name}.pkl')
        write_pickle(path, data)
        written.append(path)

        tensors, x, sigma, class_labels, kwargs = make_inputs(net, label_dim, augment_dim, seed)
        with torch.no_grad():
            D = net(x, sigma, class_labels, **kwargs)
            tensors.append(('D', D))
            if label_dim:
                tensors.append(('D_nolabels', net(x, sigma, None, **kwargs)))
        iopath = os.path.join(out, f'{name}.io.safetensors')
        write_safetensors(iopath, tensors)
        written.append(iopath)
        nets[name] = net
        print(f'{name}: {type(net).__name__}/{type(net.model).__name__} params={param_count(net)} '
              f'buffers={buffer_count(net)} |D|max={D.abs().max().item():.4f}')
        print(f'  _init_kwargs = {net._init_kwargs!r}')
        if precond == 'iddpm':
            idx = net.round_sigma(sigma, return_index=True)
            print(f'  iDDPM sigma indices = {idx.tolist()} (c_noise = M-1-index)')

    # ---- .pth files from the DDPM++ EDM network -------------------------------------------------
    src = nets['ddpmpp-edm']
    sd = src.state_dict()
    p = os.path.join(out, 'ddpmpp-edm-state.pth'); torch.save(sd, p); written.append(p)
    p = os.path.join(out, 'ddpmpp-edm-kdiff.pth'); torch.save({'model_ema': sd, 'step': 10}, p); written.append(p)
    p = os.path.join(out, 'ddpmpp-edm-legacy.pth')
    torch.save(sd, p, _use_new_zipfile_serialization=False); written.append(p)
    p = os.path.join(out, 'ddpmpp-edm-module.pth')
    with placeholder_source(src):
        torch.save(src, p)
    written.append(p)

    # ---- bad inputs ------------------------------------------------------------------------------
    p = os.path.join(out, 'bad-global.pkl'); write_pickle(p, _RunsShell()); written.append(p)
    p = os.path.join(out, 'bad-global-in-pth.pth')
    torch.save(collections.OrderedDict([('model.x', torch.zeros(2)), ('payload', _Evaluates())]), p)
    written.append(p)
    with open(os.path.join(out, 'ddpmpp-edm-state.pth'), 'rb') as f:
        raw = f.read()
    p = os.path.join(out, 'truncated.pth')
    with open(p, 'wb') as f:
        f.write(raw[:len(raw) // 2])
    written.append(p)
    first_conv = 'model.enc.8x8_conv.weight'
    assert first_conv in sd and tuple(sd[first_conv].shape) == (8, 1, 3, 3)
    bad = collections.OrderedDict((k, v.clone()) for k, v in sd.items())
    g = torch.Generator().manual_seed(7)
    bad[first_conv] = torch.randn([8, 2, 3, 3], generator=g)
    bad._metadata = sd._metadata
    p = os.path.join(out, 'wrong-shape.pth'); torch.save(bad, p); written.append(p)
    bad = collections.OrderedDict((k, v) for k, v in sd.items() if k != 'model.map_layer0.weight')
    assert len(bad) == len(sd) - 1
    bad._metadata = sd._metadata
    p = os.path.join(out, 'missing-tensor.pth'); torch.save(bad, p); written.append(p)
    bad = collections.OrderedDict(sd)
    bad._metadata = sd._metadata
    bad['model.bogus.weight'] = torch.randn([4], generator=g)
    p = os.path.join(out, 'extra-tensor.pth'); torch.save(bad, p); written.append(p)

    # unknown-class.pkl: the preconditioner's class name is not one of edm's.
    ema, loss_fn = build('ddpmpp', 'edm', 0, 0, {}, 201)
    data = snapshot_dict(ema, loss_fn, 0)
    cls = type(ema)
    saved_name = cls._orig_class_name
    cls._orig_class_name = 'MyCustomPrecond'
    try:
        p = os.path.join(out, 'unknown-class.pkl'); write_pickle(p, data); written.append(p)
    finally:
        cls._orig_class_name = saved_name

    # unsupported-kwargs.pkl: the preconditioner was (supposedly) built with an option edm does not have.
    ema, loss_fn = build('ddpmpp', 'edm', 0, 0, {}, 202)
    data = snapshot_dict(ema, loss_fn, 0)
    data['ema']._init_kwargs['my_new_option'] = 1
    p = os.path.join(out, 'unsupported-kwargs.pkl'); write_pickle(p, data); written.append(p)

    # ---- no edm source in any fixture --------------------------------------------------------------
    bad_hits = []
    for path in written:
        with open(path, 'rb') as f:
            blob = f.read()
        for s in FORBIDDEN:
            if s in blob:
                bad_hits.append((path, s))
        # Zip entries are stored uncompressed by torch.save, but check inside them anyway.
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for n in z.namelist():
                    b = z.read(n)
                    bad_hits += [(f'{path}:{n}', s) for s in FORBIDDEN if s in b]
    print(f'source check: {len(written)} files scanned for {[s.decode() for s in FORBIDDEN]}: '
          + ('CLEAN' if not bad_hits else f'FOUND {bad_hits}'))
    if bad_hits:
        sys.exit(1)

    if not args.no_check:
        self_check(out, nets)
    total = 0
    for path in sorted(written):
        size = os.path.getsize(path)
        total += size
        print(f'{size:>9}  {os.path.basename(path)}')
    print(f'{total:>9}  total')


def self_check(out, nets):
    """Reload every good fixture with edm (real module source put back by an import hook) and compare."""
    real_src = {}
    for mod in (training.networks, training.loss):
        for k, v in vars(mod).items():
            if isinstance(v, type) and persistence.is_persistent(v):
                real_src[k] = inspect.getsource(mod)

    def hook(meta):
        if meta.module_src == PLACEHOLDER_SRC:
            meta.module_src = real_src[meta.class_name]
        return meta
    persistence.import_hook(hook)

    for name, arch, precond, label_dim, augment_dim, extra, seed in FIXTURES:
        with open(os.path.join(out, f'{name}.pkl'), 'rb') as f:
            data = pickle.load(f)
        net = data['ema']
        io_ = read_safetensors(os.path.join(out, f'{name}.io.safetensors'))
        kwargs = {'augment_labels': io_['augment_labels']} if 'augment_labels' in io_ else {}
        with torch.no_grad():
            D = net(io_['x'], io_['sigma'], io_.get('class_labels'), **kwargs)
            assert torch.equal(D, io_['D']), name
            if 'D_nolabels' in io_:
                assert torch.equal(net(io_['x'], io_['sigma'], None, **kwargs), io_['D_nolabels']), name
        assert not net.training and not any(p.requires_grad for p in net.parameters())
    sd = nets['ddpmpp-edm'].state_dict()
    for fn in ['ddpmpp-edm-state.pth', 'ddpmpp-edm-legacy.pth']:
        got = torch.load(os.path.join(out, fn))
        assert list(got) == list(sd) and all(torch.equal(got[k], sd[k]) for k in sd), fn
    got = torch.load(os.path.join(out, 'ddpmpp-edm-kdiff.pth'))
    assert got['step'] == 10 and all(torch.equal(got['model_ema'][k], sd[k]) for k in sd)
    got = torch.load(os.path.join(out, 'ddpmpp-edm-module.pth'))
    assert all(torch.equal(got.state_dict()[k], sd[k]) for k in sd)
    print('self check: all snapshots reproduce D bit-exactly; .pth files reload')


if __name__ == '__main__':
    main()
