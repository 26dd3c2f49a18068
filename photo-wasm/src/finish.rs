//! The finished document photo from upright pixels: cropped and levelled to the spec's head
//! geometry, resampled to its pixels, the person cut out with a soft matte and put on the spec's
//! background colour. The same code runs on the server (after decoding the upload) and in
//! WebAssembly on the phone (on canvas pixels), so the resident sees what the reviewer will get.

use crate::detect::Detection;
use crate::geometry::{self, Crop};
use crate::matte::{self, Coarse, FaceAt};
use crate::raster::Rgb;
use crate::report::Face;
use crate::segment::{Mask, Person, Segmentation, Segmenter};
use crate::specs::Spec;
use crate::thresholds as t;
use serde::Serialize;

/// Something the reviewer should know about the background replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub code: &'static str,
    pub message_zh: &'static str,
    pub message_en: &'static str,
}

const SOFT_EDGE: Note = Note {
    code: "background_soft_edge",
    message_zh: "部分人像边缘与背景颜色接近，已保留柔和过渡，请核对边缘",
    message_en: "Parts of the outline blend into the background; that edge was kept soft: check it",
};
const NO_PERSON: Note = Note {
    code: "background_no_person",
    message_zh: "未能可靠识别人像轮廓，背景保持原样",
    message_en:
        "The person's outline could not be found reliably; the background was left as taken",
};

/// What was done to the photo (serialised into the server's answer and the WASM export's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinishReport {
    pub spec_id: &'static str,
    pub width: u32,
    pub height: u32,
    /// Degrees the photo was rotated to level the eyes.
    pub rotated_deg: f32,
    /// The spec's background colour, `#rrggbb`.
    pub background: &'static str,
    pub background_replaced: bool,
    /// Mean width in pixels of the soft band along the person's outline.
    pub soft_edge_px: f32,
    pub note: Option<Note>,
}

/// The document photo's pixels and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub image: Rgb,
    pub report: FinishReport,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinishError {
    #[error("the segmentation model is not loaded (load_model \"selfie_segmentation\")")]
    NoModel,
}

/// The spec's photo around `face` (in pixels of `image`, the upright photo at any scale), cut out
/// along `whole`, the segmentation of the whole photo the check measured it with
/// ([`Segmenter::segmentation`] at any scale: it covers the photo whatever its size), and a
/// second look ([`Person`]).
pub fn finish(
    image: &Rgb,
    face: &Detection,
    whole: &Segmentation,
    spec: &'static Spec,
) -> Result<Finished, FinishError> {
    let segmenter = Segmenter::shared().ok_or(FinishError::NoModel)?;
    let crop = geometry::crop(face, spec, None);
    let mut out = crop_pixels(image, face, spec);
    let coarse = render_mask(
        &Person::new(&segmenter, image, Some(face), whole),
        &crop,
        spec,
    );
    let face_width = face.width * crop.scale;
    let ellipse = inner_face(face, &crop, spec);

    let (w, h) = (out.width as usize, out.height as usize);
    // The coarse probability is at half resolution: its points are the centres of 2×2 blocks.
    let at_face: Vec<f32> = coarse
        .v
        .iter()
        .enumerate()
        .filter(|&(k, _)| {
            let (x, y) = (k % coarse.w, k / coarse.w);
            ellipse.contains(2.0 * x as f32 + 1.0, 2.0 * y as f32 + 1.0)
        })
        .map(|(_, &[p])| p)
        .collect();
    let person_at_face = at_face.iter().sum::<f32>() / at_face.len().max(1) as f32;
    let mut report = FinishReport {
        spec_id: spec.id,
        width: out.width,
        height: out.height,
        rotated_deg: crop.angle_deg,
        background: spec.background,
        background_replaced: false,
        soft_edge_px: 0.0,
        note: None,
    };
    if person_at_face < t::MATTE_MIN_PERSON_AT_FACE {
        report.note = Some(NO_PERSON);
        return Ok(Finished { image: out, report });
    }
    let at = |down: f32| crop.from_source([face.x + face.width * 0.5, face.y + down], spec);
    let face_at = FaceAt {
        middle: at(face.height * 0.5),
        bottom: at(face.height)[1],
    };
    let mut alpha = matte::refine(&out, &coarse, face_width, Some(face_at));
    // The face itself is never touched, whatever the matte says.
    for (x, y) in ellipse.pixels(w, h) {
        alpha[y * w + x] = 1.0;
    }
    let soft = matte::soft_edge_width(&alpha, w);
    matte::composite(&mut out, &alpha, parse_hex(spec.background), face_width);
    report.background_replaced = true;
    report.soft_edge_px = crate::report::round(soft) as f32;
    if soft > t::MATTE_SOFT_EDGE_PX {
        report.note = Some(SOFT_EDGE);
    }
    Ok(Finished { image: out, report })
}

