#!/usr/bin/env python3
"""Box-filters a dataset zip of 8-bit PNGs by 2x2, the way `train --resolution` sees it, and writes
the result as a dataset zip of the same layout (same file names, dataset.json kept).

Each output pixel is the mean of a 2x2 block in [-1, 1], saved to 8 bits as the engine saves images
(b = floor(clip(x * 127.5 + 128, 0, 255))); for byte inputs that is floor(mean(b) + 1/2), computed
here in integers. The FID reference of the 16x16 MNIST model is made from this zip (docs/metrics.md).

    /usr/bin/python3 scripts/mnist-16-box.py out/mnist-32.zip out/mnist-16-box.zip

Needs numpy and Pillow (Debian: python3-numpy, python3-pil).
"""

import io
import os
import sys
import zipfile

import numpy as np
from PIL import Image


def main(src, dest):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest + ".tmp", "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.lower().endswith(".png"):
                img = np.asarray(Image.open(io.BytesIO(data)), dtype=np.int32)  # (H, W) or (H, W, C)
                h, w = img.shape[:2]
                if h % 2 or w % 2:
                    sys.exit(f"error: {info.filename} is {w}x{h}; the 2x2 box filter needs even sizes")
                blocks = img.reshape(h // 2, 2, w // 2, 2, *img.shape[2:]).sum(axis=(1, 3))
                out = ((blocks + 2) // 4).astype(np.uint8)  # floor(sum / 4 + 1/2)
                buf = io.BytesIO()
                Image.fromarray(out).save(buf, format="PNG")
                data = buf.getvalue()
            zout.writestr(info.filename, data)
    os.replace(dest + ".tmp", dest)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: mnist-16-box.py SRC_ZIP DEST_ZIP")
    main(sys.argv[1], sys.argv[2])
