//! The photo pre-check: one pure-Rust core, used natively by the server and as WebAssembly on the
//! phone. [`check`] (encoded JPEG/PNG) and [`check_rgba`] (canvas pixels) give the same [`Report`];
//! [`normalise`] turns an accepted photo into the document's photo (server only).

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
    NormaliseError, Normalised,
};
pub use report::{Check, CheckId, Face, Range, Report, Status};
pub use specs::{spec_by_id, specs, HeadGeometry, Span, Spec};

use check::Source;
use raster::Rgb;

/// Checks an encoded photo (JPEG or PNG, EXIF orientation applied) against `spec`.
/// Never panics: undecodable, truncated or oversized input gives a report whose `decode` check fails.
#[cfg(feature = "decode")]
pub fn check(bytes: &[u8], spec: &Spec) -> Report {
    match decode::decode(
        bytes,
        decode::Want::LongSide(thresholds::ANALYSIS_MIN_LONG_SIDE),
    ) {
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
        Err(e) => check::undecodable(spec, Some(bytes.len()), &e.to_string()),
    }
}

/// Checks raw RGBA pixels (row-major, 4 bytes per pixel, as from a canvas) against `spec`.
pub fn check_rgba(width: u32, height: u32, rgba: &[u8], spec: &Spec) -> Report {
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
        return check::undecodable(spec, None, &why);
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
