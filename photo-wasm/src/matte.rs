//! From the segmentation's coarse person probability to a soft matte that follows the photo's
//! own edges, at the resolution it is used at (the document photo's crop): the unsure band is
//! first decided again by local colour models of person and backdrop, then a colour guided
//! filter (He, Sun and Tang) on the photo moves the edges onto the photo's, and a contrast curve
//! keeps unsure edges soft. Also the edge-colour decontamination used when the backdrop is
//! replaced.
//!
//! The smooth quantities (the coarse probability, the filter's coefficients, the local colours)
//! live at half the photo's resolution, as `N` planes side by side (`[f32; N]` per pixel), so one
//! pass of running sums averages all of them.

use crate::raster::Rgb;
use crate::thresholds as t;
use std::ops::Range;

/// `N` planes of `w`×`h` values, one `[f32; N]` per pixel, row-major.
pub(crate) struct Planes<const N: usize> {
    pub w: usize,
    pub h: usize,
    pub v: Vec<[f32; N]>,
}

/// The coarse person probability, at half the resolution of the photo it is refined on.
pub(crate) type Coarse = Planes<1>;

impl<const N: usize> Planes<N> {
    /// A `w`×`h` grid's values `at(k)` (row-major index) halved in both directions by 2×2 means
    /// (an odd last row or column is averaged alone).
    fn halved(w: usize, h: usize, at: impl Fn(usize) -> [f32; N]) -> Self {
        let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
        let mut v = Vec::with_capacity(hw * hh);
        for y in 0..hh {
            let (r0, r1) = (2 * y * w, (2 * y + 1).min(h - 1) * w);
            for x in 0..hw {
                let (x0, x1) = (2 * x, (2 * x + 1).min(w - 1));
                let [a, b, c, d] = [r0 + x0, r0 + x1, r1 + x0, r1 + x1].map(&at);
                v.push(std::array::from_fn(|i| (a[i] + b[i] + c[i] + d[i]) * 0.25));
            }
        }
        Planes { w: hw, h: hh, v }
    }

    /// Means over a (2r+1)² window, clamped at the borders (the window shrinks there), by
    /// running sums: the cost does not depend on `r`.
    fn box_mean(&self, r: usize) -> Self {
        let (w, h) = (self.w, self.h);
        // 1 / the window's length at each position along an axis of `n`.
        let inverse = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| 1.0 / ((i + r + 1).min(n) - i.saturating_sub(r)) as f32)
                .collect()
        };
        let (inv_x, inv_y) = (inverse(w), inverse(h));
        let add =
            |sum: &mut [f32; N], v: &[f32; N]| sum.iter_mut().zip(v).for_each(|(s, v)| *s += v);
        let sub =
            |sum: &mut [f32; N], v: &[f32; N]| sum.iter_mut().zip(v).for_each(|(s, v)| *s -= v);
        let scaled = |sum: &[f32; N], f: f32| sum.map(|s| s * f);
        // Columns: a running sum per column, row by row (reads stay in order).
        let mut columns = Vec::with_capacity(w * h);
        let mut sum = vec![[0f32; N]; w];
        let row = |y: usize| &self.v[y * w..(y + 1) * w];
        for y in 0..r.min(h) {
            sum.iter_mut().zip(row(y)).for_each(|(s, v)| add(s, v));
        }
        for (y, inv) in inv_y.iter().enumerate() {
            if y + r < h {
                sum.iter_mut().zip(row(y + r)).for_each(|(s, v)| add(s, v));
            }
            if y > r {
                sum.iter_mut()
                    .zip(row(y - r - 1))
                    .for_each(|(s, v)| sub(s, v));
            }
            columns.extend(sum.iter().map(|s| scaled(s, *inv)));
        }
        // Rows: a running sum along each row.
        let mut v = Vec::with_capacity(w * h);
        for row in columns.chunks_exact(w) {
            let mut sum = [0f32; N];
            row[..r.min(w)].iter().for_each(|x| add(&mut sum, x));
            for (x, inv) in inv_x.iter().enumerate() {
                if x + r < w {
                    add(&mut sum, &row[x + r]);
                }
                if x > r {
                    sub(&mut sum, &row[x - r - 1]);
                }
                v.push(scaled(&sum, *inv));
            }
        }
        Planes { w, h, v }
    }

    /// Sampled bilinearly at full-size pixel (x, y) when these planes are the halved ones.
    fn sample_doubled(&self, x: usize, y: usize) -> [f32; N] {
        let ((x0, x1, tx), (y0, y1, ty)) = (doubled_tap(x, self.w), doubled_tap(y, self.h));
        let at = |x: usize, y: usize| &self.v[y * self.w + x];
        let (a, b, c, d) = (at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1));
        std::array::from_fn(|i| {
            let top = a[i] + (b[i] - a[i]) * tx;
            let bottom = c[i] + (d[i] - c[i]) * tx;
            top + (bottom - top) * ty
        })
    }
}

