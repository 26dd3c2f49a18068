//! A tiny runtime for the op subset of BlazeFace, the face landmark model and the selfie
//! segmentation (conv, depthwise conv, add, ReLU, PReLU, channel pad, max-pool, reshape, concat;
//! hard-swish, logistic, per-channel multiply, global average, bilinear resize, non-overlapping
//! transposed conv) on NHWC f32 tensors with batch 1. The graph and its fp16 weights come from
//! `models/convert_tflite.py`; a general runtime (tract) would add megabytes to the .wasm.

use std::mem::MaybeUninit;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("model file is malformed at byte {0}")]
pub struct ModelError(usize);

#[derive(Debug, Clone, Copy)]
struct Shape {
    h: usize,
    w: usize,
    c: usize,
}

impl Shape {
    fn len(self) -> usize {
        self.h * self.w * self.c
    }
}

#[derive(Debug)]
struct Window {
    kh: usize,
    kw: usize,
    stride: usize,
    same: bool,
}

#[derive(Debug)]
enum Op {
    Conv {
        input: usize,
        output: usize,
        win: Window,
        relu: bool,
        cin: usize,
        /// Per block of output channels [`dense`] computes together (from channel `first`, `B`
        /// wide: [`dense_block_width`]), at `first·taps`: `[kh][kw][cin][B]`, transposed from the
        /// model's `[cout][kh][kw][cin]` so each input value scales one contiguous row of the
        /// block's channels (vectorises, fixed summation order) and the block's weights are one
        /// run of memory.
        weights: Vec<f32>,
        bias: Vec<f32>,
    },
    DepthwiseConv {
        input: usize,
        output: usize,
        win: Window,
        relu: bool,
        /// `[kh][kw][c]`
        weights: Vec<f32>,
        bias: Vec<f32>,
    },
    Add {
        a: usize,
        b: usize,
        output: usize,
        relu: bool,
    },
    Relu {
        input: usize,
        output: usize,
    },
    /// Zero padding; BlazeFace only pads channels, but h/w padding is supported for generality.
    Pad {
        input: usize,
        output: usize,
        before: [usize; 3],
    },
    MaxPool {
        input: usize,
        output: usize,
        win: Window,
    },
    /// NHWC data is contiguous, so a reshape is a copy.
    Reshape {
        input: usize,
        output: usize,
    },
    /// Along the anchor axis of `[1, N, C]` tensors: the buffers are appended.
    Concat {
        inputs: Vec<usize>,
        output: usize,
    },
    /// `max(v, 0) + alpha[c]·min(v, 0)`, one slope per channel.
    Prelu {
        input: usize,
        output: usize,
        alpha: Vec<f32>,
    },
    /// `x · relu6(x + 3) / 6`.
    HardSwish {
        input: usize,
        output: usize,
    },
    /// `1 / (1 + e^-x)`.
    Logistic {
        input: usize,
        output: usize,
    },
    /// A feature map times one factor per channel (`b` is 1×1×C): squeeze-and-excite.
    Mul {
        a: usize,
        b: usize,
        output: usize,
    },
    /// Global average over the pixels, per channel.
    Mean {
        input: usize,
        output: usize,
    },
    /// Bilinear resize with half-pixel centres (TensorFlow's `half_pixel_centers`).
    Resize {
        input: usize,
        output: usize,
    },
    /// Transposed convolution whose stride equals its kernel: each input pixel paints its own
    /// kh×kw block of the output.
    Deconv {
        input: usize,
        output: usize,
        kh: usize,
        kw: usize,
        cin: usize,
        /// `[cout][kh][kw][cin]`, as in the model.
        weights: Vec<f32>,
        bias: Vec<f32>,
    },
}

impl Op {
    fn inputs(&self) -> Vec<usize> {
        match self {
            Op::Conv { input, .. }
            | Op::DepthwiseConv { input, .. }
            | Op::Relu { input, .. }
            | Op::Pad { input, .. }
            | Op::MaxPool { input, .. }
            | Op::Prelu { input, .. }
            | Op::Reshape { input, .. }
            | Op::HardSwish { input, .. }
            | Op::Logistic { input, .. }
            | Op::Mean { input, .. }
            | Op::Resize { input, .. }
            | Op::Deconv { input, .. } => vec![*input],
            Op::Add { a, b, .. } | Op::Mul { a, b, .. } => vec![*a, *b],
            Op::Concat { inputs, .. } => inputs.clone(),
        }
    }
}

/// A parsed graph, ready to run.
#[derive(Debug)]
pub struct Graph {
    shapes: Vec<Shape>,
    input: usize,
    outputs: Vec<usize>,
    ops: Vec<Op>,
    /// For each op, the tensors whose last reader it is (freed after it runs).
    frees: Vec<Vec<usize>>,
}

/// A model compiled into native builds and shipped beside the WebAssembly builds, which take it
/// at run time ([`Shipped::load`]): the mini-program then carries each model once for both builds.
pub struct Shipped {
    graph: std::sync::OnceLock<Graph>,
    /// The model's bytes in the binary (native builds only).
    builtin: Option<&'static [u8]>,
}

