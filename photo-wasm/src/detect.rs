//! Face detection behind one small trait. The implementation is MediaPipe's BlazeFace short-range
//! model run by `nn.rs` (measured in `shared/reference/face-detectors.md`: best verdict on the
//! test photos, six keypoints, a few hundred KB).

use crate::nn::Graph;
use crate::raster::Rgb;
use crate::thresholds as t;
use std::sync::OnceLock;

/// A point in pixels of the image given to the detector.
pub type Point = [f32; 2];

/// One detected face, in pixels of the image given to the detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub score: f32,
    /// The subject's right eye (on the left of an unmirrored photo), then the left eye.
    pub right_eye: Point,
    pub left_eye: Point,
    pub nose: Point,
    pub mouth: Point,
    pub right_ear: Point,
    pub left_ear: Point,
}

/// Anything that finds faces with eye, nose and ear positions.
pub trait FaceDetector {
    fn detect(&self, image: &Rgb) -> Vec<Detection>;
}

/// Runs `detector` again on a window around `face` (the face then fills a good part of the
/// detector's input), so a face that was small in the whole frame gets precise keypoints.
/// Returns `face` unchanged when the second look finds nothing there.
pub fn refine(detector: &dyn FaceDetector, image: &Rgb, face: &Detection) -> Detection {
    let side = (face.width.max(face.height) * t::REFINE_CONTEXT).max(8.0);
    let (cx, cy) = (face.x + face.width / 2.0, face.y + face.height / 2.0);
    let (x0, y0) = (
        (cx - side / 2.0).round() as i64,
        (cy - side / 2.0).round() as i64,
    );
    let side_px = side.round() as u32;
    // Shrink big windows first: the detector sees 128 px anyway.
    let window = image.crop(x0, y0, side_px, side_px);
    let f = (side_px as f32 / t::REFINE_WINDOW_PX as f32).max(1.0);
    let window = if f > 1.0 {
        window.resize(t::REFINE_WINDOW_PX, t::REFINE_WINDOW_PX)
    } else {
        window
    };
    let centre = [side / 2.0 / f, side / 2.0 / f];
    let near = |d: &Detection| {
        libm::hypotf(
            d.x + d.width / 2.0 - centre[0],
            d.y + d.height / 2.0 - centre[1],
        )
    };
    let Some(best) = detector
        .detect(&window)
        .into_iter()
        .filter(|d| near(d) < d.width / 2.0)
        .min_by(|a, b| near(a).total_cmp(&near(b)))
    else {
        return face.clone();
    };
    let map = |p: Point| [p[0] * f + x0 as f32, p[1] * f + y0 as f32];
    let tl = map([best.x, best.y]);
    Detection {
        x: tl[0],
        y: tl[1],
        width: best.width * f,
        height: best.height * f,
        // The score of the whole-frame look decides whether it counts as a face.
        score: face.score,
        right_eye: map(best.right_eye),
        left_eye: map(best.left_eye),
        nose: map(best.nose),
        mouth: map(best.mouth),
        right_ear: map(best.right_ear),
        left_ear: map(best.left_ear),
    }
}

/// Faces down to about a tenth of a tile's side: `detector` on the whole `image` and on
/// overlapping square tiles `side` pixels wide, pooled by the suppression. For group and distant
/// photos, whose faces are a few pixels wide at the whole frame's 128 px.
pub fn detect_tiled(detector: &dyn FaceDetector, image: &Rgb, side: u32) -> Vec<Detection> {
    let mut all = detector.detect(image);
    all.extend(detect_on_tiles(
        detector,
        image,
        side,
        (0.0, image.height as f32),
    ));
    weighted_nms(all)
}

/// `detector` on square tiles `side` pixels wide covering the rows `rows` (from, to) of `image`,
/// half a tile apart across its whole width (the grid symmetric about the image's middle, so a
/// mirrored photo is tiled alike); the detections in `image`'s pixels, not yet suppressed.
pub(crate) fn detect_on_tiles(
    detector: &dyn FaceDetector,
    image: &Rgb,
    side: u32,
    rows: (f32, f32),
) -> Vec<Detection> {
    let mut all = Vec::new();
    for y0 in tile_starts(rows, image.height, side) {
        for x0 in tile_starts((0.0, image.width as f32), image.width, side) {
            let tile = image.crop(x0, y0, side.min(image.width), side.min(image.height));
            let (dx, dy) = (x0 as f32, y0 as f32);
            let shift = |p: Point| [p[0] + dx, p[1] + dy];
            all.extend(detector.detect(&tile).into_iter().map(|d| Detection {
                x: d.x + dx,
                y: d.y + dy,
                right_eye: shift(d.right_eye),
                left_eye: shift(d.left_eye),
                nose: shift(d.nose),
                mouth: shift(d.mouth),
                right_ear: shift(d.right_ear),
                left_ear: shift(d.left_ear),
                ..d
            }));
        }
    }
    all
}

