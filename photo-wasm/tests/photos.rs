//! Every labelled photo in `shared/photos` against its label (see `MANIFEST.md`).
#![cfg(feature = "decode")]

mod common;

use common::{id_card, labels, photo};
use photo_wasm::{CheckId, Status};

/// Maps a label's `breaks` value to the check that must fail.
fn check_id(breaks: &str) -> CheckId {
    serde_json::from_value(serde_json::Value::String(breaks.to_string()))
        .unwrap_or_else(|_| panic!("label names an unknown check {breaks:?}"))
}

/// The face checks a photo labelled `pass_face_checks` must not fail.
const FACE_CHECKS: [CheckId; 11] = [
    CheckId::FaceCount,
    CheckId::Resolution,
    CheckId::Framing,
    CheckId::Tilt,
    CheckId::Turn,
    CheckId::Exposure,
    CheckId::Shadow,
    CheckId::Reflection,
    CheckId::Sharpness,
    CheckId::Colour,
    CheckId::Decode,
];

#[test]
fn every_label_agrees_with_the_report() {
    let labels = labels();
    assert!(labels.len() >= 30, "expected the shared photo set");
    let mut wrong = Vec::new();
    let mut verdicts = 0;
    for (name, label) in &labels {
        let report = photo_wasm::check(&photo(name), id_card());
        let frontal_faces = report.faces.iter().filter(|f| f.frontal).count();
        let faces = label["faces"].as_u64().unwrap() as usize;
        // The face verdict of face-detectors.md: a frontal photo's faces are all counted frontal;
        // a turned face or a group must not pass as the one applicant (a group may hold one
        // frontal face among the others, every one of them counted).
        let verdict = if label["frontal"].as_bool().unwrap() {
            frontal_faces == faces
        } else {
            frontal_faces != 1 || report.faces.len() > 1
        };
        verdicts += usize::from(verdict);
        if !verdict {
            wrong.push(format!(
                "{name}: {frontal_faces} frontal faces, label {label}"
            ));
        }
        match label["expect"].as_str().unwrap() {
            "pass_face_checks" => {
                for c in &report.checks {
                    if FACE_CHECKS.contains(&c.id) && c.status == Status::Fail {
                        wrong.push(format!("{name}: {:?} fails: {}", c.id, c.message_en));
                    }
                }
            }
            "fail" => {
                let id = check_id(label["breaks"].as_str().unwrap());
                let status = report.check(id).map(|c| c.status);
                if status != Some(Status::Fail) || !report.failed() {
                    wrong.push(format!("{name}: {id:?} is {status:?}, expected a failure"));
                }
            }
            other => panic!("unknown expectation {other}"),
        }
    }
    println!("face verdict: {verdicts}/{}", labels.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn report_round_trips_through_json() {
    let report = photo_wasm::check(&photo("portrait-test0.jpg"), id_card());
    let json = serde_json::to_string(&report).unwrap();
    let back: photo_wasm::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    assert!(json.contains("\"status\":\"pass\"") && json.contains("\"message_zh\""));
    assert_eq!(report.faces.len(), 1);
}

#[test]
fn every_spec_accepts_a_good_portrait() {
    for spec in photo_wasm::specs() {
        let report = photo_wasm::check(&photo("portrait-test0.jpg"), spec);
        assert!(!report.failed(), "{}: {:?}", spec.id, report.checks);
        assert_eq!(report.spec_id, spec.id);
    }
}

#[test]
fn rgba_path_agrees_with_the_decoded_path() {
    let bytes = photo("portrait-test2.jpg");
    let decoded = photo_wasm::decode::decode(&bytes, photo_wasm::decode::Want::Full).unwrap();
    let rgba: Vec<u8> = decoded
        .image
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let from_rgba =
        photo_wasm::check_rgba(decoded.image.width, decoded.image.height, &rgba, id_card());
    let from_file = photo_wasm::check(&bytes, id_card());
    let statuses = |r: &photo_wasm::Report| {
        r.checks
            .iter()
            .filter(|c| c.id != CheckId::FileSize && c.id != CheckId::Decode)
            .map(|c| (c.id, c.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(statuses(&from_rgba), statuses(&from_file));
    assert_eq!(from_rgba.faces.len(), 1);
}

#[test]
fn a_turned_companion_beside_the_applicant_fails_the_face_count() {
    let load = |name: &str, height: u32| {
        let d = photo_wasm::decode::decode(&photo(name), photo_wasm::decode::Want::Full).unwrap();
        let width = d.image.width * height / d.image.height;
        d.image.resize(width, height)
    };
    // The applicant, and beside them a man in three-quarter view (not frontal on his own).
    let (applicant, companion) = (
        load("fr-obama.jpg", 720),
        load("maxfr-paul-rudd-turned.jpg", 720),
    );
    let width = applicant.width + companion.width;
    let mut rgba = Vec::with_capacity((width * 720 * 4) as usize);
    for y in 0..720 {
        for img in [&applicant, &companion] {
            for x in 0..img.width {
                let [r, g, b] = img.pixel(x, y);
                rgba.extend_from_slice(&[r, g, b, 255]);
            }
        }
    }
    let report = photo_wasm::check_rgba(width, 720, &rgba, id_card());
    assert_eq!(report.faces.iter().filter(|f| f.frontal).count(), 1);
    let count = report.check(CheckId::FaceCount).unwrap();
    assert_eq!(count.status, Status::Fail, "{count:?}");
    assert_eq!(count.value, Some(2.0));
    assert!(
        count.message_zh.contains("共有 2 人"),
        "{}",
        count.message_zh
    );
}

#[test]
fn framing_refuses_only_a_cut_head_or_shoulders_and_says_which() {
    let d =
        photo_wasm::decode::decode(&photo("portrait-test0.jpg"), photo_wasm::decode::Want::Full)
            .unwrap()
            .image;
    let whole = photo_wasm::check_rgba(d.width, d.height, &rgba(&d), id_card());
    let face = &whole.faces[0];
    let (eyes_y, w) = ((face.right_eye[1] + face.left_eye[1]) / 2.0, face.width);
    let cx = face.x + w / 2.0;
    // (x0, y0, x1, y1) as multiples of the face width around the eyes' midpoint.
    let framed = |x0: f64, y0: f64, x1: f64, y1: f64| {
        let px = |v: f64, max: u32| (v.round().max(0.0) as u32).min(max);
        let (x0, x1) = (px(cx + x0 * w, d.width), px(cx + x1 * w, d.width));
        let (y0, y1) = (px(eyes_y + y0 * w, d.height), px(eyes_y + y1 * w, d.height));
        let part = d.crop(x0 as i64, y0 as i64, x1 - x0, y1 - y0);
        photo_wasm::check_rgba(part.width, part.height, &rgba(&part), id_card())
    };
    let framing =
        |r: photo_wasm::Report| r.check(CheckId::Framing).cloned().expect("a framing check");
    // A tight head-and-shoulders crop with hardly any background: the finished photo fills it.
    let tight = framed(-1.0, -1.2, 1.0, 2.0);
    assert!(!tight.failed(), "{:?}", tight.checks);
    let crown = framing(framed(-1.5, -0.5, 1.5, 2.5));
    assert_eq!(crown.status, Status::Fail, "{crown:?}");
    assert!(crown.message_en.contains("top of the head"), "{crown:?}");
    let chin = framing(framed(-1.5, -1.5, 1.5, 0.45));
    assert_eq!(chin.status, Status::Fail, "{chin:?}");
    assert!(chin.message_en.contains("chin"), "{chin:?}");
    // (`shoulders` passes this one: the segmentation's coarse jaw and collar reach the bottom
    // edge either side; `framing` is what refuses it.)
    let shoulders = framing(framed(-1.5, -1.5, 1.5, 1.0));
    assert_eq!(shoulders.status, Status::Fail, "{shoulders:?}");
    assert!(shoulders.message_en.contains("shoulders"), "{shoulders:?}");
}

fn rgba(img: &photo_wasm::raster::Rgb) -> Vec<u8> {
    img.data
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}