impl Coarse {
    /// `f(x, y)` (a point in pixels of a `w`×`h` grid, pixel centres at i + ½) at the centres of
    /// the grid's 2×2 blocks: what [`Planes::halved`] makes of a smooth `f`.
    pub fn at_half(w: usize, h: usize, f: impl Fn(f32, f32) -> f32) -> Coarse {
        let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
        let centre = |i: usize, n: usize| (2 * i + (2 * i + 1).min(n - 1)) as f32 * 0.5 + 0.5;
        let mut v = Vec::with_capacity(hw * hh);
        for y in 0..hh {
            let cy = centre(y, h);
            v.extend((0..hw).map(|x| [f(centre(x, w), cy)]));
        }
        Planes { w: hw, h: hh, v }
    }
}

/// The bilinear taps of full-size position `i` on an axis of `half` halved values: the two
/// indices and the second one's weight.
fn doubled_tap(i: usize, half: usize) -> (usize, usize, f32) {
    let f = ((i as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (half - 1) as f32);
    let i0 = f as usize;
    (i0, (i0 + 1).min(half - 1), f - i0 as f32)
}

/// The upper triangle of a 3×3 product of colours, in this order: rr, rg, rb, gg, gb, bb.
const PAIRS: [(usize, usize); 6] = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];

/// A symmetric 3×3 matrix (a covariance of colours) as its inverse by cofactors (`PAIRS`
/// order, not yet divided by the determinant) and its determinant.
struct Sym3 {
    cofactors: [f32; 6],
    det: f32,
}

impl Sym3 {
    /// The covariance of colours with mean `mean` and mean products `products` (`PAIRS`
    /// order), plus `floor` on the diagonal.
    fn covariance(mean: &[f32; 3], products: &[f32], floor: f32) -> Sym3 {
        let s = |q: usize| {
            let (x, y) = PAIRS[q];
            products[q] - mean[x] * mean[y]
        };
        let (rr, rg, rb) = (s(0) + floor, s(1), s(2));
        let (gg, gb, bb) = (s(3) + floor, s(4), s(5) + floor);
        let (c00, c01, c02) = (gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg);
        let (c11, c12, c22) = (rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg);
        Sym3 {
            cofactors: [c00, c01, c02, c11, c12, c22],
            det: rr * c00 + rg * c01 + rb * c02,
        }
    }

    /// x with S·x = v.
    fn solve(&self, v: [f32; 3]) -> [f32; 3] {
        let [c00, c01, c02, c11, c12, c22] = self.cofactors;
        [
            (c00 * v[0] + c01 * v[1] + c02 * v[2]) / self.det,
            (c01 * v[0] + c11 * v[1] + c12 * v[2]) / self.det,
            (c02 * v[0] + c12 * v[1] + c22 * v[2]) / self.det,
        ]
    }

    /// dᵀ·S⁻¹·d, the squared Mahalanobis distance.
    fn distance(&self, d: [f32; 3]) -> f32 {
        let x = self.solve(d);
        d[0] * x[0] + d[1] * x[1] + d[2] * x[2]
    }
}

