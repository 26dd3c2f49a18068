//! Fixtures for the native = WebAssembly test of `finish_rgba` (`scripts/wasm.sh test`): for each
//! JPEG in PHOTOS_DIR, its pixels as RGBA (`NAME.rgba`, size in `NAME.json` with the native
//! result) and the finished photo's pixels (`NAME.finished.rgba`), so Node and Chromium run the
//! very same pixels through the WebAssembly builds and compare.
//!
//! `cargo run -p photo-wasm --example finish_fixtures -- PHOTOS_DIR OUT_DIR`

use photo_wasm::decode::{decode, Want};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, photos, out] = &args[..] else {
        eprintln!("usage: finish_fixtures PHOTOS_DIR OUT_DIR");
        std::process::exit(2);
    };
    let (photos, out) = (std::path::Path::new(photos), std::path::Path::new(out));
    std::fs::create_dir_all(out).expect("out dir");
    let spec = photo_wasm::spec_by_id("id-card").expect("spec");
    let mut names: Vec<String> = std::fs::read_dir(photos)
        .expect("photos dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    for name in names {
        let image = decode(
            &std::fs::read(photos.join(&name)).expect("read"),
            Want::Full,
        )
        .expect("decodes")
        .image;
        let rgba: Vec<u8> = image
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        let done =
            photo_wasm::finish_rgba(image.width, image.height, &rgba, spec).expect("finishes");
        let photo = done.photo.as_ref().map(|p| {
            std::fs::write(out.join(format!("{name}.finished.rgba")), &p.pixels).expect("write");
            serde_json::json!({ "width": p.width, "height": p.height, "finish": p.finish })
        });
        let summary = serde_json::json!({
            "width": image.width,
            "height": image.height,
            "spec_id": spec.id,
            "report": done.report,
            "photo": photo,
        });
        std::fs::write(out.join(format!("{name}.rgba")), &rgba).expect("write");
        std::fs::write(out.join(format!("{name}.json")), summary.to_string()).expect("write");
    }
}