impl Shipped {
    /// `builtin`: the model's bytes compiled in (native builds), `None` where it is loaded at run
    /// time.
    pub const fn new(builtin: Option<&'static [u8]>) -> Shipped {
        Shipped {
            graph: std::sync::OnceLock::new(),
            builtin,
        }
    }

    /// Parses a model file; the first valid one stays.
    pub fn load(&self, bytes: &[u8]) -> Result<(), ModelError> {
        if self.graph.get().is_none() {
            let _ = self.graph.set(Graph::parse(bytes)?);
        }
        Ok(())
    }

    /// The graph, when it is at hand: always natively, in WebAssembly once loaded.
    pub fn get(&self) -> Option<&Graph> {
        if let (None, Some(bytes)) = (self.graph.get(), self.builtin) {
            // Part of the binary and checked by the tests: a parse error is a build bug.
            self.load(bytes).expect("compiled-in model is valid");
        }
        self.graph.get()
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ModelError> {
        let end = self.pos.checked_add(n).ok_or(ModelError(self.pos))?;
        let s = self.bytes.get(self.pos..end).ok_or(ModelError(self.pos))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<usize, ModelError> {
        Ok(self.take(1)?[0] as usize)
    }
    fn u16(&mut self) -> Result<usize, ModelError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as usize)
    }
    fn f16s(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        let (halves, _) = self.take(n * 2)?.as_chunks::<2>();
        Ok(halves
            .iter()
            .map(|&h| f16_to_f32(u16::from_le_bytes(h)))
            .collect())
    }
    fn window(&mut self) -> Result<Window, ModelError> {
        Ok(Window {
            kh: self.u8()?,
            kw: self.u8()?,
            stride: self.u8()?.max(1),
            same: self.u8()? != 0,
        })
    }
}