/// Where tiles `side` long start on an axis `len` long to cover `(from, to)`: spread evenly at
/// most half a tile apart; one tile centred on a span shorter than a tile; all inside the axis.
fn tile_starts((from, to): (f32, f32), len: u32, side: u32) -> Vec<i64> {
    if len <= side {
        return vec![0];
    }
    let (from, to, side) = (from.max(0.0), to.min(len as f32), side as f32);
    let first = (from + (to - from - side).min(0.0) / 2.0).clamp(0.0, len as f32 - side);
    let span = (to - from - side).max(0.0).min(len as f32 - side - first);
    let gaps = (span / (side / 2.0)).ceil() as usize;
    (0..=gaps)
        .map(|i| (first + span * i as f32 / gaps.max(1) as f32).round() as i64)
        .collect()
}

pub struct BlazeFace {
    graph: Graph,
    anchors: Vec<Point>,
}

static MODEL: &[u8] = include_bytes!("../models/blazeface.bin");

impl BlazeFace {
    /// The compiled-in model, parsed once per process.
    pub fn shared() -> &'static BlazeFace {
        static CELL: OnceLock<BlazeFace> = OnceLock::new();
        CELL.get_or_init(|| BlazeFace {
            // The model is part of the binary and checked by the tests: a parse error is a build bug.
            graph: Graph::parse(MODEL).expect("compiled-in BlazeFace model is valid"),
            anchors: anchors(),
        })
    }

    /// The raw network outputs (logits, then 16 regressors per anchor) for a 128×128×3 input.
    pub fn raw(&self, input: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
        let mut out = self.graph.run(input).into_iter();
        let reg = out.next().unwrap_or_default();
        let cls = out.next().unwrap_or_default();
        (cls, reg)
    }
}

/// MediaPipe's SSD anchors for the short-range model: strides 8, 16, 16, 16 on a 128 input with
/// two anchors per cell (layers of equal stride merge), fixed size, offset 0.5.
fn anchors() -> Vec<Point> {
    let mut out = Vec::with_capacity(896);
    for (grid, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per_cell {
                    out.push([
                        (x as f32 + 0.5) / grid as f32,
                        (y as f32 + 0.5) / grid as f32,
                    ]);
                }
            }
        }
    }
    out
}

const INPUT: u32 = 128;

impl FaceDetector for BlazeFace {
    fn detect(&self, image: &Rgb) -> Vec<Detection> {
        if image.width == 0 || image.height == 0 {
            return Vec::new();
        }
        // Letterbox: keep the aspect ratio, centre, pad with black as MediaPipe does.
        let long = image.width.max(image.height) as f32;
        let scale = INPUT as f32 / long;
        let w = ((image.width as f32 * scale).round() as u32).clamp(1, INPUT);
        let h = ((image.height as f32 * scale).round() as u32).clamp(1, INPUT);
        let small = image.resize(w, h);
        let (ox, oy) = ((INPUT - w) / 2, (INPUT - h) / 2);
        let mut input = vec![-1.0f32; (INPUT * INPUT * 3) as usize];
        for y in 0..h {
            for x in 0..w {
                let p = small.pixel(x, y);
                let i = (((y + oy) * INPUT + x + ox) * 3) as usize;
                for c in 0..3 {
                    input[i + c] = p[c] as f32 / 127.5 - 1.0;
                }
            }
        }
        // Two looks, the input as given and mirrored, pooled by the suppression: the detector
        // leans a little one way, and a mirrored photo must find the same faces.
        // The picture is flipped within its letterbox, so a mirrored photo's first look is exactly
        // this photo's second.
        let mirrored = mirror_input(&input, ox as usize, w as usize);
        let mut cands = self.candidates(input, None);
        cands.extend(self.candidates(mirrored, Some((2 * ox + w) as f32 / INPUT as f32)));
        // Map from the normalised 128 frame back to image pixels.
        let to_img = |p: Point| -> Point {
            [
                (p[0] * INPUT as f32 - ox as f32) / scale,
                (p[1] * INPUT as f32 - oy as f32) / scale,
            ]
        };
        let cands = cands
            .into_iter()
            .map(|c| {
                let tl = to_img([c.x, c.y]);
                Detection {
                    x: tl[0],
                    y: tl[1],
                    width: c.width * INPUT as f32 / scale,
                    height: c.height * INPUT as f32 / scale,
                    score: c.score,
                    right_eye: to_img(c.right_eye),
                    left_eye: to_img(c.left_eye),
                    nose: to_img(c.nose),
                    mouth: to_img(c.mouth),
                    right_ear: to_img(c.right_ear),
                    left_ear: to_img(c.left_ear),
                }
            })
            .collect();
        weighted_nms(cands)
    }
}

