//! From the segmentation's coarse person probability to a soft matte that follows the photo's
//! own edges: a colour guided filter (He, Sun and Tang) on the photo, at the resolution it is
//! used at (the document photo's crop), then a contrast curve that keeps unsure edges soft.
//! Also the edge-colour decontamination used when the backdrop is replaced.

use crate::raster::Rgb;
use crate::thresholds as t;

/// Mean over a (2r+1)² window, clamped at the borders (the window shrinks there), by running sums:
/// the cost does not depend on `r`.
fn box_mean(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut rows = vec![0f32; v.len()];
    let mut prefix = vec![0f32; w.max(h) + 1];
    for y in 0..h {
        let row = &v[y * w..(y + 1) * w];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + row[x];
        }
        for x in 0..w {
            let (lo, hi) = (x.saturating_sub(r), (x + r + 1).min(w));
            rows[y * w + x] = (prefix[hi] - prefix[lo]) / (hi - lo) as f32;
        }
    }
    let mut out = vec![0f32; v.len()];
    // Columns: a running sum per column, row by row (reads stay in order).
    let mut sum = vec![0f32; w];
    let mut count = 0usize;
    let (mut top, mut bottom) = (0usize, 0usize); // rows [top, bottom) are in the sum
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(r), (y + r + 1).min(h));
        while bottom < hi {
            for (s, v) in sum.iter_mut().zip(&rows[bottom * w..(bottom + 1) * w]) {
                *s += v;
            }
            bottom += 1;
            count += 1;
        }
        while top < lo {
            for (s, v) in sum.iter_mut().zip(&rows[top * w..(top + 1) * w]) {
                *s -= v;
            }
            top += 1;
            count -= 1;
        }
        for (o, s) in out[y * w..(y + 1) * w].iter_mut().zip(&sum) {
            *o = s / count as f32;
        }
    }
    out
}

/// A plane of `w`×`h` values.
struct Plane {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Plane {
    /// Halved in both directions by 2×2 averages (an odd last row or column is averaged alone).
    fn halve(&self) -> Plane {
        let (w, h) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut v = Vec::with_capacity(w * h);
        for y in 0..h {
            let (y0, y1) = (2 * y, (2 * y + 1).min(self.h - 1));
            for x in 0..w {
                let (x0, x1) = (2 * x, (2 * x + 1).min(self.w - 1));
                let at = |x: usize, y: usize| self.v[y * self.w + x];
                v.push((at(x0, y0) + at(x1, y0) + at(x0, y1) + at(x1, y1)) / 4.0);
            }
        }
        Plane { w, h, v }
    }

    /// Sampled bilinearly at full-size pixel (x, y) when this plane is the halved one.
    fn sample_doubled(&self, x: usize, y: usize) -> f32 {
        let fx = ((x as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (self.w - 1) as f32);
        let fy = ((y as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (fx as usize, fy as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let at = |x: usize, y: usize| self.v[y * self.w + x];
        let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * tx;
        let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * tx;
        top + (bottom - top) * ty
    }
}

/// The colour guided filter of `p` with `guide` (same size), window radius `r`, regularisation
/// `eps` (on colours in [0, 1]): `p` becomes locally a linear function of the guide's colours, so
/// its edges move onto the photo's. The linear coefficients are smooth, so they are computed at
/// half resolution (He and Sun's fast guided filter) and applied to the full-size guide.
pub fn guided_filter(guide: &Rgb, p: &[f32], r: usize, eps: f32) -> Vec<f32> {
    let (w, h) = (guide.width as usize, guide.height as usize);
    let full: [Vec<f32>; 3] = std::array::from_fn(|c| {
        guide
            .data
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| v as f32 / 255.0)
            .collect()
    });
    let plane = |v: &[f32]| Plane {
        w,
        h,
        v: v.to_vec(),
    };
    let i = [0, 1, 2].map(|c| plane(&full[c]).halve());
    let p = plane(p).halve();
    let (hw, hh, r) = (p.w, p.h, (r / 2).max(1));
    let n = hw * hh;
    let mean = |v: &[f32]| box_mean(v, hw, hh, r);
    let product = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).collect::<Vec<_>>();
    let mi = [mean(&i[0].v), mean(&i[1].v), mean(&i[2].v)];
    let mp = mean(&p.v);
    let mip: Vec<Vec<f32>> = (0..3).map(|c| mean(&product(&i[c].v, &p.v))).collect();
    // The guide's covariance, upper triangle: rr, rg, rb, gg, gb, bb.
    let pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];
    let mii: Vec<Vec<f32>> = pairs
        .iter()
        .map(|&(a, b)| mean(&product(&i[a].v, &i[b].v)))
        .collect();
    let mut a = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    let mut b = vec![0f32; n];
    for k in 0..n {
        let m = [mi[0][k], mi[1][k], mi[2][k]];
        let cov = [0, 1, 2].map(|c| mip[c][k] - m[c] * mp[k]);
        let s = |q: usize| {
            let (x, y) = pairs[q];
            mii[q][k] - m[x] * m[y]
        };
        let (rr, rg, rb, gg, gb, bb) = (s(0) + eps, s(1), s(2), s(3) + eps, s(4), s(5) + eps);
        // Inverse of the symmetric 3×3 by cofactors.
        let (c00, c01, c02) = (gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg);
        let (c11, c12, c22) = (rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg);
        let det = rr * c00 + rg * c01 + rb * c02;
        let ak = [
            (c00 * cov[0] + c01 * cov[1] + c02 * cov[2]) / det,
            (c01 * cov[0] + c11 * cov[1] + c12 * cov[2]) / det,
            (c02 * cov[0] + c12 * cov[1] + c22 * cov[2]) / det,
        ];
        for c in 0..3 {
            a[c][k] = ak[c];
        }
        b[k] = mp[k] - ak[0] * m[0] - ak[1] * m[1] - ak[2] * m[2];
    }
    let smooth = |v: &[f32]| Plane {
        w: hw,
        h: hh,
        v: mean(v),
    };
    let ma = [smooth(&a[0]), smooth(&a[1]), smooth(&a[2])];
    let mb = smooth(&b);
    let mut q = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            q.push(
                ma[0].sample_doubled(x, y) * full[0][k]
                    + ma[1].sample_doubled(x, y) * full[1][k]
                    + ma[2].sample_doubled(x, y) * full[2][k]
                    + mb.sample_doubled(x, y),
            );
        }
    }
    q
}