impl Graph {
    pub fn parse(bytes: &[u8]) -> Result<Graph, ModelError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != b"BZNN" || r.u16()? != 1 {
            return Err(ModelError(0));
        }
        let n = r.u16()?;
        let shapes = (0..n)
            .map(|_| {
                Ok(Shape {
                    h: r.u16()?,
                    w: r.u16()?,
                    c: r.u16()?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let input = r.u16()?;
        let n_out = r.u16()?;
        let outputs = (0..n_out).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
        let n_ops = r.u16()?;
        let mut ops = Vec::with_capacity(n_ops);
        for _ in 0..n_ops {
            let at = r.pos;
            let op = match r.u8()? {
                kind @ (1 | 2) => {
                    let (input, output) = (r.u16()?, r.u16()?);
                    let win = r.window()?;
                    let relu = r.u8()? != 0;
                    let (cout, cin) = (r.u16()?, r.u16()?);
                    let weights = r.f16s(cout * win.kh * win.kw * cin)?;
                    let bias = r.f16s(cout)?;
                    if kind == 1 {
                        let taps = win.kh * win.kw * cin;
                        // Written in order (a tap's `width` weights, then the next tap's), each
                        // read from its model row.
                        let mut t = vec![0.0; weights.len()];
                        let mut first = 0;
                        while first < cout {
                            let width = dense_block_width(cout, first);
                            let rows = &weights[first * taps..][..width * taps];
                            let block = &mut t[first * taps..][..width * taps];
                            for (k, tap) in block.chunks_exact_mut(width).enumerate() {
                                for (v, row) in tap.iter_mut().zip(rows.chunks_exact(taps)) {
                                    *v = row[k];
                                }
                            }
                            first += width;
                        }
                        Op::Conv {
                            input,
                            output,
                            win,
                            relu,
                            cin,
                            weights: t,
                            bias,
                        }
                    } else {
                        // Depthwise kernels are `[1][kh][kw][c]`, written with cout = c and cin = 1.
                        Op::DepthwiseConv {
                            input,
                            output,
                            win,
                            relu,
                            weights,
                            bias,
                        }
                    }
                }
                3 => Op::Add {
                    a: r.u16()?,
                    b: r.u16()?,
                    output: r.u16()?,
                    relu: r.u8()? != 0,
                },
                4 => Op::Relu {
                    input: r.u16()?,
                    output: r.u16()?,
                },
                5 => {
                    let (input, output) = (r.u16()?, r.u16()?);
                    let mut before = [0; 3];
                    for b in &mut before {
                        *b = r.u16()?;
                        r.u16()?; // the "after" padding follows from the output shape
                    }
                    Op::Pad {
                        input,
                        output,
                        before,
                    }
                }
                6 => Op::MaxPool {
                    input: r.u16()?,
                    output: r.u16()?,
                    win: r.window()?,
                },
                7 => Op::Reshape {
                    input: r.u16()?,
                    output: r.u16()?,
                },
                8 => {
                    let k = r.u16()?;
                    let output = r.u16()?;
                    let inputs = (0..k).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
                    Op::Concat { inputs, output }
                }
                9 => {
                    let (input, output, c) = (r.u16()?, r.u16()?, r.u16()?);
                    Op::Prelu {
                        input,
                        output,
                        alpha: r.f16s(c)?,
                    }
                }
                10 => Op::HardSwish {
                    input: r.u16()?,
                    output: r.u16()?,
                },
                11 => Op::Logistic {
                    input: r.u16()?,
                    output: r.u16()?,
                },
                12 => Op::Mul {
                    a: r.u16()?,
                    b: r.u16()?,
                    output: r.u16()?,
                },
                13 => Op::Mean {
                    input: r.u16()?,
                    output: r.u16()?,
                },
                14 => Op::Resize {
                    input: r.u16()?,
                    output: r.u16()?,
                },
                15 => {
                    let (input, output) = (r.u16()?, r.u16()?);
                    let (kh, kw) = (r.u8()?, r.u8()?);
                    let (cout, cin) = (r.u16()?, r.u16()?);
                    Op::Deconv {
                        input,
                        output,
                        kh,
                        kw,
                        cin,
                        weights: r.f16s(cout * kh * kw * cin)?,
                        bias: r.f16s(cout)?,
                    }
                }
                _ => return Err(ModelError(at)),
            };
            ops.push(op);
        }
        let graph = Graph::with_frees(shapes, input, outputs, ops);
        graph.validate().map_err(|()| ModelError(bytes.len()))?;
        Ok(graph)
    }

    fn with_frees(shapes: Vec<Shape>, input: usize, outputs: Vec<usize>, ops: Vec<Op>) -> Graph {
        let mut last = vec![None; shapes.len()];
        for (i, op) in ops.iter().enumerate() {
            for t in op.inputs() {
                if let Some(slot) = last.get_mut(t) {
                    *slot = Some(i);
                }
            }
        }
        let mut frees = vec![Vec::new(); ops.len()];
        for (t, l) in last.iter().enumerate() {
            if let (Some(i), false) = (l, outputs.contains(&t)) {
                frees[*i].push(t);
            }
        }
        Graph {
            shapes,
            input,
            outputs,
            ops,
            frees,
        }
    }

    /// Checks every index and shape once, so `run` cannot go out of bounds.
    fn validate(&self) -> Result<(), ()> {
        let n = self.shapes.len();
        let ok = |t: usize| if t < n { Ok(()) } else { Err(()) };
        ok(self.input)?;
        let mut defined = vec![false; n];
        defined[self.input] = true;
        for op in &self.ops {
            for t in op.inputs() {
                ok(t)?;
                if !defined[t] {
                    return Err(());
                }
            }
            let (out, expect_ok) = match op {
                Op::Conv {
                    input,
                    output,
                    win,
                    cin,
                    weights,
                    bias,
                    ..
                } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    let (oh, ow) = out_hw(i, win);
                    (
                        *output,
                        i.c == *cin
                            && (oh, ow, bias.len()) == (o.h, o.w, o.c)
                            && weights.len() == o.c * win.kh * win.kw * cin,
                    )
                }
                Op::DepthwiseConv {
                    input,
                    output,
                    win,
                    weights,
                    bias,
                    ..
                } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    let (oh, ow) = out_hw(i, win);
                    (
                        *output,
                        (oh, ow, i.c, bias.len()) == (o.h, o.w, o.c, o.c)
                            && weights.len() == win.kh * win.kw * o.c,
                    )
                }
                Op::MaxPool { input, output, win } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    (*output, (out_hw(i, win), i.c) == ((o.h, o.w), o.c))
                }
                Op::Add { a, b, output, .. } => {
                    ok(*output)?;
                    let (a, b, o) = (self.shapes[*a], self.shapes[*b], self.shapes[*output]);
                    (
                        *output,
                        (a.h, a.w, a.c) == (b.h, b.w, b.c) && (a.h, a.w, a.c) == (o.h, o.w, o.c),
                    )
                }
                Op::Relu { input, output }
                | Op::Reshape { input, output }
                | Op::HardSwish { input, output }
                | Op::Logistic { input, output } => {
                    ok(*output)?;
                    (
                        *output,
                        self.shapes[*input].len() == self.shapes[*output].len(),
                    )
                }
                Op::Pad {
                    input,
                    output,
                    before,
                } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    (
                        *output,
                        i.h + before[0] <= o.h && i.w + before[1] <= o.w && i.c + before[2] <= o.c,
                    )
                }
                Op::Prelu {
                    input,
                    output,
                    alpha,
                } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    (
                        *output,
                        (i.h, i.w, i.c) == (o.h, o.w, o.c) && alpha.len() == i.c,
                    )
                }
                Op::Concat { inputs, output } => {
                    ok(*output)?;
                    let o = self.shapes[*output];
                    let sum: usize = inputs.iter().map(|t| self.shapes[*t].len()).sum();
                    (*output, sum == o.len())
                }
                Op::Mul { a, b, output } => {
                    ok(*output)?;
                    let (a, b, o) = (self.shapes[*a], self.shapes[*b], self.shapes[*output]);
                    (
                        *output,
                        (b.h, b.w, b.c) == (1, 1, a.c) && (a.h, a.w, a.c) == (o.h, o.w, o.c),
                    )
                }
                Op::Mean { input, output } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    (*output, (o.h, o.w, o.c) == (1, 1, i.c) && i.h * i.w > 0)
                }
                Op::Resize { input, output } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    (*output, i.c == o.c && i.h > 0 && i.w > 0)
                }
                Op::Deconv {
                    input,
                    output,
                    kh,
                    kw,
                    cin,
                    weights,
                    bias,
                } => {
                    ok(*output)?;
                    let (i, o) = (self.shapes[*input], self.shapes[*output]);
                    (
                        *output,
                        i.c == *cin
                            && (i.h * kh, i.w * kw, bias.len()) == (o.h, o.w, o.c)
                            && weights.len() == o.c * kh * kw * cin,
                    )
                }
            };
            if !expect_ok {
                return Err(());
            }
            defined[out] = true;
        }
        for &t in &self.outputs {
            ok(t)?;
            if !defined[t] {
                return Err(());
            }
        }
        Ok(())
    }

    /// Runs the graph on an NHWC input; returns the outputs in the model's order.
    /// `input` must have exactly the input tensor's `h*w*c` values.
    pub fn run(&self, input: Vec<f32>) -> Vec<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.run_avx2(input) };
        }
        self.run_portable(input)
    }

    /// [`Graph::run`] compiled for AVX2 (twice as many lanes as the x86-64 baseline's SSE2).
    /// Without FMA: every product is rounded before it is added, as on every other target, so
    /// the outputs are the same bits (the WASM builds are checked against native).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, input: Vec<f32>) -> Vec<Vec<f32>> {
        self.run_portable(input)
    }

    #[inline(always)]
    fn run_portable(&self, input: Vec<f32>) -> Vec<Vec<f32>> {
        assert_eq!(input.len(), self.shapes[self.input].len(), "input size");
        let mut t: Vec<Vec<f32>> = vec![Vec::new(); self.shapes.len()];
        t[self.input] = input;
        for (op, frees) in self.ops.iter().zip(&self.frees) {
            let (output, data) = self.eval(op, &mut t, frees);
            t[output] = data;
            for &f in frees {
                t[f] = Vec::new();
            }
        }
        self.outputs
            .iter()
            .map(|&o| std::mem::take(&mut t[o]))
            .collect()
    }

    #[inline(always)]
    fn eval(&self, op: &Op, t: &mut [Vec<f32>], frees: &[usize]) -> (usize, Vec<f32>) {
        match op {
            Op::Conv {
                input,
                output,
                win,
                relu,
                cin,
                weights,
                bias,
            } => {
                let (i, o) = (self.shapes[*input], self.shapes[*output]);
                // Filled pixel by pixel: no zeroing first (a tenth of the work once).
                let mut out = Vec::with_capacity(o.len());
                if win.kh * win.kw * win.stride == 1 {
                    // Pointwise: the window is the input pixel itself, no copy needed.
                    dense(&mut out, &t[*input], *cin, weights, bias, *relu);
                    return (*output, out);
                }
                // Each output row's windows in the weights' order (tap, channel), zero outside
                // the input: one long dot product per output instead of one short one per tap.
                let taps = win.kh * win.kw * cin;
                let mut patches = vec![0.0; o.w * taps];
                let window = Taps::new(i, win);
                for oy in 0..o.h {
                    for (ox, patch) in patches.chunks_exact_mut(taps).enumerate() {
                        // A window wholly inside the input is all copied over.
                        if !(window.inside_down(oy) && window.inside_across(ox)) {
                            patch.fill(0.0);
                        }
                        window.each_span(oy, ox, |iy, ix, ky, kx, n| {
                            patch[(ky * win.kw + kx) * cin..][..n * cin]
                                .copy_from_slice(&t[*input][(iy * i.w + ix) * i.c..][..n * cin]);
                        });
                    }
                    dense(&mut out, &patches, taps, weights, bias, *relu);
                }
                (*output, out)
            }
            Op::DepthwiseConv {
                input,
                output,
                win,
                relu,
                weights,
                bias,
            } => {
                let (i, o) = (self.shapes[*input], self.shapes[*output]);
                let (c, src) = (o.c, &t[*input]);
                let mut out = Vec::with_capacity(o.len());
                // (input offset, weight offset) of each tap inside the input.
                let mut taps: Vec<(usize, usize)> = Vec::with_capacity(win.kh * win.kw);
                let window = Taps::new(i, win);
                let step = win.stride * c;
                for oy in 0..o.h {
                    // The output column the taps are for.
                    let mut taps_at = None;
                    let mut ox = 0;
                    while ox < o.w {
                        // Inside the input across, a pixel's taps are an earlier pixel's a stride
                        // per column further on: moved, not worked out again.
                        match taps_at {
                            Some(at) if window.inside_across(at) && window.inside_across(ox) => {
                                taps.iter_mut().for_each(|tap| tap.0 += (ox - at) * step);
                            }
                            _ => {
                                taps.clear();
                                window.each(oy, ox, |iy, ix, ky, kx| {
                                    taps.push(((iy * i.w + ix) * c, (ky * win.kw + kx) * c));
                                });
                            }
                        }
                        taps_at = Some(ox);
                        let last = ox + TILE_PIXELS - 1;
                        // Neighbours all inside across share the taps, `step` apart.
                        if last < o.w && window.inside_across(ox) && window.inside_across(last) {
                            depthwise_pixels::<TILE_PIXELS>(
                                &mut out,
                                src,
                                weights,
                                (&taps, step),
                                bias,
                                *relu,
                            );
                            ox += TILE_PIXELS;
                        } else {
                            depthwise_pixels::<1>(
                                &mut out,
                                src,
                                weights,
                                (&taps, step),
                                bias,
                                *relu,
                            );
                            ox += 1;
                        }
                    }
                }
                (*output, out)
            }
            Op::Add { a, b, output, relu } => {
                let mut out = if a == b {
                    t[*a].clone()
                } else {
                    owned(t, *a, frees)
                };
                // The ReLU's test outside the loop: one store per value (no masked store).
                if *relu {
                    for (x, y) in out.iter_mut().zip(&t[*b]) {
                        *x = relu_value(*x + y);
                    }
                } else {
                    for (x, y) in out.iter_mut().zip(&t[*b]) {
                        *x += y;
                    }
                }
                (*output, out)
            }
            // Into a new buffer: in place, the compiler stores only the zeros, masked (slower).
            Op::Relu { input, output } => {
                (*output, t[*input].iter().map(|&v| relu_value(v)).collect())
            }
            Op::Pad {
                input,
                output,
                before,
            } => {
                let (i, o) = (self.shapes[*input], self.shapes[*output]);
                // In the output's order, each value written once (no zeroing first): the rows
                // above, each input row between its columns left and right (each pixel between
                // its channels before and after), the rows below.
                let mut out = Vec::with_capacity(o.len());
                let zeros = |out: &mut Vec<f32>, n: usize| out.resize(out.len() + n, 0.0);
                zeros(&mut out, before[0] * o.w * o.c);
                for row in t[*input].chunks_exact(i.w * i.c) {
                    zeros(&mut out, before[1] * o.c);
                    for px in row.chunks_exact(i.c) {
                        zeros(&mut out, before[2]);
                        out.extend_from_slice(px);
                        zeros(&mut out, o.c - i.c - before[2]);
                    }
                    zeros(&mut out, (o.w - i.w - before[1]) * o.c);
                }
                out.resize(o.len(), 0.0);
                (*output, out)
            }
            Op::MaxPool { input, output, win } => {
                let (i, o) = (self.shapes[*input], self.shapes[*output]);
                let c = o.c;
                let mut out = vec![f32::NEG_INFINITY; o.len()];
                let window = Taps::new(i, win);
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let acc = &mut out[(oy * o.w + ox) * c..][..c];
                        window.each(oy, ox, |iy, ix, _, _| {
                            let px = &t[*input][(iy * i.w + ix) * c..][..c];
                            for (a, &p) in acc.iter_mut().zip(px) {
                                // A comparison, not `f32::max`: WASM has no instruction for
                                // Rust's NaN-ignoring max and calls `fmaxf` for every value.
                                if p > *a {
                                    *a = p;
                                }
                            }
                        });
                    }
                }
                (*output, out)
            }
            Op::Prelu {
                input,
                output,
                alpha,
            } => {
                // Into a new buffer, a select per value: the channel loop vectorises (in place,
                // the compiler stores only the scaled values, masked, which is slower).
                let src = &t[*input];
                let mut out = Vec::with_capacity(src.len());
                for px in src.chunks_exact(alpha.len()) {
                    out.extend(
                        px.iter()
                            .zip(alpha)
                            .map(|(&v, a)| if v < 0.0 { v * a } else { v }),
                    );
                }
                (*output, out)
            }
            Op::Reshape { input, output } => (*output, owned(t, *input, frees)),
            Op::HardSwish { input, output } => (
                *output,
                t[*input]
                    .iter()
                    .map(|&x| x * (x + 3.0).clamp(0.0, 6.0) / 6.0)
                    .collect(),
            ),
            Op::Logistic { input, output } => (
                *output,
                t[*input].iter().map(|&x| 1.0 / (1.0 + exp(-x))).collect(),
            ),
            Op::Mul { a, b, output } => {
                let factors = &t[*b];
                let mut out = t[*a].clone();
                for px in out.chunks_exact_mut(factors.len()) {
                    for (v, f) in px.iter_mut().zip(factors) {
                        *v *= f;
                    }
                }
                (*output, out)
            }
            Op::Mean { input, output } => {
                let c = self.shapes[*output].c;
                let mut sum = vec![0.0f32; c];
                for px in t[*input].chunks_exact(c) {
                    for (s, v) in sum.iter_mut().zip(px) {
                        *s += v;
                    }
                }
                let n = (t[*input].len() / c) as f32;
                (*output, sum.into_iter().map(|s| s / n).collect())
            }
            Op::Resize { input, output } => {
                let (i, o) = (self.shapes[*input], self.shapes[*output]);
                let (c, src) = (i.c, &t[*input]);
                let ys = resize_taps(i.h, o.h);
                let xs = resize_taps(i.w, o.w);
                let mut out = vec![0.0; o.len()];
                for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
                    for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
                        let at = |y: usize, x: usize| &src[(y * i.w + x) * c..][..c];
                        let (a, b, cc, d) = (at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1));
                        let dst = &mut out[(oy * o.w + ox) * c..][..c];
                        for k in 0..c {
                            let top = a[k] + (b[k] - a[k]) * fx;
                            let bottom = cc[k] + (d[k] - cc[k]) * fx;
                            dst[k] = top + (bottom - top) * fy;
                        }
                    }
                }
                (*output, out)
            }
            Op::Deconv {
                input,
                output,
                kh,
                kw,
                cin,
                weights,
                bias,
            } => {
                let (i, o) = (self.shapes[*input], self.shapes[*output]);
                let mut out = vec![0.0; o.len()];
                for y in 0..i.h {
                    for x in 0..i.w {
                        let px = &t[*input][(y * i.w + x) * cin..][..*cin];
                        for ky in 0..*kh {
                            for kx in 0..*kw {
                                let dst = ((y * kh + ky) * o.w + x * kw + kx) * o.c;
                                for (oc, b) in bias.iter().enumerate() {
                                    let w = &weights[((oc * kh + ky) * kw + kx) * cin..][..*cin];
                                    out[dst + oc] =
                                        b + px.iter().zip(w).map(|(p, w)| p * w).sum::<f32>();
                                }
                            }
                        }
                    }
                }
                (*output, out)
            }
            Op::Concat { inputs, output } => (
                *output,
                inputs.iter().flat_map(|i| t[*i].iter().copied()).collect(),
            ),
        }
    }
}