impl BlazeFace {
    /// The candidates above [`t::DETECT_MIN_SCORE`] for one 128×128 input, in the input's
    /// normalised frame (0–1). `mirrored`: the input was flipped left-right, x becoming
    /// `mirrored − x`; boxes and keypoints are flipped back (the subject's right eye is then the
    /// model's left).
    fn candidates(&self, input: Vec<f32>, mirrored: Option<f32>) -> Vec<Detection> {
        let (cls, reg) = self.raw(input);
        let n = INPUT as f32;
        let fx = |x: f32| mirrored.map_or(x, |m| m - x);
        let mut cands = Vec::new();
        for (i, (anchor, logit)) in self.anchors.iter().zip(&cls).enumerate() {
            let score = sigmoid(logit.clamp(-100.0, 100.0));
            if score < t::DETECT_MIN_SCORE {
                continue;
            }
            let Some(r) = reg.get(i * 16..i * 16 + 16) else {
                continue;
            };
            let center = [fx(r[0] / n + anchor[0]), r[1] / n + anchor[1]];
            let (bw, bh) = (r[2] / n, r[3] / n);
            let kp = |k: usize| {
                [
                    fx(r[4 + 2 * k] / n + anchor[0]),
                    r[5 + 2 * k] / n + anchor[1],
                ]
            };
            let (right_eye, left_eye, right_ear, left_ear) = if mirrored.is_some() {
                (kp(1), kp(0), kp(5), kp(4))
            } else {
                (kp(0), kp(1), kp(4), kp(5))
            };
            cands.push(Detection {
                x: center[0] - bw / 2.0,
                y: center[1] - bh / 2.0,
                width: bw,
                height: bh,
                score,
                right_eye,
                left_eye,
                nose: kp(2),
                mouth: kp(3),
                right_ear,
                left_ear,
            });
        }
        cands
    }
}

/// The 128×128×3 input with its picture (columns `x0..x0 + width`) flipped left-right.
fn mirror_input(input: &[f32], x0: usize, width: usize) -> Vec<f32> {
    let side = INPUT as usize;
    let mut out = input.to_vec();
    for (src, dst) in input
        .chunks_exact(side * 3)
        .zip(out.chunks_exact_mut(side * 3))
    {
        let picture = &src[x0 * 3..(x0 + width) * 3];
        for (d, s) in dst[x0 * 3..(x0 + width) * 3]
            .chunks_exact_mut(3)
            .zip(picture.chunks_exact(3).rev())
        {
            d.copy_from_slice(s);
        }
    }
    out
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

fn iou(a: &Detection, b: &Detection) -> f32 {
    let ix = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let iy = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a.width * a.height + b.width * b.height - inter)
}

/// MediaPipe's weighted non-maximum suppression: overlapping candidates are averaged, weighted by
/// score, which steadies the keypoints.
pub(crate) fn weighted_nms(mut cands: Vec<Detection>) -> Vec<Detection> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = cands.first().cloned() {
        let (group, rest): (Vec<_>, Vec<_>) =
            cands.into_iter().partition(|c| iou(&best, c) > t::NMS_IOU);
        cands = rest;
        let total: f32 = group.iter().map(|c| c.score).sum();
        let avg = |f: &dyn Fn(&Detection) -> f32| {
            group.iter().map(|c| f(c) * c.score).sum::<f32>() / total
        };
        let avg_pt = |f: &dyn Fn(&Detection) -> Point| [avg(&|c| f(c)[0]), avg(&|c| f(c)[1])];
        out.push(Detection {
            x: avg(&|c| c.x),
            y: avg(&|c| c.y),
            width: avg(&|c| c.width),
            height: avg(&|c| c.height),
            score: best.score,
            right_eye: avg_pt(&|c| c.right_eye),
            left_eye: avg_pt(&|c| c.left_eye),
            nose: avg_pt(&|c| c.nose),
            mouth: avg_pt(&|c| c.mouth),
            right_ear: avg_pt(&|c| c.right_ear),
            left_ear: avg_pt(&|c| c.left_ear),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::golden;

    #[test]
    fn runtime_matches_the_reference_interpreter() {
        let want = golden::outputs(include_bytes!("../models/blazeface-golden.bin"));
        let (cls, reg) = BlazeFace::shared().raw(golden::input(INPUT as usize));
        assert_eq!(cls.len() + reg.len(), want.len());
        let (gc, gr) = want.split_at(cls.len());
        golden::assert_close("logits", &cls, gc);
        golden::assert_close("regressors", &reg, gr);
    }

    #[test]
    fn anchors_cover_the_frame() {
        let a = anchors();
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], [1.0 / 32.0, 1.0 / 32.0]);
        assert_eq!(a[895], [15.0 / 16.0, 15.0 / 16.0]);
    }
}
