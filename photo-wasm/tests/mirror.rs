//! Every shared photo and its mirrored copy: the same verdict on each check (a pose measure that
//! leans one way would flip them), and no failing check at all on the good frontal portraits of
//! `shared/photos` (labelled `pass_face_checks`) and `shared/photos-bg` (labelled frontal).
#![cfg(feature = "decode")]

mod common;

use common::{both, labels, photos_bg_dir, photos_dir};
use photo_wasm::{CheckId, Report, Status};

/// Frontal portraits of `photos-bg` that break a rule of the seed on purpose, with the rule.
const BREAKS_A_RULE: [(&str, &str); 1] = [(
    "rembg-girl-mountains-sunglasses.jpg",
    "sunglasses and a cap, hands in V-signs beside the face",
)];

fn verdicts(r: &Report) -> Vec<(CheckId, Status)> {
    r.checks.iter().map(|c| (c.id, c.status)).collect()
}

fn failing(r: &Report) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{:?} {:?}: {}", c.id, c.value, c.message_en))
        .collect()
}

#[test]
fn mirrored_photos_get_the_same_verdicts_and_good_ones_pass() {
    let mut photos: Vec<(std::path::PathBuf, bool)> = Vec::new();
    for (name, label) in labels() {
        let good = label["frontal"].as_bool() == Some(true)
            && label["expect"].as_str() == Some("pass_face_checks");
        photos.push((photos_dir().join(&name), good));
    }
    let bg_labels: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
        &std::fs::read(photos_bg_dir().join("labels.json")).expect("photos-bg labels"),
    )
    .expect("photos-bg labels parse");
    for (name, label) in bg_labels {
        let good = label["frontal"].as_bool() == Some(true)
            && !BREAKS_A_RULE.iter().any(|(n, _)| *n == name);
        photos.push((photos_bg_dir().join(&name), good));
    }
    assert!(photos.len() >= 40, "expected both shared photo sets");
    let (mut wrong, mut good_count) = (Vec::new(), 0);
    for (path, good) in &photos {
        let name = path.file_name().unwrap().to_string_lossy();
        let (photo, mirror) = both(path);
        let yaw = |r: &Report| r.faces.first().and_then(|f| f.yaw);
        println!(
            "{name}: yaw {:?} / mirrored {:?}, failing {:?}",
            yaw(&photo),
            yaw(&mirror),
            failing(&photo)
        );
        if verdicts(&photo) != verdicts(&mirror) {
            let differing: Vec<String> = photo
                .checks
                .iter()
                .zip(&mirror.checks)
                .filter(|(a, b)| (a.id, a.status) != (b.id, b.status))
                .map(|(a, b)| {
                    format!(
                        "{:?} {:?} {:?} / mirrored {:?} {:?} {:?}",
                        a.id, a.status, a.value, b.id, b.status, b.value
                    )
                })
                .collect();
            wrong.push(format!(
                "{name}: mirrored verdicts differ: {}",
                differing.join("; ")
            ));
        }
        if let (Some(a), Some(b)) = (yaw(&photo), yaw(&mirror)) {
            // Same size, opposite sign (within what a slightly different detection window moves).
            if (a + b).abs() > 3.0 {
                wrong.push(format!("{name}: yaw {a} but mirrored {b}"));
            }
        }
        if *good {
            good_count += 1;
            for (which, r) in [("photo", &photo), ("mirror", &mirror)] {
                let f = failing(r);
                if !f.is_empty() {
                    wrong.push(format!("{name} ({which}) is refused: {f:?}"));
                }
            }
        }
    }
    println!(
        "{good_count} good portraits, {} photos in all",
        photos.len()
    );
    assert!(good_count >= 15);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
