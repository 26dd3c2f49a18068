//! Server-side normalisation of an accepted photo into the document's photo: decoded at the
//! scale the crop needs, finished by [`crate::finish`] (the very code the phone runs as
//! WebAssembly), then encoded as a JPEG within the spec's file-size range.

use crate::check::{people, scale_detection};
use crate::decode::{decode, DecodeError, Want};
use crate::detect::Detection;
use crate::finish::{detection, finish, photo_matte, FinishError, Note};
use crate::geometry;
use crate::raster::Rgb;
use crate::report::{Face, Report};
use crate::segment::{Segmentation, Segmenter, SIDE};
use crate::specs::Spec;
use crate::thresholds as t;
use crate::Checked;
use serde::Serialize;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{0} frontal faces found; exactly one is needed")]
    FaceCount(usize),
    #[error("no JPEG quality gives a file within {min}–{max} bytes (smallest {smallest} bytes)")]
    FileSize { min: u32, max: u32, smallest: usize },
    #[error("encoding the output failed: {0}")]
    Encode(String),
    #[error(transparent)]
    Finish(#[from] FinishError),
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
    /// The backdrop was replaced by the spec's colour.
    pub background_whitened: bool,
    /// What the reviewer should know about the replacement (a soft edge, or why it was not done).
    pub background_note: Option<Note>,
    /// Mean width in pixels of the soft band along the person's outline.
    pub soft_edge_px: f32,
}

/// Normalises an encoded photo to `spec`. The photo should have passed [`crate::check`]; this
/// needs exactly one frontal face, and finds it again. With the check's report at hand,
/// [`normalise_checked`] skips that.
pub fn normalise(bytes: &[u8], spec: &'static Spec) -> Result<Normalised, NormaliseError> {
    // Find the face on an analysis-size decode, as the check does.
    let first = decode(bytes, Want::LongSide(t::ANALYSIS_MIN_LONG_SIDE))?;
    let (small, _) = first.image.clone().shrink_to(t::ANALYSIS_MAX_LONG_SIDE);
    // The very segmentation the check makes: of the same analysis copy.
    let person = segment(&small)?;
    let people = people(&small, &|| Some(&person.look));
    let frontal: Vec<_> = people.iter().filter(|s| s.frontal()).collect();
    let [subject] = frontal[..] else {
        return Err(NormaliseError::FaceCount(frontal.len()));
    };
    let face = scale_detection(&subject.det, first.source_width as f32 / small.width as f32);
    let source = (first.source_width, first.source_height);
    render_around(bytes, spec, &face, &person, source, Some(first.image))
}

/// The person segmentation of the whole picture the finished photo is cut out along, as the
/// check makes it ([`Segmenter::segmentation`]).
fn segment(image: &Rgb) -> Result<Segmentation, FinishError> {
    Ok(segmenter()?.segmentation(image))
}

fn segmenter() -> Result<Segmenter, FinishError> {
    Segmenter::shared().ok_or(FinishError::NoModel)
}

/// The matte's segmentation: the one `checked` measured the photo with; when it had none (no
/// face it measured, e.g. a group for the command line), made now from the check's analysis
/// copy.
fn segmentation<'a>(
    bytes: &[u8],
    checked: &'a Checked,
) -> Result<Cow<'a, Segmentation>, NormaliseError> {
    if let Some(person) = &checked.person {
        return Ok(Cow::Borrowed(person));
    }
    let first = decode(bytes, Want::LongSide(t::ANALYSIS_MIN_LONG_SIDE))?;
    let (small, _) = first.image.shrink_to(t::ANALYSIS_MAX_LONG_SIDE);
    Ok(Cow::Owned(segment(&small)?))
}

/// Normalises a photo whose [`crate::check_segmented`] passed, around the frontal face the check
/// found and along the segmentation it made: the photo is decoded once, at the scale the crop
/// needs, and not segmented again.
pub fn normalise_checked(
    bytes: &[u8],
    spec: &'static Spec,
    checked: &Checked,
) -> Result<Normalised, NormaliseError> {
    let report = &checked.report;
    let frontal: Vec<&Face> = report.faces.iter().filter(|f| f.frontal).collect();
    let [face] = frontal[..] else {
        return Err(NormaliseError::FaceCount(frontal.len()));
    };
    let source = (report.width, report.height);
    let person = segmentation(bytes, checked)?;
    render_around(bytes, spec, &detection(face), &person, source, None)
}