#[inline(always)]
fn out_hw(i: Shape, win: &Window) -> (usize, usize) {
    if win.same {
        (i.h.div_ceil(win.stride), i.w.div_ceil(win.stride))
    } else {
        (
            (i.h.saturating_sub(win.kh)) / win.stride + 1,
            (i.w.saturating_sub(win.kw)) / win.stride + 1,
        )
    }
}

/// For each output row (or column): the two source rows and the weight of the second, with
/// TensorFlow's half-pixel centres (`src = (dst + ½)·in/out − ½`, clamped at the edges).
#[inline(always)]
fn resize_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|o| {
            let s = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let lo = (s as usize).min(src - 1);
            (lo, (lo + 1).min(src - 1), s - lo as f32)
        })
        .collect()
}

/// TensorFlow's SAME padding: the total padding is split with the extra pixel at the end.
#[inline(always)]
fn pad_before(size: usize, k: usize, stride: usize, same: bool) -> usize {
    if !same {
        return 0;
    }
    let out = size.div_ceil(stride);
    ((out - 1) * stride + k).saturating_sub(size) / 2
}

/// Where a window's kernel taps land in its input, for every output pixel (the padding worked
/// out once per op, not per pixel).
struct Taps {
    i: Shape,
    kh: usize,
    kw: usize,
    stride: usize,
    py: usize,
    px: usize,
}