/// The soft matte (0 = backdrop, 1 = person) from the coarse probability `p` (already at the
/// guide's size), for a face `face_width` pixels wide in the guide: the filter's window scales
/// with the face, so the result is the same at any resolution.
pub fn refine(guide: &Rgb, p: &[f32], face_width: f32) -> Vec<f32> {
    let r = ((face_width * t::MATTE_RADIUS_PER_FACE).round() as usize).max(1);
    let q = guided_filter(guide, p, r, t::MATTE_EPS);
    let (lo, hi) = t::MATTE_CURVE;
    q.into_iter()
        .map(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
        .collect()
}

/// How wide, on average, the soft band along the person's outline is, in pixels: unsure pixels
/// (neither backdrop nor person) per pixel of outline.
pub fn soft_edge_width(alpha: &[f32], w: usize) -> f32 {
    let unsure = alpha
        .iter()
        .filter(|&&a| a > t::MATTE_SURE && a < 1.0 - t::MATTE_SURE)
        .count();
    let side = |a: f32| a >= 0.5;
    let mut outline = 0usize;
    for (k, &a) in alpha.iter().enumerate() {
        let right = (k % w + 1 < w).then(|| alpha[k + 1]);
        let below = alpha.get(k + w).copied();
        outline += [right, below]
            .into_iter()
            .flatten()
            .filter(|&n| side(n) != side(a))
            .count();
    }
    unsure as f32 / outline.max(1) as f32
}

/// Puts the person onto `colour`: `out = α·F + (1 − α)·colour`, where the foreground colour F of
/// a partly transparent edge pixel is solved from the photo with the local backdrop's colour
/// taken out (no fringe of foliage or wall on the new background). Where α is 1 the photo's pixel
/// is kept exactly.
pub fn composite(img: &mut Rgb, alpha: &[f32], colour: [u8; 3], face_width: f32) {
    let (w, h) = (img.width as usize, img.height as usize);
    // The local colours are smooth: estimated at half resolution.
    let r = ((face_width * t::MATTE_DECONTAMINATE_PER_FACE / 2.0).round() as usize).max(1);
    let half = |v: Vec<f32>| Plane { w, h, v }.halve();
    let weights_bg = half(alpha.iter().map(|a| 1.0 - a).collect());
    let weights_fg = half(alpha.iter().map(|a| a * a).collect());
    let (hw, hh) = (weights_bg.w, weights_bg.h);
    // Weighted local means of each channel: Σ w·v / Σ w over the window, NaN-free where Σ w > 0.
    let local = |weights: &Plane, c: usize| -> Plane {
        let ch = half(
            img.data
                .iter()
                .skip(c)
                .step_by(3)
                .map(|&v| v as f32)
                .collect(),
        );
        let num = box_mean(
            &ch.v
                .iter()
                .zip(&weights.v)
                .map(|(v, w)| v * w)
                .collect::<Vec<_>>(),
            hw,
            hh,
            r,
        );
        let den = box_mean(&weights.v, hw, hh, r);
        let v = num
            .iter()
            .zip(&den)
            .zip(&ch.v)
            .map(|((n, d), own)| if *d > 1e-4 { n / d } else { *own })
            .collect();
        Plane { w: hw, h: hh, v }
    };
    let bg: [Plane; 3] = std::array::from_fn(|c| local(&weights_bg, c));
    let fg: [Plane; 3] = std::array::from_fn(|c| local(&weights_fg, c));
    let colour = colour.map(|v| v as f32);
    for (k, &a) in alpha.iter().enumerate() {
        if a >= 1.0 {
            continue;
        }
        let (x, y) = (k % w, k / w);
        let px = &mut img.data[k * 3..k * 3 + 3];
        for c in 0..3 {
            let i = px[c] as f32;
            let b = bg[c].sample_doubled(x, y);
            let local_f = fg[c].sample_doubled(x, y);
            // Solved where the pixel is mostly person; the nearby person's colour where it is
            // mostly backdrop (the solution is noise there).
            let solved = ((i - (1.0 - a) * b) / a.max(1e-3)).clamp(0.0, 255.0);
            let f = local_f + (solved - local_f) * a;
            let v = a * f + (1.0 - a) * colour[c];
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
        let got = box_mean(&v, w, h, r);
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
        let p: Vec<f32> = (0..w * h)
            .map(|k| ((((k % w) as f32) - 16.0) / 8.0 + 0.5).clamp(0.0, 1.0))
            .collect();
        let q = guided_filter(&img, &p, 6, 1e-3);
        let row = &q[5 * w as usize..6 * w as usize];
        // The mask rises 0.125 per pixel; the filtered one steps at the photo's edge (x = 20)
        // and is sure of the person right after it.
        assert!(row[20] - row[19] > 0.4 && row[21] > 0.95, "{row:?}");
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
