//! The photo pre-check: one pure-Rust core, used natively by the server and as WebAssembly on the
//! phone. [`check`] (encoded JPEG/PNG) and [`check_rgba`] (canvas pixels) give the same [`Report`];
//! [`normalise`] turns an accepted photo into the document's photo (server only).

mod canonical;
mod check;
#[cfg(feature = "decode")]
pub mod decode;
pub mod detect;
mod finish;
pub mod geometry;
pub mod landmarks;
mod matte;
mod nn;
#[cfg(all(feature = "decode", not(target_arch = "wasm32")))]
mod normalise;
pub mod raster;
mod report;
mod rules;
pub mod segment;
mod specs;
pub mod thresholds;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use finish::{crop_pixels, finish, photo_matte, FinishError, FinishReport, Finished, Note};
pub use nn::ModelError;
#[cfg(all(feature = "decode", not(target_arch = "wasm32")))]
pub use normalise::{
    downscale_for_review, matte_png, normalise, normalise_around, normalise_checked,
    normalise_checked_bytes, review_bytes, NormaliseError, Normalised,
};
pub use report::{Check, CheckId, Face, Range, Report, Status};
pub use specs::{spec_by_id, specs, HeadGeometry, Span, Spec};

use check::Source;
use raster::Rgb;
use segment::Segmentation;

/// What [`check`] decodes: enough pixels for the analysis, no more.
#[cfg(feature = "decode")]
const CHECK_DECODE: decode::Want = decode::Want::LongSide(thresholds::ANALYSIS_MIN_LONG_SIDE);

/// Checks an encoded photo (JPEG or PNG, EXIF orientation applied) against `spec`.
/// Never panics: undecodable, truncated or oversized input gives a report whose `decode` check fails.
#[cfg(feature = "decode")]
pub fn check(bytes: &[u8], spec: &Spec) -> Report {
    check_segmented(bytes, spec).report
}

/// A check's report and the person segmentation it measured the photo with (when it had a face
/// to measure), so the document photo is cut out along the same one and a second look
/// (`normalise_checked`, [`finish_rgba`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub report: Report,
    pub person: Option<Segmentation>,
}

/// [`check`], keeping the segmentation for the normalisation that follows.
#[cfg(feature = "decode")]
pub fn check_segmented(bytes: &[u8], spec: &Spec) -> Checked {
    match decode::decode(bytes, CHECK_DECODE) {
        Ok(d) => check::analyse(
            Source {
                image: d.image,
                source_width: d.source_width,
                source_height: d.source_height,
                file_size: Some(bytes.len()),
                format: match d.format {
                    decode::Format::Jpeg => "JPEG",
                    decode::Format::Png => "PNG",
                },
            },
            spec,
        ),
        Err(e) => Checked {
            report: check::undecodable(spec, Some(bytes.len()), &e.message_zh(), &e.to_string()),
            person: None,
        },
    }
}

/// The most memory (bytes) [`check`] of `bytes` takes, from the header alone.
#[cfg(feature = "decode")]
pub fn check_bytes(bytes: &[u8]) -> u64 {
    work_bytes(bytes, CHECK_DECODE, |w, h| {
        raster::shrunk_size(w, h, thresholds::ANALYSIS_MAX_LONG_SIDE)
    })
}

/// A step that decodes `bytes` for `want` and resizes the decoded `w`×`h` image to
/// `resized(w, h)` (if anything): the decode's peak, the resize's buffers and the step's
/// working memory. Input the decoder refuses at its header costs only the last (the step stops
/// there too).
#[cfg(feature = "decode")]
fn work_bytes(
    bytes: &[u8],
    want: decode::Want,
    resized: impl Fn(u32, u32) -> Option<(u32, u32)>,
) -> u64 {
    let Ok(plan) = decode::plan(bytes, want) else {
        return thresholds::WORK_OVERHEAD_BYTES;
    };
    // Either way up: EXIF orientation may swap the sides.
    let resize = [(plan.width, plan.height), (plan.height, plan.width)]
        .into_iter()
        .filter_map(|(w, h)| resized(w, h).map(|(rw, rh)| raster::resize_bytes(w, h, rw, rh)))
        .max()
        .unwrap_or(0);
    plan.bytes + resize + thresholds::WORK_OVERHEAD_BYTES
}

/// What [`finish_rgba`] gives: the check's report and, when it found exactly one frontal face,
/// the document photo as the server would make it from the same pixels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FinishedRgba {
    pub report: Report,
    pub photo: Option<PhotoRgba>,
}

/// A finished document photo as RGBA pixels (opaque), for a canvas.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhotoRgba {
    pub width: u32,
    pub height: u32,
    /// Serialised as bytes: a `Uint8Array` in JavaScript, not an array of numbers.
    #[serde(serialize_with = "as_bytes")]
    pub pixels: Vec<u8>,
    pub finish: FinishReport,
}

fn as_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(v)
}

/// Checks RGBA pixels like [`check_rgba`] and finishes the document photo around the one frontal
/// face, whatever else the report says (the phone shows both before the upload).
pub fn finish_rgba(
    width: u32,
    height: u32,
    rgba: &[u8],
    spec: &'static Spec,
) -> Result<FinishedRgba, FinishError> {
    let Checked { report, person } = check_rgba_segmented(width, height, rgba, spec);
    let frontal: Vec<&Face> = report.faces.iter().filter(|f| f.frontal).collect();
    let photo = match frontal[..] {
        // The report's faces are in these pixels' coordinates: no scaling.
        [face] => {
            let done = finish(
                &Rgb::from_rgba(width, height, rgba),
                &finish::detection(face),
                &person.ok_or(FinishError::NoModel)?,
                spec,
            )?;
            Some(PhotoRgba {
                width: done.image.width,
                height: done.image.height,
                pixels: done
                    .image
                    .data
                    .chunks_exact(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect(),
                finish: done.report,
            })
        }
        _ => None,
    };
    Ok(FinishedRgba { report, photo })
}

/// Checks raw RGBA pixels (row-major, 4 bytes per pixel, as from a canvas) against `spec`.
pub fn check_rgba(width: u32, height: u32, rgba: &[u8], spec: &Spec) -> Report {
    check_rgba_segmented(width, height, rgba, spec).report
}

/// [`check_rgba`], keeping the segmentation for the finished photo.
fn check_rgba_segmented(width: u32, height: u32, rgba: &[u8], spec: &Spec) -> Checked {
    let pixels = width as u64 * height as u64;
    let why = if width == 0 || height == 0 {
        Some("image has no pixels".to_string())
    } else if pixels > thresholds::MAX_SOURCE_PIXELS {
        Some(format!("{width}×{height} pixels is too large"))
    } else if rgba.len() as u64 != pixels * 4 {
        Some(format!(
            "expected {} bytes of RGBA for {width}×{height}, got {}",
            pixels * 4,
            rgba.len()
        ))
    } else {
        None
    };
    if let Some(why) = why {
        return Checked {
            report: check::undecodable(spec, None, &why, &why),
            person: None,
        };
    }
    check::analyse(
        Source {
            image: Rgb::from_rgba(width, height, rgba),
            source_width: width,
            source_height: height,
            file_size: None,
            format: "RGBA",
        },
        spec,
    )
}
