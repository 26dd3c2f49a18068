#!/usr/bin/env python3
"""Does MediaPipe's hair segmentation tell hats from hair? The study behind the `headwear` row of
photo-wasm/README.md ("The seed's rules: measured"); not part of any check.

python3 hair_headwear_study.py hair_segmentation.tflite LABELLED_DIR SHARED_DIR... > out.txt
Env SIZE (model input side, default 512) and SIDE (crop side in face widths, default 4).
Needs `pip install tflite numpy "opencv-python-headless<5"`. LiteRT lacks the model's custom ops
(MaxPoolingWithArgmax2D, MaxUnpooling2D, Convolution2DTransposeBias), so the graph runs here in
numpy (fp32). The model: the `mediapipe` repository's history, `mediapipe/models/hair_segmentation.tflite`
(780 588 bytes, SHA-256 d2c940c4fd80edeaf38f5d7387d1b4235ee320ed120080df67c663e749e77633,
Apache-2.0); input 512×512 RGB in [0, 1] plus the previous frame's mask (zero for a still photo),
output two logits per pixel (softmax channel 1 = hair).

Per photo: OpenCV's Haar face (largest), a square crop of SIDE face widths around it (the face a
quarter width above the centre), the hair share (probability > 0.5) in a band a quarter of the face
width tall just above the Haar box, over the middle 0.6 face width (`a`), a band above that (`b`).
"""
import glob
import json
import os
import struct
import sys

import cv2
import numpy as np
import tflite
from numpy.lib.stride_tricks import sliding_window_view

OP = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}