/// The guide's colours in [0, 1] at half resolution, on the grid of [`Coarse`].
pub fn half_colours(guide: &Rgb) -> Planes<3> {
    let px = &guide.data;
    let colour = |k: usize| std::array::from_fn(|c| px[k * 3 + c] as f32 * (1.0 / 255.0));
    Planes::<3>::halved(guide.width as usize, guide.height as usize, colour)
}

/// The coarse probability `p` with the photo's colours taken into account: over a window of
/// radius `r` (in half-resolution pixels) around each point, the colours of the pixels the
/// segmentation is sure are person, and those it is sure are backdrop, each make a Gaussian
/// model (mean and covariance); the point's own colour then changes the odds of person by the
/// ratio of its likelihoods under the two, weighed by a quarter (the window's pixels are far
/// from independent samples, and one Gaussian is a rough model of a sweater or a street) and
/// capped; only in the unsure band (the work is there, a few per cent of the pixels). Where
/// the model was unsure between a grey shoulder and a pink lane, or a dark strand
/// and green foliage, the colour decides; where it was sure it keeps its word; where the window
/// holds too few sure pixels of either side, nothing changes.
fn colour_posterior(half: &Planes<3>, p: &Coarse, r: usize) -> Coarse {
    let sure = t::MATTE_COLOUR_SURE;
    let ramp = |v: f32| (v / (sure * 0.5)).clamp(0.0, 1.0);
    // Side by side, for the person's weight and then the backdrop's: the weight, the weighted
    // colour (3) and the weighted colour products (6).
    const SIDE: usize = 10;
    let weighted = Planes::<{ 2 * SIDE }> {
        w: p.w,
        h: p.h,
        v: half
            .v
            .iter()
            .zip(&p.v)
            .map(|(i, &[p])| {
                let mut m = [0f32; 2 * SIDE];
                for (side, weight) in [ramp(p - (1.0 - sure)), ramp(sure - p)]
                    .into_iter()
                    .enumerate()
                {
                    let m = &mut m[side * SIDE..(side + 1) * SIDE];
                    m[0] = weight;
                    for c in 0..3 {
                        m[1 + c] = weight * i[c];
                    }
                    for (q, (a, b)) in PAIRS.iter().enumerate() {
                        m[4 + q] = weight * i[*a] * i[*b];
                    }
                }
                m
            })
            .collect(),
    };
    let means = weighted.box_mean(r);
    let max_odds = t::MATTE_COLOUR_MAX_ODDS;
    let v = means
        .v
        .iter()
        .zip(&half.v)
        .zip(&p.v)
        .map(|((m, i), &[p])| {
            if p <= t::MATTE_COLOUR_KEEP || p >= 1.0 - t::MATTE_COLOUR_KEEP {
                return [p];
            }
            // Rising from 1 % of the window (below it the running sums' rounding would be all
            // there is of a side).
            let share = m[0].min(m[SIDE]);
            let say = ((share - 0.01) / (t::MATTE_COLOUR_MIN_SHARE - 0.01)).clamp(0.0, 1.0);
            if say == 0.0 {
                return [p];
            }
            // Each side's squared distance from its model and the model's spread.
            let [(person, person_det), (backdrop, backdrop_det)] = [0, SIDE].map(|at| {
                let m = &m[at..at + SIDE];
                let mean = [1, 2, 3].map(|c| m[c] / m[0]);
                let products: [f32; 6] = std::array::from_fn(|q| m[4 + q] / m[0]);
                let s = Sym3::covariance(&mean, &products, t::MATTE_COLOUR_VARIANCE_FLOOR);
                (s.distance([0, 1, 2].map(|c| i[c] - mean[c])), s.det)
            });
            // The likelihood ratio to the power of a quarter: e^((d_b − d_f) / 8) times the
            // eighth root of the determinants' ratio (square roots and `exp` from additions and
            // multiplications give the same bits on every target).
            let spread = (backdrop_det / person_det).sqrt().sqrt().sqrt();
            let odds = (crate::nn::exp(((backdrop - person) / 8.0).clamp(-20.0, 20.0)) * spread)
                .clamp(1.0 / max_odds, max_odds);
            let posterior = p * odds / (p * odds + 1.0 - p);
            [p + say * (posterior - p)]
        })
        .collect();
    Planes { w: p.w, h: p.h, v }
}

