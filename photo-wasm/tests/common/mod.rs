//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

/// `$BANZHENG_PHOTOS_DIR`, or `shared/photos` next to the repository.
pub fn photos_dir() -> PathBuf {
    std::env::var_os("BANZHENG_PHOTOS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/photos"))
}

/// `$BANZHENG_PHOTOS_BG_DIR`, or `photos-bg` beside the photos: portraits in front of ordinary
/// backgrounds.
pub fn photos_bg_dir() -> PathBuf {
    std::env::var_os("BANZHENG_PHOTOS_BG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| photos_dir().join("../photos-bg"))
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = photos_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn labels() -> serde_json::Map<String, serde_json::Value> {
    let text = String::from_utf8(photo("labels.json")).expect("labels.json is UTF-8");
    match serde_json::from_str(&text).expect("labels.json parses") {
        serde_json::Value::Object(m) => m,
        _ => panic!("labels.json is not an object"),
    }
}

pub fn id_card() -> &'static photo_wasm::Spec {
    photo_wasm::spec_by_id("id-card").expect("id-card spec")
}

/// Encodes RGB pixels as a JPEG (quality 90).
pub fn jpeg(width: u16, height: u16, data: &[u8], color: jpeg_encoder::ColorType) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(data, width, height, color)
        .expect("encode jpeg");
    out
}

/// Encodes pixels as a PNG.
pub fn png(width: u32, height: u32, data: &[u8], color: png::ColorType) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(data).expect("png data");
    }
    out
}

/// The photo's and its mirror's reports, from the same decoded pixels.
#[cfg(feature = "decode")]
pub fn both(path: &Path) -> (photo_wasm::Report, photo_wasm::Report) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let img = photo_wasm::decode::decode(&bytes, photo_wasm::decode::Want::Full)
        .expect("decodes")
        .image;
    let (w, h) = (img.width as usize, img.height as usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    let mut mirrored = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let p = img.pixel(x as u32, y as u32);
            rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
            let q = img.pixel((w - 1 - x) as u32, y as u32);
            mirrored.extend_from_slice(&[q[0], q[1], q[2], 255]);
        }
    }
    let check = |px: &[u8]| photo_wasm::check_rgba(w as u32, h as u32, px, id_card());
    (check(&rgba), check(&mirrored))
}