def same_pad(n, k, s, d):
    span = (k - 1) * d + 1
    total = max((-(-n // s) - 1) * s + span - n, 0)
    return total // 2, total - total // 2


def conv(x, w, b, stride, same, dil, depthwise):
    kh, kw = w.shape[1], w.shape[2]
    if same:
        x = np.pad(x, (same_pad(x.shape[0], kh, stride, dil), same_pad(x.shape[1], kw, stride, dil), (0, 0)))
    win = sliding_window_view(x, ((kh - 1) * dil + 1, (kw - 1) * dil + 1), axis=(0, 1))
    win = win[::stride, ::stride, :, ::dil, ::dil]
    if depthwise:
        return np.einsum("hwcij,ijc->hwc", win, w[0], optimize=True) + b
    return np.einsum("hwcij,oijc->hwo", win, w, optimize=True) + b


class HairModel:
    def __init__(self, path):
        self.m = m = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
        self.g = g = m.Subgraphs(0)
        self.ops = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = m.OperatorCodes(op.OpcodeIndex())
            b = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = OP[b] if b != tflite.BuiltinOperator.CUSTOM else code.CustomCode().decode()
            opts = None
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                o = tflite.Conv2DOptions() if name == "CONV_2D" else tflite.DepthwiseConv2DOptions()
                raw = op.BuiltinOptions()
                o.Init(raw.Bytes, raw.Pos)
                assert o.FusedActivationFunction() == 0
                opts = (o.StrideH(), o.Padding() == tflite.Padding.SAME, o.DilationHFactor())
            elif b == tflite.BuiltinOperator.CUSTOM:
                opts = bytes(op.CustomOptionsAsNumpy())
            ins = [op.Inputs(j) for j in range(op.InputsLength())]
            outs = [op.Outputs(j) for j in range(op.OutputsLength())]
            self.ops.append((name, ins, outs, opts))

    def const(self, idx):
        t = self.g.Tensors(idx)
        raw = self.m.Buffers(t.Buffer()).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), dtype=np.float32).reshape(t.ShapeAsNumpy())

    def hair(self, rgb01):
        """HxWx3 in [0, 1] (H, W multiples of 32) -> HxW hair probability."""
        v = {self.g.Inputs(0): np.concatenate([rgb01, np.zeros(rgb01.shape[:2] + (1,), np.float32)], -1)}
        for name, ins, outs, opts in self.ops:
            a = v[ins[0]]
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                r = conv(a, self.const(ins[1]), self.const(ins[2]), *opts, name == "DEPTHWISE_CONV_2D")
            elif name == "PRELU":
                r = np.where(a >= 0, a, a * self.const(ins[1]).reshape(-1))
            elif name == "ADD":
                r = a + v[ins[1]]
            elif name == "CONCATENATION":
                r = np.concatenate([v[k] for k in ins], axis=-1)
            elif name == "MaxPoolingWithArgmax2D":  # 2x2, stride 2; first maximum wins
                h, w, c = a.shape
                win = a.reshape(h // 2, 2, w // 2, 2, c).transpose(0, 2, 4, 1, 3).reshape(h // 2, w // 2, c, 4)
                r = win.max(-1)
                v[outs[1]] = win.argmax(-1)
            elif name == "MaxUnpooling2D":
                h, w, c = a.shape
                up = np.zeros((h, w, c, 4), np.float32)
                np.put_along_axis(up, v[ins[1]][..., None], a[..., None], axis=-1)
                r = up.reshape(h, w, c, 2, 2).transpose(0, 3, 1, 4, 2).reshape(2 * h, 2 * w, c)
            elif name == "Convolution2DTransposeBias":  # SAME: the full output's first 2H x 2W
                _, sw, sh = struct.unpack("<3i", opts[:12])
                w = self.const(ins[1])
                co, kh, kw, _ = w.shape
                h, wd, _ = a.shape
                full = np.zeros(((h - 1) * sh + kh, (wd - 1) * sw + kw, co), np.float32)
                paint = np.einsum("hwc,oijc->hwijo", a, w, optimize=True)
                for i in range(kh):
                    for j in range(kw):
                        full[i:i + (h - 1) * sh + 1:sh, j:j + (wd - 1) * sw + 1:sw] += paint[:, :, i, j]
                r = full[:h * sh, :wd * sw] + self.const(ins[2])
            else:
                raise SystemExit(f"unsupported op {name}")
            v[outs[0]] = r
        o = v[self.g.Outputs(0)]
        e = np.exp(o - o.max(-1, keepdims=True))
        return e[..., 1] / e.sum(-1)


def main():
    model = HairModel(sys.argv[1])
    labelled = sys.argv[2]
    labels = json.load(open(os.path.join(labelled, "labels.json")))
    items = [(os.path.join(labelled, k), v["breaks"].get("headwear")) for k, v in labels.items()]
    for d in sys.argv[3:]:
        items += [(p, "shared") for p in sorted(glob.glob(os.path.join(d, "*.jpg")))]
    size = int(os.environ.get("SIZE", 512))
    side_w = float(os.environ.get("SIDE", 4))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for path, hat in items:
        img = cv2.imread(path)
        if hat is None or img is None:
            continue
        faces = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(40, 40))
        name = os.path.basename(path)
        if len(faces) == 0:
            print(f"{name:40s} {hat!s:7s} no face")
            continue
        x, y, w, h = max(faces, key=lambda r: r[2])
        side = side_w * w
        x0, y0 = x + w / 2 - side / 2, y + h / 2 - w / 4 - side / 2
        s = size / side
        crop = cv2.warpAffine(img, np.float32([[s, 0, -x0 * s], [0, s, -y0 * s]]), (size, size),
                              flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        p = model.hair(crop[..., ::-1].astype(np.float32) / 255)
        top, ws = (y - y0) * s, w * s

        def share(v0, v1):
            band = p[int(max(top + v0 * ws, 0)):int(max(top + v1 * ws, 1)), int(size / 2 - 0.3 * ws):int(size / 2 + 0.3 * ws)]
            return float((band > 0.5).mean()) if band.size else float("nan")

        print(f"{name:40s} {hat!s:7s} a={share(-0.25, 0):.2f} b={share(-0.5, -0.25):.2f}", flush=True)


if __name__ == "__main__":
    main()