/// The most memory (bytes) [`normalise_checked`] of `bytes` with `report` takes, from the
/// header alone.
pub fn normalise_checked_bytes(bytes: &[u8], spec: &'static Spec, report: &Report) -> u64 {
    let frontal: Vec<&Face> = report.faces.iter().filter(|f| f.frontal).collect();
    let want = match frontal[..] {
        [face] => Want::LongSide(render_long_side(
            spec,
            &detection(face),
            (report.width, report.height),
        )),
        // It stops before decoding.
        _ => Want::LongSide(0),
    };
    // The person is segmented on a copy resized to the model's input.
    crate::work_bytes(bytes, want, |_, _| Some((SIDE, SIDE)))
}

/// The long side the document photo around `face` needs decoded of a `source`-sized photo.
fn render_long_side(spec: &Spec, face: &Detection, source: (u32, u32)) -> u32 {
    let crop = geometry::crop(face, spec, None);
    let long = source.0.max(source.1) as f32;
    (long * crop.scale * t::NORMALISE_OVERSAMPLE).ceil() as u32
}

/// Normalises around `face` (one of `checked.report.faces`), whatever the report's verdict: for
/// the command line, so anyone can judge the result of any photo with a face.
pub fn normalise_around(
    bytes: &[u8],
    spec: &'static Spec,
    checked: &Checked,
    face: &Face,
) -> Result<Normalised, NormaliseError> {
    let source = (checked.report.width, checked.report.height);
    let person = segmentation(bytes, checked)?;
    render_around(bytes, spec, &detection(face), &person, source, None)
}

/// The person matte of the photo at its own size after EXIF orientation (0–255, 255 = person),
/// around `face` (one of `checked.report.faces`), as a greyscale PNG.
pub fn matte_png(
    bytes: &[u8],
    spec: &Spec,
    checked: &Checked,
    face: &Face,
) -> Result<Vec<u8>, NormaliseError> {
    let person = segmentation(bytes, checked)?;
    let image = decode(bytes, Want::Full)?.image;
    let scale = image.width as f32 / checked.report.width as f32;
    let face = scale_detection(&detection(face), scale);
    let alpha = photo_matte(&image, Some(&face), &person, spec)?;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, image.width, image.height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&alpha))
        .map_err(|e| NormaliseError::Encode(e.to_string()))?;
    Ok(out)
}

/// The spec's photo around `face` (in pixels of the upright source, `source` wide and high), cut
/// out along `person`; `decoded` is a decode already at hand, used when it has enough pixels for
/// the crop.
fn render_around(
    bytes: &[u8],
    spec: &'static Spec,
    face: &Detection,
    person: &Segmentation,
    source: (u32, u32),
    decoded: Option<Rgb>,
) -> Result<Normalised, NormaliseError> {
    let need = render_long_side(spec, face, source);
    let long = source.0.max(source.1);
    let image = match decoded {
        Some(image) if image.width.max(image.height) >= need.min(long) => image,
        _ => decode(bytes, Want::LongSide(need))?.image,
    };
    let face = scale_detection(face, image.width as f32 / source.0 as f32);
    let done = finish(&image, &face, person, spec)?;
    let (jpeg, quality) = encode_in_range(&done.image, spec)?;
    Ok(Normalised {
        jpeg,
        width: done.image.width,
        height: done.image.height,
        dpi: spec.dpi,
        quality,
        rotated_deg: done.report.rotated_deg,
        background_whitened: done.report.background_replaced,
        background_note: done.report.note,
        soft_edge_px: done.report.soft_edge_px,
    })
}

/// A smaller JPEG copy of the upright original (at most `max_pixels`), for the reviewers.
pub fn downscale_for_review(bytes: &[u8], max_pixels: u32) -> Result<Vec<u8>, NormaliseError> {
    let img = decode(bytes, Want::Pixels(max_pixels as u64))?.image;
    let img = match review_size(img.width, img.height, max_pixels) {
        Some((w, h)) => img.resize(w, h),
        None => img,
    };
    encode(&img, t::REVIEW_QUALITY, None)
}

/// The size of the review copy of a `width`×`height` decode; `None` when it is small enough.
fn review_size(width: u32, height: u32, max_pixels: u32) -> Option<(u32, u32)> {
    let (w, h) = (width as f32, height as f32);
    let f = (max_pixels as f32 / (w * h)).sqrt().min(1.0);
    (f < 1.0).then(|| (((w * f) as u32).max(1), ((h * f) as u32).max(1)))
}

/// The most memory (bytes) [`downscale_for_review`] of `bytes` takes, from the header alone.
pub fn review_bytes(bytes: &[u8], max_pixels: u32) -> u64 {
    crate::work_bytes(bytes, Want::Pixels(max_pixels as u64), |w, h| {
        review_size(w, h, max_pixels)
    })
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
