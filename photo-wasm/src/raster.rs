//! An 8-bit RGB raster and the few pixel operations the checks need.

/// Interleaved 8-bit RGB, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(width: u32, height: u32) -> Rgb {
        Rgb {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
        }
    }

    /// RGBA composited over white: a transparent background is what a white ID background means.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Rgb {
        let mut data = vec![0; rgba.len() / 4 * 3];
        for (out, p) in data.chunks_exact_mut(3).zip(rgba.chunks_exact(4)) {
            out.copy_from_slice(&Rgb::over_white([p[0], p[1], p[2], p[3]]));
        }
        Rgb {
            width,
            height,
            data,
        }
    }

    /// One RGBA pixel composited over white.
    pub fn over_white([r, g, b, a]: [u8; 4]) -> [u8; 3] {
        let rgb = [r, g, b];
        // A canvas photo is opaque: no division per channel then (slow in WASM).
        match a {
            255 => rgb,
            0 => [255; 3],
            a => rgb.map(|c| {
                let a = a as u32;
                ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8
            }),
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// The `width`×`height` window at (x0, y0), which may reach outside the image (black there).
    pub fn crop(&self, x0: i64, y0: i64, width: u32, height: u32) -> Rgb {
        let mut out = Rgb::new(width, height);
        for y in 0..height as i64 {
            let sy = y0 + y;
            if !(0..self.height as i64).contains(&sy) {
                continue;
            }
            // The overlapping span of this row.
            let (from, to) = (x0.max(0), (x0 + width as i64).min(self.width as i64));
            if from >= to {
                continue;
            }
            let src = ((sy * self.width as i64 + from) * 3) as usize;
            let dst = ((y * width as i64 + from - x0) * 3) as usize;
            let n = ((to - from) * 3) as usize;
            out.data[dst..dst + n].copy_from_slice(&self.data[src..src + n]);
        }
        out
    }

    /// Resized with a tent filter: bilinear when enlarging, an anti-aliased average when shrinking.
    /// Large reductions first average whole blocks (cheap, exact) down to about twice the target.
    pub fn resize(&self, width: u32, height: u32) -> Rgb {
        let (w, h) = (width.max(1), height.max(1));
        let k = (self.width / w).min(self.height / h) / 2;
        if k >= 2 {
            return self.box_shrink(k).resize(w, h);
        }
        let xs = weights(self.width, w);
        let ys = weights(self.height, h);
        // Horizontal pass into f32 rows, then vertical pass. Only the bands of source rows the
        // current output row reads are kept (a ring of them, each filtered once): a few rows that
        // stay in cache instead of the whole filtered image, a fresh multi-megabyte buffer every call.
        let row_len = w as usize * 3;
        let window = ys.iter().map(|(_, ws)| ws.len()).max().unwrap_or(1);
        let bands = ring_bands(window);
        let mut filtered = vec![0f32; bands * BAND * row_len];
        // The band each ring slot holds.
        let mut held = vec![usize::MAX; bands];
        let mut interleaved = vec![0f32; self.width as usize * 3 * BAND];
        let mut out = Rgb::new(w, h);
        // Whole rows at a time: the source rows are read in order, not a column at a time.
        let mut acc = vec![0f32; row_len];
        for (oy, (start, ws)) in ys.iter().enumerate() {
            for band in start / BAND..=(start + ws.len() - 1) / BAND {
                let slot = band % bands;
                if held[slot] != band {
                    held[slot] = band;
                    let dst = &mut filtered[slot * BAND * row_len..][..BAND * row_len];
                    self.filter_band(band, &xs, &mut interleaved, dst);
                }
            }
            for (k, wt) in ws.iter().enumerate() {
                let y = start + k;
                let src = &filtered[((y / BAND) % bands * BAND + y % BAND) * row_len..][..row_len];
                // The first tap's products start the sums (0 + x is x for these products, none
                // of them -0): no zeroing first.
                if k == 0 {
                    for (a, v) in acc.iter_mut().zip(src) {
                        *a = v * wt;
                    }
                } else {
                    for (a, v) in acc.iter_mut().zip(src) {
                        *a += v * wt;
                    }
                }
            }
            let dst = &mut out.data[oy * row_len..(oy + 1) * row_len];
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = (a + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    /// The horizontal pass of [`Rgb::resize`] over source band `band` (rows `band·BAND` on, as
    /// many as the image has) with the taps `xs`, into `dst` (`BAND` rows of the output's width).
    /// The band's values are first interleaved (`interleaved`: each value of the row, then the
    /// next, of its `BAND` rows side by side), so each tap scales one value of every row of the
    /// band at once (vectorises); each sum keeps the taps' order, so the bits are those of a row
    /// at a time.
    fn filter_band(
        &self,
        band: usize,
        xs: &[(usize, Vec<f32>)],
        interleaved: &mut [f32],
        dst: &mut [f32],
    ) {
        let row = self.width as usize * 3;
        let rows = (self.height as usize - band * BAND).min(BAND);
        // Past the image's last row the band repeats it (filtered, never stored).
        let src: [&[u8]; BAND] = std::array::from_fn(|r| {
            let y = (band * BAND + r).min(self.height as usize - 1);
            &self.data[y * row..][..row]
        });
        for (i, value) in interleaved.chunks_exact_mut(BAND).enumerate() {
            for (v, src) in value.iter_mut().zip(&src) {
                *v = src[i] as f32;
            }
        }
        let row_len = xs.len() * 3;
        for (x, (start, ws)) in xs.iter().enumerate() {
            // Channel-major: the band's red values, then green, then blue.
            let mut sum = [0f32; 3 * BAND];
            for (pixel, wt) in interleaved[start * 3 * BAND..]
                .chunks_exact(3 * BAND)
                .zip(ws)
            {
                for (s, p) in sum.iter_mut().zip(pixel) {
                    *s += p * wt;
                }
            }
            for (r, d) in dst.chunks_exact_mut(row_len).take(rows).enumerate() {
                for c in 0..3 {
                    d[x * 3 + c] = sum[c * BAND + r];
                }
            }
        }
    }

    /// Averages `k`×`k` blocks (the right and bottom remainders are dropped). Each band of `k`
    /// rows is summed down its columns first (contiguous, vectorised), then across each block:
    /// integer sums, so the order does not change them.
    fn box_shrink(&self, k: u32) -> Rgb {
        let (w, h) = (self.width / k, self.height / k);
        let (k, n) = (k as usize, k * k);
        let mut out = Rgb::new(w, h);
        let src_len = self.width as usize * 3;
        let mut columns = vec![0u32; w as usize * k * 3];
        for (oy, dst) in out.data.chunks_exact_mut(w as usize * 3).enumerate() {
            columns.iter_mut().for_each(|v| *v = 0);
            for y in oy * k..(oy + 1) * k {
                let src = &self.data[y * src_len..][..columns.len()];
                for (c, &v) in columns.iter_mut().zip(src) {
                    *c += v as u32;
                }
            }
            for (d, block) in dst.chunks_exact_mut(3).zip(columns.chunks_exact(k * 3)) {
                let mut sum = [0u32; 3];
                for p in block.chunks_exact(3) {
                    sum[0] += p[0];
                    sum[1] += p[1];
                    sum[2] += p[2];
                }
                for (d, s) in d.iter_mut().zip(sum) {
                    *d = ((s + n / 2) / n) as u8;
                }
            }
        }
        out
    }

    /// Shrinks so the long side is at most `max_long_side`; returns the image and the factor
    /// (source pixels per returned pixel, ≥ 1).
    pub fn shrink_to(self, max_long_side: u32) -> (Rgb, f32) {
        let Some((w, h)) = shrunk_size(self.width, self.height, max_long_side) else {
            return (self, 1.0);
        };
        let out = self.resize(w, h);
        (out, self.width as f32 / w as f32)
    }

    /// Applies an EXIF orientation (1–8) so the picture stands upright.
    pub fn orient(self, orientation: u16) -> Rgb {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h) = (self.width, self.height);
        let swap = orientation >= 5;
        let (ow, oh) = if swap { (h, w) } else { (w, h) };
        let mut out = Rgb::new(ow, oh);
        for oy in 0..oh {
            for ox in 0..ow {
                // Source pixel for each output pixel, per the EXIF definitions.
                let (sx, sy) = match orientation {
                    2 => (w - 1 - ox, oy),
                    3 => (w - 1 - ox, h - 1 - oy),
                    4 => (ox, h - 1 - oy),
                    5 => (oy, ox),
                    6 => (oy, h - 1 - ox),
                    7 => (w - 1 - oy, h - 1 - ox),
                    _ => (w - 1 - oy, ox),
                };
                let s = (sy as usize * w as usize + sx as usize) * 3;
                let d = (oy as usize * ow as usize + ox as usize) * 3;
                out.data[d..d + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        out
    }
}

/// The size [`Rgb::shrink_to`] gives a `width`×`height` image; `None` when it is small enough.
pub fn shrunk_size(width: u32, height: u32, max_long_side: u32) -> Option<(u32, u32)> {
    let long = width.max(height);
    if long <= max_long_side {
        return None;
    }
    let f = long as f32 / max_long_side as f32;
    let w = ((width as f32 / f).round() as u32).max(1);
    let h = ((height as f32 / f).round() as u32).max(1);
    Some((w, h))
}

/// The bytes [`Rgb::resize`] from `width`×`height` to `w`×`h` allocates (its block average,
/// its `f32` buffers, at most a window of filtered rows, and the result), so a caller can budget
/// for it.
pub fn resize_bytes(width: u32, height: u32, w: u32, h: u32) -> u64 {
    let (w, h) = (w.max(1), h.max(1));
    let k = (width / w).min(height / h) / 2;
    if k >= 2 {
        let (bw, bh) = (width / k, height / k);
        return bw as u64 * bh as u64 * 3 + bw as u64 * 12 + resize_bytes(bw, bh, w, h);
    }
    // A tent of half-width `support` covers at most 2·support + 2 source rows.
    let support = (height as f32 / h as f32).max(1.0);
    let window = ((2.0 * support) as usize + 2).min(height as usize);
    let bands = ring_bands(window) as u64;
    let (width, w, h) = (width as u64, w as u64, h as u64);
    let band = BAND as u64;
    bands * (band * w * 12 + 8) + width * 12 * band + w * 12 + w * h * 3
}

/// Source rows [`Rgb::resize`] filters across together.
const BAND: usize = 8;

/// The bands [`Rgb::resize`] keeps for a vertical tap `window` rows long: any `window` rows lie
/// within that many bands.
fn ring_bands(window: usize) -> usize {
    window.div_ceil(BAND) + 1
}

/// BT.601 luma in integers, identical on every target.
pub fn luma(p: [u8; 3]) -> u8 {
    ((77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32 + 128) >> 8) as u8
}

/// Tent-filter taps for each output coordinate: (first source index, weights summing to 1).
fn weights(src: u32, dst: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f32 / dst as f32;
    let support = scale.max(1.0);
    (0..dst)
        .map(|o| {
            let center = (o as f32 + 0.5) * scale;
            let lo = ((center - support).floor().max(0.0)) as usize;
            let hi = ((center + support).ceil() as usize).min(src as usize);
            let mut ws: Vec<f32> = (lo..hi)
                .map(|s| (1.0 - ((s as f32 + 0.5 - center) / support).abs()).max(0.0))
                .collect();
            let sum: f32 = ws.iter().sum();
            if sum > 0.0 {
                ws.iter_mut().for_each(|w| *w /= sum);
            } else {
                // Degenerate 1-pixel source: take the nearest pixel.
                ws = vec![1.0];
                return ((center as usize).min(src as usize - 1), ws);
            }
            (lo, ws)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_round_trips() {
        let mut img = Rgb::new(3, 2);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = i as u8;
        }
        // 6 (rotate 90° clockwise to view) undone by 8 (rotate counter-clockwise).
        assert_eq!(img.clone().orient(6).orient(8), img);
        assert_eq!(img.clone().orient(3).orient(3), img);
        assert_eq!(img.clone().orient(6).width, 2);
    }

    #[test]
    fn resize_keeps_flat_colour_and_size() {
        let mut img = Rgb::new(10, 7);
        img.data.iter_mut().for_each(|v| *v = 200);
        for (w, h) in [(3, 2), (25, 30), (1, 1)] {
            let r = img.resize(w, h);
            assert_eq!((r.width, r.height), (w, h));
            assert!(r.data.iter().all(|&v| v == 200));
        }
    }

    #[test]
    fn box_shrink_averages_each_block_rounded() {
        let mut img = Rgb::new(11, 7);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i * 37 % 256) as u8;
        }
        let small = img.box_shrink(3);
        assert_eq!((small.width, small.height), (3, 2));
        for (oy, ox, c) in
            (0..2).flat_map(|y| (0..3).flat_map(move |x| (0..3).map(move |c| (y, x, c))))
        {
            let sum: u32 = (0..9)
                .map(|i| img.pixel(ox * 3 + i % 3, oy * 3 + i / 3)[c as usize] as u32)
                .sum();
            assert_eq!(
                small.pixel(ox, oy)[c as usize] as u32,
                (sum + 4) / 9,
                "{ox},{oy},{c}"
            );
        }
    }

    #[test]
    fn crop_pads_outside_with_black() {
        let mut img = Rgb::new(2, 2);
        img.data.iter_mut().for_each(|v| *v = 9);
        let c = img.crop(-1, 1, 3, 2);
        assert_eq!(
            c.data,
            vec![0, 0, 0, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn alpha_composites_over_white() {
        let img = Rgb::from_rgba(2, 1, &[0, 0, 0, 0, 10, 20, 30, 255]);
        assert_eq!(img.data, vec![255, 255, 255, 10, 20, 30]);
    }
}
