//! Server-side normalisation of an accepted photo into the document's photo: upright, eyes level,
//! cropped to the spec's head geometry, resized to its pixels and dpi, plain backdrop whitened,
//! JPEG within the spec's file-size range.

use crate::check::{people, scale_detection};
use crate::decode::{decode, DecodeError, Want};
use crate::detect::Detection;
use crate::geometry::{self, Crop};
use crate::raster::Rgb;
use crate::report::{Face, Report};
use crate::specs::Spec;
use crate::thresholds as t;
use serde::Serialize;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{0} frontal faces found; exactly one is needed")]
    FaceCount(usize),
    #[error("no JPEG quality gives a file within {min}–{max} bytes (smallest {smallest} bytes)")]
    FileSize { min: u32, max: u32, smallest: usize },
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// Why the backdrop was left as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub code: &'static str,
    pub message_zh: &'static str,
    pub message_en: &'static str,
}

/// The document photo and what was done to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normalised {
    #[serde(skip)]
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub dpi: u32,
    pub quality: u8,
    /// Degrees the photo was rotated to level the eyes.
    pub rotated_deg: f32,
    pub background_whitened: bool,
    pub background_note: Option<Note>,
}

const NOT_PLAIN: Note = Note {
    code: "background_not_plain",
    message_zh: "背景不够单一，未自动替换为白色背景",
    message_en: "The background is not plain enough to whiten safely; it was left as taken",
};
const TOUCHES_FACE: Note = Note {
    code: "background_like_face",
    message_zh: "背景颜色与人像过于接近，未自动替换为白色背景",
    message_en:
        "The background is too close to the person's colours to whiten safely; it was left as taken",
};

/// Normalises an encoded photo to `spec`. The photo should have passed [`crate::check`]; this
/// needs exactly one frontal face, and finds it again. With the check's report at hand,
/// [`normalise_checked`] skips that.
pub fn normalise(bytes: &[u8], spec: &Spec) -> Result<Normalised, NormaliseError> {
    // Find the face on an analysis-size decode, as the check does.
    let first = decode(bytes, Want::LongSide(t::ANALYSIS_MIN_LONG_SIDE))?;
    let (small, _) = first.image.clone().shrink_to(t::ANALYSIS_MAX_LONG_SIDE);
    let people = people(&small);
    let frontal: Vec<_> = people.iter().filter(|s| s.frontal()).collect();
    let [subject] = frontal[..] else {
        return Err(NormaliseError::FaceCount(frontal.len()));
    };
    let face = scale_detection(&subject.det, first.source_width as f32 / small.width as f32);
    let source = (first.source_width, first.source_height);
    render_around(bytes, spec, &face, source, Some(first.image))
}

/// Normalises a photo whose [`crate::check`] `report` passed, around the frontal face the check
/// found: the photo is decoded once, at the scale the crop needs.
pub fn normalise_checked(
    bytes: &[u8],
    spec: &Spec,
    report: &Report,
) -> Result<Normalised, NormaliseError> {
    let frontal: Vec<&Face> = report.faces.iter().filter(|f| f.frontal).collect();
    let [face] = frontal[..] else {
        return Err(NormaliseError::FaceCount(frontal.len()));
    };
    let source = (report.width, report.height);
    render_around(bytes, spec, &detection(face), source, None)
}

fn detection(face: &Face) -> Detection {
    let p = |p: [f64; 2]| [p[0] as f32, p[1] as f32];
    Detection {
        x: face.x as f32,
        y: face.y as f32,
        width: face.width as f32,
        height: face.height as f32,
        score: face.score as f32,
        right_eye: p(face.right_eye),
        left_eye: p(face.left_eye),
        nose: p(face.nose),
        mouth: p(face.mouth),
        right_ear: p(face.right_ear),
        left_ear: p(face.left_ear),
    }
}

