//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

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
