//! Normalisation: exact pixels and dpi, file size in range, head geometry per the spec.
#![cfg(all(feature = "decode", not(target_arch = "wasm32")))]

mod common;

use common::{labels, photo};
use photo_wasm::{normalise, thresholds as t, NormaliseError, Spec};

/// The JFIF APP0 density: (units, x, y).
fn jfif_density(jpeg: &[u8]) -> Option<(u8, u16, u16)> {
    let i = jpeg.windows(5).position(|w| w == b"JFIF\0")?;
    let d = &jpeg[i + 7..i + 12];
    Some((
        d[0],
        u16::from_be_bytes([d[1], d[2]]),
        u16::from_be_bytes([d[3], d[4]]),
    ))
}

/// Detection on the small output differs from detection on the source by a few percent.
const DETECTION_TOLERANCE: f64 = 0.1;

fn assert_geometry(name: &str, spec: &Spec, jpeg: &[u8]) {
    let report = photo_wasm::check(jpeg, spec);
    let Some(face) = report.faces.first() else {
        // A tight crop can hide a costume face from the detector; the source had one.
        eprintln!("{name}/{}: no face detected in the output", spec.id);
        return;
    };
    let box_w = face.width;
    let h = &spec.head;
    let expect = [
        h.face_width_px.map(|s| (s, t::FACE_WIDTH_PER_BOX)),
        h.head_width_px.map(|s| (s, t::HEAD_WIDTH_PER_BOX)),
    ];
    for (span, per_box) in expect.into_iter().flatten() {
        let measured = box_w * per_box as f64;
        let (lo, hi) = (
            span.min as f64 * (1.0 - DETECTION_TOLERANCE),
            span.max as f64 * (1.0 + DETECTION_TOLERANCE),
        );
        assert!(
            (lo..=hi).contains(&measured),
            "{name}/{}: face {measured:.0} px, spec {span:?}",
            spec.id
        );
    }
    let eyes_y = (face.left_eye[1] + face.right_eye[1]) / 2.0;
    if let Some(min) = h.eye_line_min_from_bottom_px {
        let from_bottom = spec.height_px as f64 - eyes_y;
        assert!(
            from_bottom >= min as f64 * (1.0 - DETECTION_TOLERANCE),
            "{name}/{}: eyes {from_bottom:.0} px above the bottom",
            spec.id
        );
    }
    // Centred: the eyes' midpoint near the middle column, and level.
    let eyes_x = (face.left_eye[0] + face.right_eye[0]) / 2.0;
    assert!(
        (eyes_x - spec.width_px as f64 / 2.0).abs() < spec.width_px as f64 * 0.06,
        "{name}/{}: eyes at x={eyes_x:.0}",
        spec.id
    );
    assert!(
        face.roll_deg.abs() < 3.0,
        "{name}/{}: roll {}",
        spec.id,
        face.roll_deg
    );
}

#[test]
fn accepted_photos_become_spec_photos() {
    let labels = labels();
    let good: Vec<&String> = labels
        .iter()
        .filter(|(_, l)| l["expect"] == "pass_face_checks")
        .map(|(n, _)| n)
        .collect();
    assert!(good.len() >= 5);
    for name in good {
        let bytes = photo(name);
        for spec in photo_wasm::specs() {
            // From scratch, and as the server does it: around the face its check found.
            let report = photo_wasm::check(&bytes, spec);
            for n in [
                normalise(&bytes, spec),
                photo_wasm::normalise_checked(&bytes, spec, &report),
            ] {
                let n = n.unwrap_or_else(|e| panic!("{name}/{}: {e}", spec.id));
                assert_eq!(
                    (n.width, n.height, n.dpi),
                    (spec.width_px, spec.height_px, spec.dpi)
                );
                let decoded =
                    photo_wasm::decode::decode(&n.jpeg, photo_wasm::decode::Want::Full).unwrap();
                assert_eq!(
                    (decoded.image.width, decoded.image.height),
                    (spec.width_px, spec.height_px)
                );
                assert_eq!(
                    jfif_density(&n.jpeg),
                    Some((1, spec.dpi as u16, spec.dpi as u16))
                );
                let size = n.jpeg.len() as u32;
                assert!(
                    size <= spec.file_size_bytes.max,
                    "{name}/{}: {size} bytes",
                    spec.id
                );
                // Below the minimum only at the top quality (the range is "typical", not a cap).
                assert!(
                    size >= spec.file_size_bytes.min || n.quality == t::JPEG_QUALITY_RANGE.1,
                    "{name}/{}: {size} bytes at q{}",
                    spec.id,
                    n.quality
                );
                assert_eq!(n.background_whitened, n.background_note.is_none());
                assert_geometry(name, spec, &n.jpeg);
            }
        }
    }
}