impl Taps {
    #[inline(always)]
    fn new(i: Shape, win: &Window) -> Taps {
        Taps {
            i,
            kh: win.kh,
            kw: win.kw,
            stride: win.stride,
            py: pad_before(i.h, win.kh, win.stride, win.same),
            px: pad_before(i.w, win.kw, win.stride, win.same),
        }
    }

    /// Whether every tap of output row `oy` lands inside the input.
    #[inline(always)]
    fn inside_down(&self, oy: usize) -> bool {
        oy * self.stride >= self.py && oy * self.stride + self.kh <= self.i.h + self.py
    }

    /// Whether every tap of output column `ox` lands inside the input.
    #[inline(always)]
    fn inside_across(&self, ox: usize) -> bool {
        ox * self.stride >= self.px && ox * self.stride + self.kw <= self.i.w + self.px
    }

    /// Calls `f(iy, ix, ky, kx, n)` for each kernel row of output pixel (oy, ox) that lands
    /// inside the input: its `n` taps from `kx` on that land inside, which are `n` neighbouring
    /// input pixels from (iy, ix). A 3-channel input's window is then copied a row at a time,
    /// not 3 values at a time.
    #[inline(always)]
    fn each_span(
        &self,
        oy: usize,
        ox: usize,
        mut f: impl FnMut(usize, usize, usize, usize, usize),
    ) {
        // The taps kx with 0 ≤ ox·stride + kx − px < width.
        let left = ox * self.stride;
        let kx0 = self.px.saturating_sub(left);
        let kx1 = (self.i.w + self.px).saturating_sub(left).min(self.kw);
        if kx0 >= kx1 {
            return;
        }
        for ky in 0..self.kh {
            let Some(iy) = (oy * self.stride + ky)
                .checked_sub(self.py)
                .filter(|&y| y < self.i.h)
            else {
                continue;
            };
            f(iy, left + kx0 - self.px, ky, kx0, kx1 - kx0);
        }
    }