/// The spec's photo around `face` (in pixels of the upright source, `source` wide and high);
/// `decoded` is a decode already at hand, used when it has enough pixels for the crop.
fn render_around(
    bytes: &[u8],
    spec: &Spec,
    face: &Detection,
    source: (u32, u32),
    decoded: Option<Rgb>,
) -> Result<Normalised, NormaliseError> {
    let crop = geometry::crop(face, spec, None);
    let long = source.0.max(source.1) as f32;
    let need = (long * crop.scale * t::NORMALISE_OVERSAMPLE).ceil() as u32;
    let image = match decoded {
        Some(image) if image.width.max(image.height) >= need.min(long as u32) => image,
        _ => decode(bytes, Want::LongSide(need))?.image,
    };
    let per_source = image.width as f32 / source.0 as f32;
    let mut out = render(&image, &crop, per_source, spec);

    let inner_face = inner_face_box(face, &crop, spec);
    let background_note = whiten(&mut out, inner_face, parse_hex(spec.background));
    let (jpeg, quality) = encode_in_range(&out, spec)?;
    Ok(Normalised {
        jpeg,
        width: out.width,
        height: out.height,
        dpi: spec.dpi,
        quality,
        rotated_deg: crop.angle_deg,
        background_whitened: background_note.is_none(),
        background_note,
    })
}

/// A smaller JPEG copy of the upright original (at most `max_pixels`), for the reviewers.
pub fn downscale_for_review(bytes: &[u8], max_pixels: u32) -> Result<Vec<u8>, NormaliseError> {
    let img = decode(bytes, Want::Pixels(max_pixels as u64))?.image;
    let (w, h) = (img.width as f32, img.height as f32);
    let f = (max_pixels as f32 / (w * h)).sqrt().min(1.0);
    let img = if f < 1.0 {
        img.resize(((w * f) as u32).max(1), ((h * f) as u32).max(1))
    } else {
        img
    };
    encode(&img, t::REVIEW_QUALITY, None)
}