/// The person matte over the whole photo at its own size (0–255, 255 = person), from `whole`
/// and a second look around `face` (as for [`finish`]), refined at the resolution the document
/// photo sees `face` at (never above the photo's own). Without a face it is the whole photo's
/// two looks ([`Segmentation::matte`]) refined at the photo's own size for a face a quarter of
/// its short side wide, as in a typical portrait.
pub fn photo_matte(
    image: &Rgb,
    face: Option<&Detection>,
    whole: &Segmentation,
    spec: &Spec,
) -> Result<Vec<u8>, FinishError> {
    let segmenter = Segmenter::shared().ok_or(FinishError::NoModel)?;
    let (scale, face_width) = match face {
        Some(face) => (geometry::crop(face, spec, None).scale.min(1.0), face.width),
        None => (1.0, image.width.min(image.height) as f32 / 4.0),
    };
    let person = Person::new(&segmenter, image, face, whole);
    let (w, h) = (
        ((image.width as f32 * scale).round() as u32).max(1),
        ((image.height as f32 * scale).round() as u32).max(1),
    );
    let guide = image.resize(w, h);
    let (fx, fy) = (
        image.width as f32 / w as f32,
        image.height as f32 / h as f32,
    );
    let coarse = Coarse::at_half(w as usize, h as usize, |x, y| person.sample(x * fx, y * fy));
    let face_at = face.map(|f| FaceAt {
        middle: [(f.x + f.width * 0.5) / fx, (f.y + f.height * 0.5) / fy],
        bottom: (f.y + f.height) / fy,
    });
    let alpha = matte::refine(&guide, &coarse, face_width * scale, face_at);
    let alpha = Mask {
        width: w,
        height: h,
        data: alpha,
    }
    .resize(image.width, image.height);
    Ok(alpha
        .data
        .iter()
        .map(|a| (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8)
        .collect())
}

/// An ellipse inside the inner face (brows to chin, cheek to cheek) in final-photo pixels.
struct Ellipse {
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
}

impl Ellipse {
    fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = ((x - self.cx) / self.rx, (y - self.cy) / self.ry);
        dx * dx + dy * dy <= 1.0
    }

    /// The pixels of a `w`×`h` grid whose centres it contains.
    fn pixels(&self, w: usize, h: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let span = |c: f32, r: f32, n: usize| {
            ((c - r).floor().max(0.0) as usize)..((c + r).ceil().max(0.0) as usize).min(n)
        };
        span(self.cy, self.ry, h)
            .flat_map(move |y| span(self.cx, self.rx, w).map(move |x| (x, y)))
            .filter(|&(x, y)| self.contains(x as f32 + 0.5, y as f32 + 0.5))
    }
}

fn inner_face(face: &Detection, crop: &Crop, spec: &Spec) -> Ellipse {
    let centre = crop.from_source(
        [
            face.x + face.width * 0.5,
            face.y + face.height * t::MATTE_FACE_CENTRE,
        ],
        spec,
    );
    Ellipse {
        cx: centre[0],
        cy: centre[1],
        rx: face.width * t::MATTE_FACE_HALF_WIDTH * crop.scale,
        ry: face.height * t::MATTE_FACE_HALF_HEIGHT * crop.scale,
    }
}

/// The affine map from final-photo pixels to `image` pixels: origin and the steps of one pixel
/// right and one down.
fn frame(crop: &Crop, spec: &Spec) -> ([f32; 2], [f32; 2], [f32; 2]) {
    let o = crop.to_source(0.0, 0.0, spec);
    let (ux, uy) = (
        crop.to_source(1.0, 0.0, spec),
        crop.to_source(0.0, 1.0, spec),
    );
    (
        o,
        [ux[0] - o[0], ux[1] - o[1]],
        [uy[0] - o[0], uy[1] - o[1]],
    )
}

/// The photo cropped, levelled and resampled to the spec's pixels around `face`, its backdrop as
/// taken: bilinear taps, `k`×`k` per pixel when shrinking. Outside the photo the border repeats
/// (the matte decides whether that is backdrop).
pub fn crop_pixels(image: &Rgb, face: &Detection, spec: &Spec) -> Rgb {
    let crop = geometry::crop(face, spec, None);
    let mut out = Rgb::new(spec.width_px, spec.height_px);
    let k = ((1.0 / crop.scale).ceil() as u32).clamp(1, 4);
    let (w, h) = (image.width as f32, image.height as f32);
    let sample = |x: f32, y: f32| -> [f32; 3] {
        let x = (x - 0.5).clamp(0.0, w - 1.0);
        let y = (y - 0.5).clamp(0.0, h - 1.0);
        let (x0, y0) = (x as u32, y as u32);
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
    let (o, ex, ey) = frame(&crop, spec);
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

/// The coarse person probability in the spec's pixels, at half resolution (see
/// [`Coarse::at_half`]). Beside and below the photo the border repeats (shoulders and clothes go
/// on); above it there is only backdrop, as a head cut by the photo's top cannot be continued.
fn render_mask(person: &Person, crop: &Crop, spec: &Spec) -> Coarse {
    let (o, ex, ey) = frame(crop, spec);
    let (w, h) = (spec.width_px as usize, spec.height_px as usize);
    Coarse::at_half(w, h, |px, py| {
        let x = o[0] + px * ex[0] + py * ey[0];
        let y = o[1] + px * ex[1] + py * ey[1];
        if y < 0.0 {
            0.0
        } else {
            person.sample(x, y)
        }
    })
}

/// A report's face as the detection it came from.
pub(crate) fn detection(face: &Face) -> Detection {
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

pub(crate) fn parse_hex(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0xFF_FFFF);
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}