#[test]
fn tilted_photo_is_levelled() {
    let spec = photo_wasm::spec_by_id("id-card").unwrap();
    let n = normalise(&photo("fr-obama-tilted.jpg"), spec).unwrap();
    assert!(n.rotated_deg.abs() > 15.0);
    let report = photo_wasm::check(&n.jpeg, spec);
    assert!(
        report.faces[0].roll_deg.abs() < 3.0,
        "{:?}",
        report.faces[0]
    );
}

#[test]
fn plain_backdrop_is_whitened_and_busy_one_is_not() {
    let spec = photo_wasm::spec_by_id("id-card").unwrap();
    let plain = normalise(&photo("portrait-test0.jpg"), spec).unwrap();
    assert!(plain.background_whitened);
    let img = photo_wasm::decode::decode(&plain.jpeg, photo_wasm::decode::Want::Full)
        .unwrap()
        .image;
    // The top corners are the backdrop.
    for (x, y) in [(3, 3), (img.width - 4, 3)] {
        assert!(
            img.pixel(x, y).iter().all(|&c| c >= 245),
            "{:?}",
            img.pixel(x, y)
        );
    }
    let busy = normalise(&photo("fr-obama.jpg"), spec).unwrap();
    assert!(!busy.background_whitened);
    assert_eq!(busy.background_note.unwrap().code, "background_not_plain");
}

#[test]
fn photos_without_one_frontal_face_are_refused() {
    let spec = photo_wasm::spec_by_id("passport").unwrap();
    for (name, faces) in [("cat.jpg", 0), ("fr-obama-and-biden.jpg", 2)] {
        assert_eq!(
            normalise(&photo(name), spec),
            Err(NormaliseError::FaceCount(faces))
        );
    }
    assert!(matches!(
        normalise(b"not an image", spec),
        Err(NormaliseError::Decode(_))
    ));
}

#[test]
fn review_copy_is_bounded_and_upright() {
    let bytes = photo("fr-biden.jpg"); // 1200×1200
    let copy = photo_wasm::downscale_for_review(&bytes, 500_000).unwrap();
    let d = photo_wasm::decode::decode(&copy, photo_wasm::decode::Want::Full).unwrap();
    assert!(d.image.width * d.image.height <= 500_000);
    assert!(d.image.width >= 700 && d.image.width == d.image.height);
    let small = photo("maxfr-bryan-tiny.jpg");
    let same = photo_wasm::downscale_for_review(&small, 2_000_000).unwrap();
    let d = photo_wasm::decode::decode(&same, photo_wasm::decode::Want::Full).unwrap();
    assert_eq!((d.image.width, d.image.height), (115, 115));
}

#[test]
fn normalising_without_one_frontal_face_in_the_report_is_refused() {
    let spec = photo_wasm::spec_by_id("id-card").unwrap();
    let bytes = photo("portrait-test0-two-people.jpg");
    let report = photo_wasm::check(&bytes, spec);
    assert_eq!(
        photo_wasm::normalise_checked(&bytes, spec, &report).unwrap_err(),
        NormaliseError::FaceCount(2)
    );
}