/// Samples the crop into the spec's pixels: bilinear taps, `k`×`k` per pixel when shrinking.
fn render(image: &Rgb, crop: &Crop, per_source: f32, spec: &Spec) -> Rgb {
    let mut out = Rgb::new(spec.width_px, spec.height_px);
    let step = per_source / crop.scale; // decoded pixels per output pixel
    let k = (step.ceil() as u32).clamp(1, 4);
    let (w, h) = (image.width as f32, image.height as f32);
    let sample = |x: f32, y: f32| -> [f32; 3] {
        // Clamp to the edge: a sliver of frame outside the photo repeats the border.
        let x = (x - 0.5).clamp(0.0, w - 1.0);
        let y = (y - 0.5).clamp(0.0, h - 1.0);
        let (x0, y0) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = (
            (x0 + 1).min(image.width - 1),
            (y0 + 1).min(image.height - 1),
        );
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let (a, b, c, d) = (
            image.pixel(x0, y0),
            image.pixel(x1, y0),
            image.pixel(x0, y1),
            image.pixel(x1, y1),
        );
        std::array::from_fn(|i| {
            let top = a[i] as f32 * (1.0 - fx) + b[i] as f32 * fx;
            let bottom = c[i] as f32 * (1.0 - fx) + d[i] as f32 * fx;
            top * (1.0 - fy) + bottom * fy
        })
    };
    // The frame is an affine map: origin plus steps per output pixel, in decoded pixels.
    let o = crop.to_source(0.0, 0.0, spec);
    let (ux, uy) = (
        crop.to_source(1.0, 0.0, spec),
        crop.to_source(0.0, 1.0, spec),
    );
    let ex = [(ux[0] - o[0]) * per_source, (ux[1] - o[1]) * per_source];
    let ey = [(uy[0] - o[0]) * per_source, (uy[1] - o[1]) * per_source];
    let o = [o[0] * per_source, o[1] * per_source];
    for oy in 0..out.height {
        for ox in 0..out.width {
            let mut acc = [0f32; 3];
            for sy in 0..k {
                for sx in 0..k {
                    let px = ox as f32 + (sx as f32 + 0.5) / k as f32;
                    let py = oy as f32 + (sy as f32 + 0.5) / k as f32;
                    let v = sample(
                        o[0] + px * ex[0] + py * ey[0],
                        o[1] + px * ex[1] + py * ey[1],
                    );
                    for c in 0..3 {
                        acc[c] += v[c];
                    }
                }
            }
            let i = ((oy * out.width + ox) * 3) as usize;
            for (d, a) in out.data[i..i + 3].iter_mut().zip(acc) {
                *d = (a / (k * k) as f32 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// The inner face (brows to chin, cheek to cheek: skin for sure) in final-photo pixels, as
/// (x0, y0, x1, y1): the backdrop must never reach it. The box's corners may show backdrop.
fn inner_face_box(face: &Detection, crop: &Crop, spec: &Spec) -> [f32; 4] {
    let (x0, x1) = (face.x + face.width * 0.2, face.x + face.width * 0.8);
    let (y0, y1) = (face.y + face.height * 0.2, face.y + face.height * 0.9);
    let corners = [[x0, y0], [x1, y0], [x0, y1], [x1, y1]].map(|p| crop.from_source(p, spec));
    let xs = corners.map(|p| p[0]);
    let ys = corners.map(|p| p[1]);
    let min = |v: [f32; 4]| v.into_iter().fold(f32::MAX, f32::min);
    let max = |v: [f32; 4]| v.into_iter().fold(f32::MIN, f32::max);
    [min(xs), min(ys), max(xs), max(ys)]
}

fn parse_hex(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0xFF_FFFF);
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn dist(a: [u8; 3], b: [f32; 3]) -> f32 {
    (0..3)
        .map(|i| (a[i] as f32 - b[i]).abs())
        .fold(0.0, f32::max)
}

/// Difference in tint (red-green and blue-green), whatever the brightness: skin against a grey
/// wall differs here even where their brightness meets.
fn tint_dist(a: [u8; 3], b: [f32; 3]) -> f32 {
    let t = |p: [f32; 3]| (p[0] - p[1], p[2] - p[1]);
    let (a, b) = (t(a.map(|v| v as f32)), t(b));
    (a.0 - b.0).abs() + (a.1 - b.1).abs()
}

/// Replaces a plain backdrop with `colour`: flood-fills from the borders beside and above the head,
/// refuses when the backdrop is busy or the fill would reach the face, feathers the edge.
/// Returns why it did not whiten, or `None` when it did.
fn whiten(img: &mut Rgb, face: [f32; 4], colour: [u8; 3]) -> Option<Note> {
    let (w, h) = (img.width as usize, img.height as usize);
    // Seeds: the top row and both side columns down to the eyes' height (shoulders lie below).
    let seed_bottom = ((face[1] + face[3]) / 2.0).clamp(1.0, h as f32) as usize;
    let mut seeds: Vec<(usize, usize)> = (0..w).map(|x| (x, 0)).collect();
    for y in 0..seed_bottom {
        seeds.push((0, y));
        seeds.push((w - 1, y));
    }
    let median: [f32; 3] = std::array::from_fn(|c| {
        let mut v: Vec<u8> = seeds
            .iter()
            .map(|&(x, y)| img.pixel(x as u32, y as u32)[c])
            .collect();
        v.sort_unstable();
        v[v.len() / 2] as f32
    });
    let deviation = seeds
        .iter()
        .map(|&(x, y)| dist(img.pixel(x as u32, y as u32), median))
        .sum::<f32>()
        / seeds.len() as f32;
    if deviation > t::WHITEN_MAX_SEED_DEVIATION {
        return Some(NOT_PLAIN);
    }

    // A very even backdrop gets a tight tolerance, a softly lit one a wider one.
    let tolerance = (3.0 * deviation + 12.0).clamp(18.0, t::WHITEN_TOLERANCE);
    let backdrop =
        |p: [u8; 3]| dist(p, median) <= tolerance && tint_dist(p, median) <= t::WHITEN_TINT;
    let mut mask = vec![false; w * h];
    let mut queue: VecDeque<(usize, usize)> = seeds
        .into_iter()
        .filter(|&(x, y)| backdrop(img.pixel(x as u32, y as u32)))
        .collect();
    for &(x, y) in &queue {
        mask[y * w + x] = true;
    }
    let in_face = |x: usize, y: usize| {
        (face[0]..face[2]).contains(&(x as f32)) && (face[1]..face[3]).contains(&(y as f32))
    };
    while let Some((x, y)) = queue.pop_front() {
        if in_face(x, y) {
            return Some(TOUCHES_FACE);
        }
        let here = img.pixel(x as u32, y as u32);
        let here_f = here.map(|v| v as f32);
        let neighbours = [
            (x.wrapping_sub(1), y),
            (x + 1, y),
            (x, y.wrapping_sub(1)),
            (x, y + 1),
        ];
        for (nx, ny) in neighbours {
            if nx >= w || ny >= h || mask[ny * w + nx] {
                continue;
            }
            let p = img.pixel(nx as u32, ny as u32);
            if backdrop(p) && dist(p, here_f) <= t::WHITEN_STEP {
                mask[ny * w + nx] = true;
                queue.push_back((nx, ny));
            }
        }
    }
    let share = mask.iter().filter(|&&m| m).count() as f32 / mask.len() as f32;
    if share < t::WHITEN_MIN_SHARE {
        return Some(NOT_PLAIN);
    }

    // Feather: a 5×5 average of the mask is the blend weight, so hair edges keep a soft fringe.
    let alpha = box_blur(
        &box_blur(
            &mask.iter().map(|&m| m as u8 as f32).collect::<Vec<_>>(),
            w,
            h,
        ),
        w,
        h,
    );
    for (i, a) in alpha.iter().enumerate() {
        if *a > 0.0 {
            for (d, c) in img.data[i * 3..i * 3 + 3].iter_mut().zip(colour) {
                let v = *d as f32;
                *d = (v + (c as f32 - v) * a + 0.5) as u8;
            }
        }
    }
    None
}

/// 3×3 mean with the edges clamped.
fn box_blur(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            for dy in [-1isize, 0, 1] {
                for dx in [-1isize, 0, 1] {
                    let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                    let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                    s += v[yy * w + xx];
                }
            }
            out[y * w + x] = s / 9.0;
        }
    }
    out
}

fn encode(img: &Rgb, quality: u8, dpi: Option<u32>) -> Result<Vec<u8>, NormaliseError> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    if let Some(dpi) = dpi {
        enc.set_density(jpeg_encoder::PixelDensity::dpi(
            dpi.min(u16::MAX as u32) as u16
        ));
    }
    let (w, h) = (img.width as u16, img.height as u16);
    enc.encode(&img.data, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| NormaliseError::Encode(e.to_string()))?;
    Ok(out)
}

/// The highest quality whose file is within the spec's size range (binary search: size grows
/// with quality). When even the best quality is below the minimum, that best file is returned:
/// the standards give the range as what files "typically" weigh, and padding would add nothing.
fn encode_in_range(img: &Rgb, spec: &Spec) -> Result<(Vec<u8>, u8), NormaliseError> {
    let max = spec.file_size_bytes.max as usize;
    let (mut lo, mut hi) = t::JPEG_QUALITY_RANGE;
    let mut best = encode(img, lo, Some(spec.dpi))?;
    if best.len() > max {
        return Err(NormaliseError::FileSize {
            min: spec.file_size_bytes.min,
            max: spec.file_size_bytes.max,
            smallest: best.len(),
        });
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let jpeg = encode(img, mid, Some(spec.dpi))?;
        if jpeg.len() <= max {
            lo = mid;
            best = jpeg;
        } else {
            hi = mid - 1;
        }
    }
    Ok((best, lo))
}