    /// Calls `f(iy, ix, ky, kx)` for every kernel tap of output pixel (oy, ox) that lands inside
    /// the input, in the order of [`Taps::each_span`].
    #[inline(always)]
    fn each(&self, oy: usize, ox: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        self.each_span(oy, ox, |iy, ix, ky, kx, n| {
            for j in 0..n {
                f(iy, ix + j, ky, kx + j);
            }
        });
    }
}

/// Channels of a depthwise convolution computed together, their sums in registers over the taps.
const DEPTHWISE_CHANNELS: usize = 16;

/// Output channels of a dense product computed together, their sums in registers.
const DENSE_CHANNELS: usize = 16;

/// Neighbouring pixels a depthwise convolution computes together: each weight is loaded, and
/// each slice of them bounds-checked, once for all of them.
const TILE_PIXELS: usize = 4;

/// How many output channels from `first` of `n` [`dense`] computes together: blocks of
/// [`DENSE_CHANNELS`], then of four, then one at a time.
fn dense_block_width(n: usize, first: usize) -> usize {
    if first < n / DENSE_CHANNELS * DENSE_CHANNELS {
        DENSE_CHANNELS
    } else if first < n / 4 * 4 {
        4
    } else {
        1
    }
}

/// Appends `relu?(Σ rows[p][i]·w[i][o] + bias[o])` for every row `p` of `rows` (`cin` values
/// each; `w` as in [`Op::Conv`]) to `out`, pixel after pixel.
#[inline(always)]
fn dense(out: &mut Vec<f32>, rows: &[f32], cin: usize, w: &[f32], bias: &[f32], relu: bool) {
    let n = bias.len();
    let wide = n / DENSE_CHANNELS * DENSE_CHANNELS;
    let quads = n / 4 * 4;
    for px in rows.chunks_exact(cin) {
        out.reserve(n);
        let dst = &mut out.spare_capacity_mut()[..n];
        for first in (0..wide).step_by(DENSE_CHANNELS) {
            dense_block::<DENSE_CHANNELS>(dst, px, w, bias, relu, first);
        }
        for first in (wide..quads).step_by(4) {
            dense_block::<4>(dst, px, w, bias, relu, first);
        }
        for first in quads..n {
            dense_block::<1>(dst, px, w, bias, relu, first);
        }
        // SAFETY: the blocks above wrote all `n` channels.
        unsafe { out.set_len(out.len() + n) };
    }
}