/// The colour guided filter of the coarse probability `p` (at half the guide's resolution, see
/// [`Coarse::at_half`]) with `guide`, window radius `r` (in guide pixels), regularisation `eps`
/// (on colours in [0, 1]): `p` becomes locally a linear function of the guide's colours, so its
/// edges move onto the photo's. The linear coefficients are smooth, so they are computed at half
/// resolution (He and Sun's fast guided filter) and applied to the full-size guide.
/// `half` is [`half_colours`] of `guide`.
pub fn guided_filter(guide: &Rgb, half: &Planes<3>, p: &Coarse, r: usize, eps: f32) -> Vec<f32> {
    let (w, h) = (guide.width as usize, guide.height as usize);
    let px = &guide.data;
    let i = half;
    debug_assert_eq!((p.w, p.h), (i.w, i.h));
    // Side by side: I (3), p, I·p (3), I·Iᵀ (6).
    let moments = Planes::<13> {
        w: p.w,
        h: p.h,
        v: i.v
            .iter()
            .zip(&p.v)
            .map(|(i, &[p])| {
                let mut m = [0f32; 13];
                m[..3].copy_from_slice(i);
                m[3] = p;
                for c in 0..3 {
                    m[4 + c] = i[c] * p;
                }
                for (q, (a, b)) in PAIRS.iter().enumerate() {
                    m[7 + q] = i[*a] * i[*b];
                }
                m
            })
            .collect(),
    };
    let r = (r / 2).max(1);
    let means = moments.box_mean(r);
    let coefficients = Planes::<4> {
        w: p.w,
        h: p.h,
        v: means
            .v
            .iter()
            .map(|m| {
                let (mi, mp) = ([m[0], m[1], m[2]], m[3]);
                let cov = [0, 1, 2].map(|c| m[4 + c] - mi[c] * mp);
                let a = Sym3::covariance(&mi, &m[7..13], eps).solve(cov);
                [
                    a[0],
                    a[1],
                    a[2],
                    mp - a[0] * mi[0] - a[1] * mi[1] - a[2] * mi[2],
                ]
            })
            .collect(),
    }
    .box_mean(r);
    // Applied row by row: the coefficients' rows interpolated once per full-size row, then
    // along it.
    let (hw, hh) = (p.w, p.h);
    let xs: Vec<_> = (0..w).map(|x| doubled_tap(x, hw)).collect();
    let mut rows = vec![[0f32; 4]; hw];
    let mut q = Vec::with_capacity(w * h);
    for y in 0..h {
        let (y0, y1, ty) = doubled_tap(y, hh);
        let (top, bottom) = (
            &coefficients.v[y0 * hw..(y0 + 1) * hw],
            &coefficients.v[y1 * hw..(y1 + 1) * hw],
        );
        for ((row, t), b) in rows.iter_mut().zip(top).zip(bottom) {
            *row = std::array::from_fn(|c| t[c] + (b[c] - t[c]) * ty);
        }
        let guide_row = &px[y * w * 3..(y + 1) * w * 3];
        for (&(x0, x1, tx), rgb) in xs.iter().zip(guide_row.chunks_exact(3)) {
            let (left, right) = (rows[x0], rows[x1]);
            let at = |c: usize| left[c] + (right[c] - left[c]) * tx;
            q.push(
                at(0) * (rgb[0] as f32 * (1.0 / 255.0))
                    + at(1) * (rgb[1] as f32 * (1.0 / 255.0))
                    + at(2) * (rgb[2] as f32 * (1.0 / 255.0))
                    + at(3),
            );
        }
    }
    q
}