/// [`dense`] of one pixel for the `B` output channels from `first`, written into `dst` (the
/// pixel's channels), their sums kept in registers over all the input channels. Four input
/// channels per step, added together before the sum (the order every target keeps, so outputs
/// are the same bits everywhere).
#[inline(always)]
fn dense_block<const B: usize>(
    dst: &mut [MaybeUninit<f32>],
    px: &[f32],
    w: &[f32],
    bias: &[f32],
    relu: bool,
    first: usize,
) {
    let mut sums = [0.0f32; B];
    let block = &w[first * px.len()..][..B * px.len()];
    let (quads, rest) = px.split_at(px.len() / 4 * 4);
    let (quad_rows, rest_rows) = block.split_at(quads.len() * B);
    for (v, rows) in quads.chunks_exact(4).zip(quad_rows.chunks_exact(4 * B)) {
        let (r0, rows) = rows.split_at(B);
        let (r1, rows) = rows.split_at(B);
        let (r2, r3) = rows.split_at(B);
        for j in 0..B {
            sums[j] += v[0] * r0[j] + v[1] * r1[j] + v[2] * r2[j] + v[3] * r3[j];
        }
    }
    for (v, row) in rest.iter().zip(rest_rows.chunks_exact(B)) {
        for j in 0..B {
            sums[j] += v * row[j];
        }
    }
    store(dst, &[sums], first, bias, relu);
}

/// Writes the sums of `P` pixels' `B` channels from `first`, biased (and ReLU'd), into `dst`
/// (`P` pixels of `bias.len()` channels).
#[inline(always)]
fn store<const P: usize, const B: usize>(
    dst: &mut [MaybeUninit<f32>],
    sums: &[[f32; B]; P],
    first: usize,
    bias: &[f32],
    relu: bool,
) {
    let n = bias.len();
    for (q, s) in sums.iter().enumerate() {
        for ((d, s), b) in dst[q * n + first..][..B]
            .iter_mut()
            .zip(s)
            .zip(&bias[first..][..B])
        {
            d.write(with_bias(*s, *b, relu));
        }
    }
}

/// Appends `relu?(Σ input[p + q·step + c]·weights[w + c] + bias[c])` over the taps `(p, w)` for
/// every channel `c` of the `P` pixels `q` a `step` apart to `out`, the sums in the taps' order;
/// a block of channels at a time keeps its sums in registers.
#[inline(always)]
fn depthwise_pixels<const P: usize>(
    out: &mut Vec<f32>,
    input: &[f32],
    weights: &[f32],
    (taps, step): (&[(usize, usize)], usize),
    bias: &[f32],
    relu: bool,
) {
    let c = bias.len();
    out.reserve(P * c);
    let dst = &mut out.spare_capacity_mut()[..P * c];
    let wide = c / DEPTHWISE_CHANNELS * DEPTHWISE_CHANNELS;
    for first in (0..wide).step_by(DEPTHWISE_CHANNELS) {
        depthwise_block::<P, DEPTHWISE_CHANNELS>(
            dst,
            input,
            weights,
            (taps, step),
            bias,
            relu,
            first,
        );
    }
    let quads = c / 4 * 4;
    for first in (wide..quads).step_by(4) {
        depthwise_block::<P, 4>(dst, input, weights, (taps, step), bias, relu, first);
    }
    for first in quads..c {
        depthwise_block::<P, 1>(dst, input, weights, (taps, step), bias, relu, first);
    }
    // SAFETY: the blocks above wrote all `c` channels of each of the `P` pixels.
    unsafe { out.set_len(out.len() + P * c) };
}

/// [`depthwise_pixels`] for the `B` channels from `first`, written into `dst`.
#[inline(always)]
fn depthwise_block<const P: usize, const B: usize>(
    dst: &mut [MaybeUninit<f32>],
    input: &[f32],
    weights: &[f32],
    (taps, step): (&[(usize, usize)], usize),
    bias: &[f32],
    relu: bool,
    first: usize,
) {
    let mut sums = [[0.0f32; B]; P];
    for &(p, w) in taps {
        let wt = &weights[w + first..][..B];
        for (q, s) in sums.iter_mut().enumerate() {
            let px = &input[p + q * step + first..][..B];
            for j in 0..B {
                s[j] += px[j] * wt[j];
            }
        }
    }
    store(dst, &sums, first, bias, relu);
}

#[inline(always)]
fn with_bias(sum: f32, bias: f32, relu: bool) -> f32 {
    let v = sum + bias;
    if relu {
        relu_value(v)
    } else {
        v
    }
}

/// Tensor `i`'s values for an op to turn into its output: the buffer itself when the op is its
/// last reader (`frees`), a copy otherwise.
#[inline(always)]
fn owned(t: &mut [Vec<f32>], i: usize, frees: &[usize]) -> Vec<f32> {
    if frees.contains(&i) {
        std::mem::take(&mut t[i])
    } else {
        t[i].clone()
    }
}

/// `e^x` from additions and multiplications only (Cephes' polynomial): the same bits on every
/// target like `libm::expf`, within 2 ulp of it, and it vectorises (`libm::expf` per value was
/// 3 % of a check: the segmentation's output is a logistic of 2 × 65,536 values).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // Inside the range where 2^n is a normal number; e^-87.3 is below 1e-37 anyway.
    let x = x.clamp(-87.3, 88.0);
    // Round to nearest by adding and taking away 1.5 × 2^23 (no rounding instruction needed).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // x − n·ln 2 in two steps, so the reduced argument keeps its precision.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// An IEEE half (`bits`) as `f32`, exactly, without branches: it vectorises, where `half`'s
/// portable conversion (no F16C on the x86-64 baseline nor in WASM) took a tenth of a check's
/// first run for the three models' weights. The magnitude's bits moved into an `f32`'s places are
/// the value times 2^-112, subnormals included, and the multiplication by 2^112 is exact.
/// Infinity and NaN (the exponent all ones) keep their mantissa, a NaN quiet as `half` makes it.
#[inline(always)]
fn f16_to_f32(bits: u16) -> f32 {
    let bits = bits as u32;
    let (sign, magnitude) = ((bits & 0x8000) << 16, (bits & 0x7fff) << 13);
    const TWO_TO_112: f32 = f32::from_bits(0x7780_0000);
    let value = if bits & 0x7c00 == 0x7c00 {
        let quiet = if bits & 0x03ff != 0 { 0x0040_0000 } else { 0 };
        magnitude | 0x7f80_0000 | quiet
    } else {
        (f32::from_bits(magnitude) * TWO_TO_112).to_bits()
    };
    f32::from_bits(sign | value)
}

/// `max(v, 0)` as a comparison (see MaxPool).
#[inline(always)]
fn relu_value(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn halves_convert_as_half_does() {
        for bits in 0..=u16::MAX {
            assert_eq!(
                f16_to_f32(bits).to_bits(),
                half::f16::from_bits(bits).to_f32().to_bits(),
                "{bits:#06x}"
            );
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        for i in -87_000..88_000 {
            let x = i as f32 / 1000.0 + 0.000_37;
            let (got, want) = (super::exp(x), libm::expf(x));
            assert!(
                (got - want).abs() <= 2.0 * f32::EPSILON * want,
                "e^{x}: {got} against {want}"
            );
        }
        assert_eq!(super::exp(-1000.0), super::exp(-87.3));
        assert!(super::exp(1000.0).is_finite());
    }
}

/// What the model tests share: the synthetic input of `models/convert_tflite.py` and the comparison
/// with the reference interpreter's outputs.
#[cfg(test)]
pub(crate) mod golden {
    pub fn input(size: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(size * size * 3);
        for y in 0..size {
            for x in 0..size {
                for c in 0..3 {
                    let (x, y, c) = (x as f64, y as f64, c as f64);
                    v.push(((x * 0.11 + c).sin() * (y * 0.07 - c * 0.5).cos() * 0.9) as f32);
                }
            }
        }
        v
    }

    /// The reference outputs, f32 little-endian.
    pub fn outputs(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// Every value within 1e-3, relative to the value's size above 1.
    pub fn assert_close(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let worst = got
            .iter()
            .zip(want)
            .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{what} differ by {worst}");
    }
}