/// Where the applicant's face is in the guide, in its pixels.
#[derive(Debug, Clone, Copy)]
pub struct FaceAt {
    /// The face box's middle.
    pub middle: [f32; 2],
    /// The face box's bottom row.
    pub bottom: f32,
}

/// The soft matte (0 = backdrop, 1 = person) from the coarse probability `p` (at half the
/// guide's size, see [`Coarse::at_half`]), for a face `face_width` pixels wide in the guide: the
/// filter's window scales with the face, so the result is the same at any resolution. Given the
/// face, above its box's bottom, where the outline is hair, the curve is lowered by
/// `MATTE_HAIR_CURVE_SHIFT`, fading back below it, and only the person the face belongs to is
/// kept ([`keep_subject`]).
pub fn refine(guide: &Rgb, p: &Coarse, face_width: f32, face: Option<FaceAt>) -> Vec<f32> {
    let half = half_colours(guide);
    let colour_r = ((face_width * t::MATTE_COLOUR_PER_FACE / 2.0).round() as usize).max(1);
    let p = colour_posterior(&half, p, colour_r);
    let r = ((face_width * t::MATTE_RADIUS_PER_FACE).round() as usize).max(1);
    let q = guided_filter(guide, &half, &p, r, t::MATTE_EPS);
    let (lo, hi) = t::MATTE_CURVE;
    let fade = face_width * t::MATTE_HAIR_FADE_PER_FACE;
    let shift = |y: usize| {
        face.map_or(0.0, |face| {
            let below = ((y as f32 + 0.5 - face.bottom) / fade).clamp(0.0, 1.0);
            t::MATTE_HAIR_CURVE_SHIFT * (1.0 - below)
        })
    };
    let w = guide.width as usize;
    let mut alpha: Vec<f32> = q
        .chunks_exact(w)
        .enumerate()
        .flat_map(|(y, row)| {
            let (lo, hi) = (lo - shift(y), hi - shift(y));
            row.iter()
                .map(move |v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
        })
        .collect();
    if let Some(face) = face {
        // The seeds, pixel ranges that mirror exactly with the photo: a square about the face
        // box's middle, and a strip of the same width down from the box's bottom (neck and
        // chest), so a body the matte ever cut from the face at the neck is kept all the same.
        let half = face_width * t::MATTE_SUBJECT_SEED_PER_FACE;
        let to = |v: f32, n: usize| (v.max(0.0) as usize).min(n);
        let span = |c: f32, n: usize| to((c - half).floor(), n)..to((c + half).ceil(), n);
        let h = guide.height as usize;
        let columns = span(face.middle[0], w);
        let body_end = face.bottom + face_width * t::MATTE_SUBJECT_BODY_PER_FACE;
        let seeds = [
            (columns.clone(), span(face.middle[1], h)),
            (columns, to(face.bottom.floor(), h)..to(body_end.ceil(), h)),
        ];
        keep_subject(&mut alpha, w, &seeds);
    }
    alpha
}

/// Only the person whose face and body hold `seeds` (each columns and rows): every part of the
/// matte that no path of non-zero alpha (4-connected) joins to a seed becomes backdrop. Those
/// parts are other people standing apart from the applicant, or things the segmentation took
/// for a person (a logo, a statue), and no part of the applicant: the same set of pixels
/// whichever way the photo is scanned or mirrored. Where the seeds hold no alpha at all,
/// nothing changes.
fn keep_subject(alpha: &mut [f32], w: usize, seeds: &[(Range<usize>, Range<usize>)]) {
    let h = alpha.len() / w.max(1);
    let mut reached = vec![false; alpha.len()];
    let mut todo: Vec<usize> = seeds
        .iter()
        .flat_map(|(columns, rows)| {
            rows.clone()
                .flat_map(move |y| columns.clone().map(move |x| y * w + x))
        })
        .filter(|&k| alpha[k] > 0.0)
        .collect();
    if todo.is_empty() {
        return;
    }
    for &k in &todo {
        reached[k] = true;
    }
    while let Some(k) = todo.pop() {
        let (x, y) = (k % w, k / w);
        let neighbours = [
            (x > 0).then(|| k - 1),
            (x + 1 < w).then(|| k + 1),
            (y > 0).then(|| k - w),
            (y + 1 < h).then(|| k + w),
        ];
        for n in neighbours.into_iter().flatten() {
            if !reached[n] && alpha[n] > 0.0 {
                reached[n] = true;
                todo.push(n);
            }
        }
    }
    for (a, reached) in alpha.iter_mut().zip(reached) {
        if !reached {
            *a = 0.0;
        }
    }
}

/// How wide, on average, the soft band along the person's outline is, in pixels: unsure pixels
/// (neither backdrop nor person) per pixel of outline.
pub fn soft_edge_width(alpha: &[f32], w: usize) -> f32 {
    let unsure = alpha
        .iter()
        .filter(|&&a| a > t::MATTE_SURE && a < 1.0 - t::MATTE_SURE)
        .count();
    let side = |a: f32| a >= 0.5;
    // Pairs of neighbours on either side of the outline: along each row, then down each column
    // (each pixel and the one a row below it).
    let across: usize = alpha
        .chunks_exact(w.max(1))
        .map(|row| row.windows(2).filter(|p| side(p[0]) != side(p[1])).count())
        .sum();
    let down = alpha
        .iter()
        .zip(alpha.get(w..).unwrap_or_default())
        .filter(|&(&a, &b)| side(a) != side(b))
        .count();
    unsure as f32 / (across + down).max(1) as f32
}

/// Puts the person onto `colour`: `out = α·F + (1 − α)·colour`, where the foreground colour F of
/// a partly transparent edge pixel is solved from the photo with the local backdrop's colour
/// taken out (no fringe of foliage or wall on the new background). Where α is 1 the photo's pixel
/// is kept exactly, where it is 0 the pixel is `colour`.
pub fn composite(img: &mut Rgb, alpha: &[f32], colour: [u8; 3], face_width: f32) {
    let (w, h) = (img.width as usize, img.height as usize);
    // The local colours are smooth: estimated at half resolution.
    let r = ((face_width * t::MATTE_DECONTAMINATE_PER_FACE / 2.0).round() as usize).max(1);
    let px = &img.data;
    // Side by side, for the backdrop's weight 1 − α and the person's α²: the weight and the
    // weighted colour (4 + 4), and the colour itself.
    let weighted = Planes::<11>::halved(w, h, |k| {
        let (a, rgb) = (alpha[k], &px[k * 3..k * 3 + 3]);
        let (bg, fg) = (1.0 - a, a * a);
        let [r, g, b] = [0, 1, 2].map(|c| rgb[c] as f32);
        [
            bg,
            bg * r,
            bg * g,
            bg * b,
            fg,
            fg * r,
            fg * g,
            fg * b,
            r,
            g,
            b,
        ]
    });
    let means = weighted.box_mean(r);
    // The local backdrop's and person's colours: Σ w·v / Σ w over the window (the pixel's own
    // colour where the window has no weight).
    let local = Planes::<6> {
        w: weighted.w,
        h: weighted.h,
        v: means
            .v
            .iter()
            .zip(&weighted.v)
            .map(|(m, own)| {
                std::array::from_fn(|i| {
                    let (at, c) = (if i < 3 { 0 } else { 4 }, i % 3);
                    if m[at] > 1e-4 {
                        m[at + 1 + c] / m[at]
                    } else {
                        own[8 + c]
                    }
                })
            })
            .collect(),
    };
    for (k, &a) in alpha.iter().enumerate() {
        let px = &mut img.data[k * 3..k * 3 + 3];
        if a >= 1.0 {
            continue;
        }
        if a <= 0.0 {
            px.copy_from_slice(&colour);
            continue;
        }
        let near = local.sample_doubled(k % w, k / w);
        for c in 0..3 {
            let (i, b, local_f) = (px[c] as f32, near[c], near[3 + c]);
            // Solved where the pixel is mostly person; the nearby person's colour where it is
            // mostly backdrop (the solution is noise there).
            let solved = ((i - (1.0 - a) * b) / a).clamp(0.0, 255.0);
            let f = local_f + (solved - local_f) * a;
            let v = a * f + (1.0 - a) * colour[c] as f32;
            px[c] = (v + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_matches_a_direct_sum() {
        let (w, h, r) = (7, 5, 2);
        let v: Vec<f32> = (0..w * h).map(|k| ((k * 37) % 11) as f32).collect();
        let planes = Planes::<2> {
            w,
            h,
            v: v.iter().map(|&x| [x, -2.0 * x]).collect(),
        };
        let got: Vec<f32> = planes.box_mean(r).v.iter().map(|m| m[0]).collect();
        let other: Vec<f32> = planes.box_mean(r).v.iter().map(|m| m[1]).collect();
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        s += v[yy * w + xx];
                        n += 1.0;
                    }
                }
                assert!((got[y * w + x] - s / n).abs() < 1e-4);
                assert!((other[y * w + x] + 2.0 * s / n).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn guided_filter_snaps_a_blurred_edge_to_the_photo() {
        // Left half dark, right half light; the coarse mask's edge is 4 px too far left and soft.
        let (w, h) = (40u32, 10u32);
        let mut img = Rgb::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let v = if x < 20 { 40 } else { 220 };
                let k = ((y * w + x) * 3) as usize;
                img.data[k..k + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let ramp = |x: f32, _| ((x - 16.5) / 8.0 + 0.5).clamp(0.0, 1.0);
        let p = Coarse::at_half(w as usize, h as usize, ramp);
        let q = guided_filter(&img, &half_colours(&img), &p, 6, 1e-3);
        let row = &q[5 * w as usize..6 * w as usize];
        // The mask rises 0.125 per pixel; the filtered one steps at the photo's edge (x = 20)
        // and is sure of the person right after it.
        assert!(row[20] - row[19] > 0.4 && row[21] > 0.95, "{row:?}");
    }

    #[test]
    fn colour_decides_the_unsure_band() {
        // Person red on the left, backdrop green on the right, and between them a band the
        // segmentation is unsure of (0.5) whose pixels are red or green by turns.
        let (w, h) = (24usize, 6usize);
        let colour = |x: usize, y: usize| {
            let red = x < 8 || (x < 16 && (x + y).is_multiple_of(2));
            if red {
                [0.8, 0.2, 0.2]
            } else {
                [0.2, 0.7, 0.3]
            }
        };
        let half = Planes::<3> {
            w,
            h,
            v: (0..w * h).map(|k| colour(k % w, k / w)).collect(),
        };
        let coarse = |x: usize| match x {
            0..8 => 1.0,
            8..16 => 0.5,
            _ => 0.0,
        };
        let p = Coarse {
            w,
            h,
            v: (0..w * h).map(|k| [coarse(k % w)]).collect(),
        };
        let got = colour_posterior(&half, &p, 12);
        for k in 0..w * h {
            let (x, y) = (k % w, k / w);
            let v = got.v[k][0];
            match coarse(x) {
                0.5 if colour(x, y)[0] > 0.5 => assert!(v > 0.9, "({x}, {y}) {v}"),
                0.5 => assert!(v < 0.1, "({x}, {y}) {v}"),
                sure => assert!((v - sure).abs() < 0.02, "({x}, {y}) {v}"),
            }
        }
        // Without sure pixels of both sides within reach, nothing changes.
        assert_eq!(colour_posterior(&half, &p, 1).v[5 * w + 12], [0.5]);
    }

    #[test]
    fn hair_above_the_face_counts_as_person_sooner() {
        // A flat photo the segmentation is unsure of everywhere (halfway between the hair
        // curve's middle and the curve's): backdrop, except above the face box's bottom
        // (row 10), fading over half a face width.
        let (w, h, face_width) = (16u32, 30u32, 20.0);
        let mut img = Rgb::new(w, h);
        img.data.fill(128);
        let (lo, hi) = t::MATTE_CURVE;
        let unsure = (lo + hi - t::MATTE_HAIR_CURVE_SHIFT) * 0.5;
        // How far from 0.5 either side lands: a quarter of the shift over the curve's span.
        let off = t::MATTE_HAIR_CURVE_SHIFT / (hi - lo) * 0.25;
        let p = Coarse::at_half(w as usize, h as usize, |_, _| unsure);
        let alpha = refine(
            &img,
            &p,
            face_width,
            Some(FaceAt {
                middle: [8.0, 5.0],
                bottom: 10.0,
            }),
        );
        let column: Vec<f32> = (0..h as usize).map(|y| alpha[y * w as usize]).collect();
        assert!(column[..10].iter().all(|&a| a > 0.5 + off), "{column:?}");
        assert!(column[20..].iter().all(|&a| a < 0.5 - off), "{column:?}");
        assert!(column.windows(2).all(|p| p[1] <= p[0] + 1e-5), "{column:?}");
        let without_head = refine(&img, &p, face_width, None);
        assert!(
            without_head.iter().all(|&a| a < 0.5 - off),
            "{without_head:?}"
        );
    }

    #[test]
    fn only_the_person_joined_to_the_face_is_kept() {
        // 9×5: the applicant on the left (a soft edge at column 3), a blob apart from them on
        // the right (a logo), and a faint bridge (0.05) in the bottom row joining a third
        // blob to the applicant.
        let (w, h) = (9usize, 5usize);
        let mut alpha = vec![0f32; w * h];
        for y in 0..h {
            alpha[y * w..y * w + 3].fill(1.0);
            alpha[y * w + 3] = 0.3;
        }
        alpha[w + 6..w + 8].fill(0.9);
        alpha[2 * w + 6..2 * w + 8].fill(0.9);
        alpha[4 * w + 4..4 * w + 6].fill(0.05);
        alpha[4 * w + 6] = 0.8;
        let before = alpha.clone();
        keep_subject(&mut alpha, w, &[(0..2, 1..3)]);
        for (k, (&a, &b)) in alpha.iter().zip(&before).enumerate() {
            let apart = [w + 6, w + 7, 2 * w + 6, 2 * w + 7].contains(&k);
            assert_eq!(a, if apart { 0.0 } else { b }, "pixel {k}");
        }
        // A seed on no person changes nothing.
        let mut unchanged = before.clone();
        keep_subject(&mut unchanged, w, &[(4..6, 0..2)]);
        assert_eq!(unchanged, before);
        // A second seed keeps what it holds though nothing joins it to the first: a body the
        // matte cut from the face.
        let mut two = before.clone();
        keep_subject(&mut two, w, &[(0..2, 1..3), (6..8, 1..2)]);
        assert_eq!(two, before);
    }

    #[test]
    fn soft_edge_width_is_unsure_pixels_per_pixel_of_outline() {
        // 4×3: person on the left two columns, backdrop on the right, one unsure pixel (0.5)
        // in the middle row; the outline crosses each row once (3 pairs) and the unsure pixel's
        // row has it one step to the right, so its neighbours above and below differ (2 pairs).
        let alpha = [
            1.0, 1.0, 0.0, 0.0, //
            1.0, 1.0, 0.5, 0.0, //
            1.0, 1.0, 0.0, 0.0,
        ];
        assert_eq!(soft_edge_width(&alpha, 4), 1.0 / 5.0);
        assert_eq!(soft_edge_width(&[1.0; 6], 3), 0.0);
    }

    #[test]
    fn composite_keeps_opaque_pixels_and_paints_the_backdrop() {
        let mut img = Rgb::new(4, 1);
        img.data = vec![10, 200, 10, 10, 200, 10, 90, 60, 50, 90, 60, 50];
        let alpha = [0.0, 0.0, 1.0, 1.0];
        composite(&mut img, &alpha, [255, 255, 255], 2.0);
        assert_eq!(
            img.data,
            vec![255, 255, 255, 255, 255, 255, 90, 60, 50, 90, 60, 50]
        );
    }
}
