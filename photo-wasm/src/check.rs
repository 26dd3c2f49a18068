//! The checks: from an upright image (already decoded) to the report.

use crate::detect::{
    detect_on_tiles, detect_tiled, refine, weighted_nms, BlazeFace, Detection, FaceDetector,
};
use crate::geometry;
use crate::landmarks::{self, FaceMesh, Mesh, Outline, Pose};
use crate::raster::{luma, Rgb};
use crate::report::{round, Check, CheckId, Face, Range, Report, Status};
use crate::rules;
use crate::segment::{Mask, Segmenter};
use crate::specs::Spec;
use crate::thresholds as t;
use crate::Checked;
use std::cell::OnceCell;

/// What the checks get: the upright picture (any size) and facts about the original upload.
pub(crate) struct Source {
    pub image: Rgb,
    pub source_width: u32,
    pub source_height: u32,
    /// Bytes of the upload, when it was a file.
    pub file_size: Option<usize>,
    /// "JPEG", "PNG" or "RGBA", for the decode check's message.
    pub format: &'static str,
}

/// A report for input that could not be turned into pixels.
pub(crate) fn undecodable(
    spec: &Spec,
    file_size: Option<usize>,
    why_zh: &str,
    why_en: &str,
) -> Report {
    let mut checks = vec![Check {
        id: CheckId::Decode,
        status: Status::Fail,
        value: None,
        range: None,
        message_zh: format!("无法读取照片（请上传 JPEG 或 PNG 照片）：{why_zh}"),
        message_en: format!("The photo cannot be read (upload a JPEG or PNG photo): {why_en}"),
    }];
    if let Some(size) = file_size {
        checks.push(file_size_check(size, spec));
    }
    Report {
        spec_id: spec.id.to_string(),
        width: 0,
        height: 0,
        checks,
        faces: Vec::new(),
    }
}

/// A detection together with its pose, in pixels of the image it was found in.
pub(crate) struct Subject {
    pub det: Detection,
    /// The landmark mesh, for the faces that could be the applicant (see [`people`]); `None` for
    /// smaller faces and without the landmark model.
    pub mesh: Option<Mesh>,
    /// Head pose from the mesh.
    pub pose: Option<Pose>,
}

impl Subject {
    /// Counted as a face looking at the camera: neither clearly turned nor raised or lowered.
    pub fn frontal(&self) -> bool {
        self.pose.is_some_and(|p| {
            p.yaw.abs() <= t::YAW_FAIL_DEG
                && (t::PITCH_FAIL_DEG.0..=t::PITCH_FAIL_DEG.1).contains(&p.pitch)
        })
    }

    /// Eye-line angle in degrees: the mesh's when measured, else the detector's eyes.
    fn roll(&self) -> f32 {
        self.pose
            .map_or_else(|| geometry::roll_deg(&self.det), |p| p.roll)
    }
}

/// Faces the detector is sure of, largest first. The landmark mesh (the costly part) runs on the
/// faces that could be the applicant or someone beside them: at least [`t::COMPANION_MIN_WIDTH`]
/// of the largest face's width.
/// `person`: the segmentation's person probability over `img` (asked for only when a companion
/// could be missed), where there is one; without it nobody is looked for beside the applicant
/// (see [`someone_beside`]).
pub(crate) fn people<'a>(img: &Rgb, person: &dyn Fn() -> Option<&'a Mask>) -> Vec<Subject> {
    let detector = BlazeFace::shared();
    let mut found = detector.detect(img);
    let short = img.width.min(img.height) as f32;
    // The smallest face the whole frame is trusted to find.
    let seen = short * t::TILES_BELOW_FACE;
    let largest = found
        .iter()
        .filter(|d| d.score >= t::FACE_MIN_SCORE)
        .max_by(|a, b| a.width.total_cmp(&b.width))
        .cloned();
    // Someone beside the applicant could be too small for the whole frame yet large enough to
    // count: looked for after the faces found are measured, so a portrait with nobody beside it
    // runs in the same order as without the search (the segmentation after the mesh: in
    // WebAssembly making it first cost the 1 MP check a fifth more).
    let beside = match largest {
        Some(d) if d.width >= seen => Some(d).filter(|d| d.width * t::COMPANION_MIN_WIDTH < seen),
        // No face the whole frame could see well: a group or a distant photo. Look again on tiles
        // so every visible face is counted.
        _ => {
            let side = (short * t::TILE_SIDE).max(t::TILE_MIN_PX as f32) as u32;
            found = detect_tiled(detector, img, side);
            None
        }
    };
    let subjects = measured(detector, img, found.clone());
    match beside {
        Some(d) if person().is_some_and(|p| someone_beside(p, img, &d)) => {
            let side = d.width * t::COMPANION_MIN_WIDTH / t::TILES_BELOW_FACE;
            let more = with_companions(detector, img, found, &d, side);
            measured(detector, img, more)
        }
        _ => subjects,
    }
}

/// The sure faces among `found`, each with eyes and box from a second, closer look, largest
/// first; the landmark mesh on those at least [`t::COMPANION_MIN_WIDTH`] of the largest.
fn measured(detector: &BlazeFace, img: &Rgb, found: Vec<Detection>) -> Vec<Subject> {
    let mut found: Vec<Detection> = found
        .into_iter()
        .filter(|d| d.score >= t::FACE_MIN_SCORE)
        .map(|d| refine(detector, img, &d))
        .collect();
    found.sort_by(|a, b| b.width.total_cmp(&a.width));
    let largest = found.first().map_or(0.0, |d| d.width);
    let model = FaceMesh::shared();
    found
        .into_iter()
        .map(|det| {
            let mesh = model
                .as_ref()
                .filter(|_| det.width >= largest * t::COMPANION_MIN_WIDTH)
                .map(|m| landmarks::mesh(m, img, &det));
            let pose = mesh.as_ref().map(Mesh::pose);
            Subject { det, mesh, pose }
        })
        .collect()
}

/// Whether the segmentation shows a person beside `applicant`'s head: at least
/// [`t::BESIDE_MIN_AREA`] of a face's area (in face widths squared) of person, in the rows of the
/// face and [`t::BESIDE_CLEAR`] face widths or more to either side of its middle, where the
/// applicant's own head and hair end. Only then are the tiles looked at (each costs two
/// detector runs); a raised hand or big hair there costs that time, nothing more.
fn someone_beside(person: &Mask, img: &Rgb, applicant: &Detection) -> bool {
    let w = person.width as usize;
    let cell = [
        img.width as f32 / person.width as f32,
        img.height as f32 / person.height as f32,
    ];
    let (cx, cy) = (
        applicant.x + applicant.width / 2.0,
        applicant.y + applicant.height / 2.0,
    );
    let l = applicant.width;
    let rows = cy - t::BESIDE_ROWS * l..=cy + t::BESIDE_ROWS * l;
    let cells = person
        .data
        .iter()
        .enumerate()
        .filter(|&(i, &p)| {
            let (x, y) = (
                ((i % w) as f32 + 0.5) * cell[0],
                ((i / w) as f32 + 0.5) * cell[1],
            );
            p > 0.5 && rows.contains(&y) && (x - cx).abs() >= t::BESIDE_CLEAR * l
        })
        .count();
    cells as f32 * cell[0] * cell[1] >= t::BESIDE_MIN_AREA * l * l
}

/// `found` (the whole frame's detections) and the faces on one row of tiles `side` wide centred
/// on `applicant`'s face (someone beside, or just behind and taller, has their face's middle
/// within about a face width above or below the applicant's). A tile's detection centred inside
/// a face the whole frame is sure of is that face again, or a piece of it, not another person;
/// the whole frame's detections are kept as they are.
fn with_companions(
    detector: &BlazeFace,
    img: &Rgb,
    mut found: Vec<Detection>,
    applicant: &Detection,
    side: f32,
) -> Vec<Detection> {
    let side = side.max(t::TILE_MIN_PX as f32) as u32;
    let middle = applicant.y + applicant.height / 2.0;
    let reach = side as f32 / 2.0;
    let sure: Vec<&Detection> = found
        .iter()
        .filter(|d| d.score >= t::FACE_MIN_SCORE)
        .collect();
    let inside = |c: &Detection| {
        let (x, y) = (c.x + c.width / 2.0, c.y + c.height / 2.0);
        sure.iter()
            .any(|d| (d.x..=d.x + d.width).contains(&x) && (d.y..=d.y + d.height).contains(&y))
    };
    let tiles: Vec<Detection> =
        detect_on_tiles(detector, img, side, (middle - reach, middle + reach))
            .into_iter()
            .filter(|c| !inside(c))
            .collect();
    found.extend(weighted_nms(tiles));
    found
}

pub(crate) fn analyse(src: Source, spec: &Spec) -> Checked {
    let (img, _) = src.image.shrink_to(t::ANALYSIS_MAX_LONG_SIDE);
    let to_src = src.source_width as f32 / img.width as f32;
    // One look at the canonical orientation (see `Segmenter::segmentation`): a mirrored photo
    // gets the mirrored mask, so the shoulders' and the crown's measures do not lean. Made once,
    // when first needed.
    let segmentation = OnceCell::new();
    let segment = || {
        segmentation
            .get_or_init(|| Segmenter::shared().map(|s| s.segmentation(&img)))
            .as_ref()
    };
    let people = people(&img, &|| segment().map(|s| &s.look));
    let frontal = people.iter().filter(|s| s.frontal()).count();

    let mut checks = vec![Check {
        id: CheckId::Decode,
        status: Status::Pass,
        value: None,
        range: None,
        message_zh: format!(
            "{} 照片，{}×{} 像素",
            src.format, src.source_width, src.source_height
        ),
        message_en: format!(
            "{} photo, {}×{} pixels",
            src.format, src.source_width, src.source_height
        ),
    }];
    if let Some(size) = src.file_size {
        checks.push(file_size_check(size, spec));
    }
    // The face the other checks look at: the one frontal face, or the only face when it is turned
    // (so the turn check can say so).
    let subject = match (frontal, people.len()) {
        (1, _) => people.iter().find(|s| s.frontal()),
        (0, 1) => people.first(),
        _ => None,
    };
    // Someone beside the applicant, turned away or not, is still a second person in the photo.
    let companions = match (frontal, subject) {
        (1, Some(s)) => people
            .iter()
            .filter(|o| !std::ptr::eq(*o, s) && o.det.width >= s.det.width * t::COMPANION_MIN_WIDTH)
            .count(),
        _ => 0,
    };
    checks.push(face_count_check(frontal, people.len(), companions));
    let mut person = None;
    let box_target = geometry::target_box_width(spec);
    checks.push(match subject {
        Some(s) => resolution_check(s.det.width * to_src / box_target, true),
        None => resolution_check(
            (src.source_width as f32 / spec.width_px as f32)
                .min(src.source_height as f32 / spec.height_px as f32),
            false,
        ),
    });
    if let Some(s) = subject {
        let d = &s.det;
        if let Some(mesh) = &s.mesh {
            checks.push(eyes_open_check(mesh.min_eye_opening()));
            checks.push(expression_check(mesh.mouth_opening(), mesh.mouth_width()));
            let outline = mesh.outline();
            let p = |p: [f32; 2]| [p[0] * to_src, p[1] * to_src];
            let outline = Outline {
                crown: p(outline.crown),
                chin: p(outline.chin),
                right: p(outline.right),
                left: p(outline.left),
            };
            checks.push(framing_check(
                &outline,
                src.source_width as f32,
                src.source_height as f32,
            ));
            checks.extend(rules::checks(
                &img,
                &mesh.frame(),
                segment().map(|s| &s.look),
            ));
            // The document photo is cut out along the same segmentation (and a second look).
            person = segmentation.into_inner().flatten();
        }
        checks.push(tilt_check(s.roll()));
        checks.extend(pose_checks(s.pose));
        let region = face_region(d, &img);
        checks.push(exposure_check(&img, &region));
        checks.push(shadow_check(&img, &region, d));
        checks.push(reflection_check(&img, &region));
        checks.push(sharpness_check(&img, d));
        checks.push(background_check(&img, d));
    }
    checks.push(colour_check(&img));

    let faces = people
        .iter()
        .map(|s| face_json(&scale_detection(&s.det, to_src), s))
        .collect();
    Checked {
        report: Report {
            spec_id: spec.id.to_string(),
            width: src.source_width,
            height: src.source_height,
            checks,
            faces,
        },
        person,
    }
}

pub(crate) fn scale_detection(d: &Detection, f: f32) -> Detection {
    let p = |p: [f32; 2]| [p[0] * f, p[1] * f];
    Detection {
        x: d.x * f,
        y: d.y * f,
        width: d.width * f,
        height: d.height * f,
        score: d.score,
        right_eye: p(d.right_eye),
        left_eye: p(d.left_eye),
        nose: p(d.nose),
        mouth: p(d.mouth),
        right_ear: p(d.right_ear),
        left_ear: p(d.left_ear),
    }
}

fn face_json(d: &Detection, s: &Subject) -> Face {
    let p = |p: [f32; 2]| [round(p[0]), round(p[1])];
    Face {
        x: round(d.x),
        y: round(d.y),
        width: round(d.width),
        height: round(d.height),
        score: round(d.score),
        right_eye: p(d.right_eye),
        left_eye: p(d.left_eye),
        nose: p(d.nose),
        mouth: p(d.mouth),
        right_ear: p(d.right_ear),
        left_ear: p(d.left_ear),
        roll_deg: round(s.roll()),
        yaw: s.pose.map(|p| round(p.yaw)),
        pitch: s.pose.map(|p| round(p.pitch)),
        frontal: s.frontal(),
    }
}

/// A check's verdict from its value: `fail` outside `fail_range`, `warn` outside `pass_range`.
pub(crate) struct Verdict {
    pub status: Status,
    range: Range,
}

pub(crate) fn grade(
    v: f32,
    pass: (Option<f32>, Option<f32>),
    fail: (Option<f32>, Option<f32>),
) -> Verdict {
    let outside = |(lo, hi): (Option<f32>, Option<f32>)| {
        lo.is_some_and(|lo| v < lo) || hi.is_some_and(|hi| v > hi)
    };
    let status = if outside(fail) {
        Status::Fail
    } else if outside(pass) {
        Status::Warn
    } else {
        Status::Pass
    };
    Verdict {
        status,
        range: Range {
            min: pass.0.map(round),
            max: pass.1.map(round),
        },
    }
}

/// Builds a check with one message pair per status.
pub(crate) fn check(id: CheckId, value: f32, v: Verdict, msgs: [(String, String); 3]) -> Check {
    let [pass, warn, fail] = msgs;
    let (zh, en) = match v.status {
        Status::Pass => pass,
        Status::Warn => warn,
        Status::Fail => fail,
    };
    Check {
        id,
        status: v.status,
        value: Some(round(value)),
        range: Some(v.range),
        message_zh: zh,
        message_en: en,
    }
}

pub(crate) fn m(zh: impl Into<String>, en: impl Into<String>) -> (String, String) {
    (zh.into(), en.into())
}

fn file_size_check(size: usize, spec: &Spec) -> Check {
    let kb = size as f32 / 1024.0;
    let min_kb = spec.file_size_bytes.min as f32 / 1024.0;
    let v = grade(
        kb,
        (Some(min_kb), Some(t::MAX_UPLOAD_KB)),
        (None, Some(t::MAX_UPLOAD_KB)),
    );
    check(
        CheckId::FileSize,
        kb,
        v,
        [
            m(
                format!("文件大小 {kb:.0} KB"),
                format!("File size {kb:.0} KB"),
            ),
            m(
                format!("文件只有 {kb:.0} KB，可能压缩过度，细节不足"),
                format!("The file is only {kb:.0} KB: it may be over-compressed and lack detail"),
            ),
            m(
                format!(
                    "文件过大（{kb:.0} KB），请上传不超过 {} KB 的照片",
                    t::MAX_UPLOAD_KB
                ),
                format!(
                    "The file is too large ({kb:.0} KB); upload at most {} KB",
                    t::MAX_UPLOAD_KB
                ),
            ),
        ],
    )
}

fn face_count_check(frontal: usize, all: usize, companions: usize) -> Check {
    let people = frontal + companions;
    let v = grade(
        people as f32,
        (Some(1.0), Some(1.0)),
        (Some(1.0), Some(1.0)),
    );
    // A mask, sunglasses or a hat can hide a face from the detector (or its pose): the
    // resident is told what to take off, not only to face the camera.
    let fail = match (frontal, all) {
        (0, 0) => m(
            "未检测到人脸，请正对镜头拍摄，露出完整面部（不戴口罩、墨镜、帽子）",
            "No face found: face the camera with the whole face showing (no mask, sunglasses or hat)",
        ),
        (0, 1) => m(
            "未检测到正面人脸，请正对镜头、两眼平视前方，露出完整面部（不戴口罩、墨镜、帽子）",
            "No frontal face found: face the camera, look straight ahead and show the whole face (no mask, sunglasses or hat)",
        ),
        (0, n) => m(
            format!("照片中有 {n} 人，但没有正对镜头的人脸；照片中只能有申请人一人，正对镜头"),
            format!("{n} people in the photo, none facing the camera: only the applicant may be in it, facing the camera"),
        ),
        _ => m(
            format!("照片中共有 {} 人，照片中只能有申请人一人", all.max(people)),
            format!("{} people in the photo: only the applicant may be in it", all.max(people)),
        ),
    };
    check(
        CheckId::FaceCount,
        people as f32,
        v,
        [
            m("检测到一张正面人脸", "One frontal face found"),
            fail.clone(),
            fail,
        ],
    )
}

fn resolution_check(scale: f32, from_face: bool) -> Check {
    let v = grade(
        scale,
        (Some(t::RESOLUTION_PASS), None),
        (Some(t::RESOLUTION_FAIL), None),
    );
    let what = if from_face {
        m("人脸", "face")
    } else {
        m("照片", "photo")
    };
    check(
        CheckId::Resolution,
        scale,
        v,
        [
            m("分辨率足够", "Resolution is sufficient"),
            m(
                format!("{}像素偏少，成片可能不够清晰，建议靠近一些或使用更高分辨率拍摄", what.0),
                format!("The {} has few pixels: the final photo may look soft; move closer or use a higher resolution", what.1),
            ),
            m(
                format!("{}像素太少，无法制作合格的证件照，请靠近一些或使用更高分辨率重新拍摄", what.0),
                format!("The {} has too few pixels for an ID photo: move closer or use a higher resolution", what.1),
            ),
        ],
    )
}

/// Whether the photo holds what the document needs of the person: the top of the head, the chin,
/// both sides of the head and the tops of the shoulders. Missing background is not counted: the
/// finished photo fills it with the spec's colour (and continues the shoulders below and beside).
/// The value is the smallest margin of those parts inside the photo, in face widths (negative:
/// cut off by that much).
fn framing_check(o: &Outline, width: f32, height: f32) -> Check {
    let fw = libm::hypotf(o.left[0] - o.right[0], o.left[1] - o.right[1]).max(1.0);
    // The face's own axes: across (towards its left) and down (crown to chin), per face width.
    let across = [(o.left[0] - o.right[0]) / fw, (o.left[1] - o.right[1]) / fw];
    let down = [-across[1], across[0]];
    let shoulder = |side: f32| {
        let (b, a) = (
            t::SHOULDER_TOP_BELOW_CHIN_PER_FACE * fw,
            side * t::SHOULDER_TOP_SPAN_PER_FACE * fw,
        );
        [
            o.chin[0] + down[0] * b + across[0] * a,
            o.chin[1] + down[1] * b + across[1] * a,
        ]
    };
    let needed = [
        ("头顶", "the top of the head", o.crown),
        ("下巴", "the chin", o.chin),
        ("头部两侧", "a side of the head", o.right),
        ("头部两侧", "a side of the head", o.left),
        ("肩膀", "the shoulders", shoulder(-1.0)),
        ("肩膀", "the shoulders", shoulder(1.0)),
    ];
    let margins = needed.map(|(zh, en, [x, y])| {
        let inside = x.min(width - x).min(y).min(height - y) / fw;
        (inside, zh, en)
    });
    let margin = margins.iter().map(|m| m.0).fold(f32::INFINITY, f32::min);
    let v = grade(
        margin,
        (Some(0.0), None),
        (Some(-t::FRAMING_CUT_TOLERANCE), None),
    );
    // Name every part past the limit of the verdict (the chin is seldom cut alone).
    let limit = if v.status == Status::Fail {
        -t::FRAMING_CUT_TOLERANCE
    } else {
        0.0
    };
    let (mut zh, mut en): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for &(inside, z, e) in &margins {
        if inside < limit && !zh.contains(&z) {
            zh.push(z);
            en.push(e);
        }
    }
    let (zh, en) = (zh.join("、"), en.join(", "));
    check(
        CheckId::Framing,
        margin,
        v,
        [
            m(
                "头部和肩膀都在画面内",
                "The head and the shoulders are in the photo",
            ),
            m(
                format!("{zh}靠近画面边缘，建议后退一些，露出完整头部和双肩"),
                format!("At the photo's edge: {en}. Step back a little so the whole head and both shoulders show"),
            ),
            m(
                format!("{zh}超出画面，请后退一些，拍摄完整的头部和双肩"),
                format!("Cut off by the photo's edge: {en}. Step back so the whole head and both shoulders are in the photo"),
            ),
        ],
    )
}

fn eyes_open_check(opening: f32) -> Check {
    let v = grade(
        opening,
        (Some(t::EYES_OPEN_PASS), None),
        (Some(t::EYES_OPEN_FAIL), None),
    );
    check(
        CheckId::EyesOpen,
        opening,
        v,
        [
            m("双眼自然睁开", "Both eyes are open"),
            m(
                "眼睛似乎半闭，请自然睁大双眼",
                "The eyes look half closed: open them naturally",
            ),
            m(
                "眼睛闭合，请睁开双眼、平视镜头",
                "The eyes are closed: open them and look at the camera",
            ),
        ],
    )
}

/// Mouth opening and width (see `Mesh`) against their natural limits, as one value: the larger
/// share of its limit (above 1 the expression is not neutral). Warn only: the reviewer decides.
fn expression_check(opening: f32, width: f32) -> Check {
    let value = (opening / t::MOUTH_OPEN_MAX).max(width / t::MOUTH_WIDTH_MAX);
    let v = grade(value, (None, Some(1.0)), (None, None));
    let open = opening / t::MOUTH_OPEN_MAX >= width / t::MOUTH_WIDTH_MAX;
    let warn = if open {
        m(
            "嘴巴张开，证件照需闭嘴、表情自然",
            "The mouth is open: an ID photo needs a closed mouth and a neutral expression",
        )
    } else {
        m(
            "笑容较大，证件照需表情自然、不露齿",
            "A broad smile: an ID photo needs a neutral expression without showing teeth",
        )
    };
    check(
        CheckId::Expression,
        value,
        v,
        [m("表情自然", "Neutral expression"), warn.clone(), warn],
    )
}

fn tilt_check(roll: f32) -> Check {
    let a = roll.abs();
    let v = grade(
        a,
        (None, Some(t::TILT_PASS_DEG)),
        (None, Some(t::TILT_FAIL_DEG)),
    );
    check(
        CheckId::Tilt,
        a,
        v,
        [
            m("头部端正", "Head is level"),
            m(
                format!("头部略有倾斜（{a:.1}°），将自动校正"),
                format!("Head slightly tilted ({a:.1}°); it will be levelled"),
            ),
            m(
                format!("头部倾斜 {a:.1}°，请保持头部端正、两眼水平"),
                format!("Head tilted by {a:.1}°: keep your head upright with the eyes level"),
            ),
        ],
    )
}

/// `turn` (yaw) and `nod` (pitch), in degrees from the landmark mesh.
fn pose_checks(pose: Option<Pose>) -> [Check; 2] {
    let Some(p) = pose else {
        // Only reachable without the landmark model (a WebAssembly build that was not given it;
        // its exports refuse to check then): say so rather than guess.
        let missing = |id| Check {
            id,
            status: Status::Fail,
            value: None,
            range: None,
            message_zh: "无法判断头部姿态：人脸关键点模型未加载".to_string(),
            message_en: "The head pose cannot be measured: the face landmark model is not loaded"
                .to_string(),
        };
        return [missing(CheckId::Turn), missing(CheckId::Nod)];
    };
    let yaw = p.yaw.abs();
    let turn = check(
        CheckId::Turn,
        yaw,
        grade(
            yaw,
            (None, Some(t::YAW_PASS_DEG)),
            (None, Some(t::YAW_FAIL_DEG)),
        ),
        [
            m("正面朝向镜头", "Facing the camera"),
            m(
                format!("头部略有侧转（{yaw:.0}°），请正对镜头"),
                format!("Head slightly turned ({yaw:.0}°): face the camera squarely"),
            ),
            m(
                format!("头部侧转 {yaw:.0}°，请正对镜头、两眼平视前方"),
                format!("Head turned by {yaw:.0}°: face the camera and look straight ahead"),
            ),
        ],
    );
    let (zh, en) = if p.pitch > 0.0 {
        ("低头", "lowered")
    } else {
        ("抬头", "raised")
    };
    let a = p.pitch.abs();
    let nod = check(
        CheckId::Nod,
        p.pitch,
        grade(
            p.pitch,
            (Some(t::PITCH_PASS_DEG.0), Some(t::PITCH_PASS_DEG.1)),
            (Some(t::PITCH_FAIL_DEG.0), Some(t::PITCH_FAIL_DEG.1)),
        ),
        [
            m("头部平正，两眼平视", "Head level, looking straight ahead"),
            m(
                format!("头部略有{zh}（{a:.0}°），请平视镜头"),
                format!("Head slightly {en} ({a:.0}°): look straight at the camera"),
            ),
            m(
                format!("{zh} {a:.0}°，请保持头部平正、两眼平视镜头"),
                format!(
                    "Head {en} by {a:.0}°: keep your head level and look straight at the camera"
                ),
            ),
        ],
    );
    [turn, nod]
}

/// The inner face (cheeks, nose, mouth, under the brows), clipped to the image: where skin
/// brightness says most about exposure and light.
struct Region {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

fn face_region(d: &Detection, img: &Rgb) -> Region {
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let r = Region {
        x0: clamp(d.x + d.width * 0.2, img.width),
        x1: clamp(d.x + d.width * 0.8, img.width),
        y0: clamp(d.y + d.height * 0.25, img.height),
        y1: clamp(d.y + d.height * 0.9, img.height),
    };
    if r.x0 < r.x1 && r.y0 < r.y1 {
        r
    } else {
        // A face box off the image: fall back to the whole image.
        Region {
            x0: 0,
            y0: 0,
            x1: img.width,
            y1: img.height,
        }
    }
}

fn region_lumas(img: &Rgb, r: &Region, x0: u32, x1: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for y in r.y0..r.y1 {
        for x in x0.max(r.x0)..x1.min(r.x1) {
            out.push(luma(img.pixel(x, y)));
        }
    }
    out
}

/// Whether at least [`t::FACE_LIT_SHARE`] of the face's lumas reach [`t::FACE_LIT_LUMA`].
fn lit_share(lumas: &[u8]) -> bool {
    let lit = lumas.iter().filter(|&&v| v >= t::FACE_LIT_LUMA).count();
    lit as f32 >= t::FACE_LIT_SHARE * lumas.len() as f32 && !lumas.is_empty()
}

fn mean(v: &[u8]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().map(|&x| x as u32).sum::<u32>() as f32 / v.len() as f32
}

fn exposure_check(img: &Rgb, r: &Region) -> Check {
    let l = region_lumas(img, r, r.x0, r.x1);
    let mean_l = mean(&l);
    let clipped =
        l.iter().filter(|&&v| v >= t::CLIPPED_LUMA).count() as f32 / l.len().max(1) as f32;
    let mut v = grade(
        mean_l,
        (Some(t::FACE_LUMA_PASS.0), Some(t::FACE_LUMA_PASS.1)),
        (Some(t::FACE_LUMA_FAIL.0), Some(t::FACE_LUMA_FAIL.1)),
    );
    if clipped > t::CLIPPED_FAIL {
        v.status = Status::Fail;
    }
    // Dark skin in good light still has lit parts (forehead, nose, cheekbones); a dark photo has
    // none: it is not refused for its tone, only told to the reviewer.
    if mean_l < t::FACE_LUMA_FAIL.0 && v.status == Status::Fail && lit_share(&l) {
        v.status = Status::Warn;
    }
    let (dark, bright) = (
        mean_l < t::FACE_LUMA_PASS.0,
        mean_l > t::FACE_LUMA_PASS.1 || clipped > t::CLIPPED_FAIL,
    );
    let problem = if dark {
        m(
            "面部太暗，请在光线充足处拍摄",
            "The face is too dark: take the photo in good light",
        )
    } else if bright {
        m(
            "面部过亮（过曝），请避免强光直射或闪光",
            "The face is too bright (over-exposed): avoid direct light or flash",
        )
    } else {
        m("曝光正常", "Exposure is fine")
    };
    check(
        CheckId::Exposure,
        mean_l,
        v,
        [m("曝光正常", "Exposure is fine"), problem.clone(), problem],
    )
}

fn shadow_check(img: &Rgb, r: &Region, d: &Detection) -> Check {
    // Split at the nose so a turned-but-acceptable face still compares cheek with cheek.
    let split = (d.nose[0].max(0.0) as u32).clamp(r.x0 + 1, r.x1.saturating_sub(1).max(r.x0 + 1));
    let left = mean(&region_lumas(img, r, r.x0, split));
    let right = mean(&region_lumas(img, r, split, r.x1));
    let ratio = if left.max(right) > 0.0 {
        left.min(right) / left.max(right)
    } else {
        1.0
    };
    let v = grade(
        ratio,
        (Some(t::SHADOW_PASS), None),
        (Some(t::SHADOW_FAIL), None),
    );
    check(
        CheckId::Shadow,
        ratio,
        v,
        [
            m("面部光照均匀", "Even light on the face"),
            m(
                "面部一侧偏暗，建议正面均匀光照",
                "One side of the face is darker: use even light from the front",
            ),
            m(
                "面部有明显阴影，请在均匀光线下重新拍摄",
                "A shadow covers one side of the face: retake it in even light",
            ),
        ],
    )
}

fn reflection_check(img: &Rgb, r: &Region) -> Check {
    let mut n = 0usize;
    let mut hot = 0usize;
    for y in r.y0..r.y1 {
        for x in r.x0..r.x1 {
            let p = img.pixel(x, y);
            n += 1;
            let spread = p.iter().max().unwrap_or(&0) - p.iter().min().unwrap_or(&0);
            // Specular light is near-white whatever the skin colour: bright and unsaturated.
            if luma(p) >= t::SPECULAR_LUMA && spread <= t::SPECULAR_MAX_SPREAD {
                hot += 1;
            }
        }
    }
    let share = hot as f32 / n.max(1) as f32;
    let v = grade(
        share,
        (None, Some(t::SPECULAR_PASS)),
        (None, Some(t::SPECULAR_FAIL)),
    );
    check(
        CheckId::Reflection,
        share,
        v,
        [
            m("面部无明显反光", "No glare on the face"),
            m(
                "面部有反光，建议避免闪光灯或强光",
                "Some glare on the face: avoid flash or strong light",
            ),
            m(
                "面部反光严重，请避免闪光灯或强光后重新拍摄",
                "Strong glare on the face: retake without flash or strong light",
            ),
        ],
    )
}

/// Edge strength at the final photo's scale: the face box resampled to a fixed width, then the
/// mean absolute Laplacian over the luma's standard deviation (so dim or low-contrast faces are not
/// mistaken for blurred ones).
fn sharpness_check(img: &Rgb, d: &Detection) -> Check {
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (x0, x1) = (clamp(d.x, img.width), clamp(d.x + d.width, img.width));
    let (y0, y1) = (clamp(d.y, img.height), clamp(d.y + d.height, img.height));
    let value = if x1 > x0 + 2 && y1 > y0 + 2 {
        let face = img.crop(x0 as i64, y0 as i64, x1 - x0, y1 - y0);
        let w = t::SHARPNESS_FACE_WIDTH;
        let h = ((face.height as f32 * w as f32 / face.width as f32).round() as u32).max(3);
        sharpness(&face.resize(w, h))
    } else {
        0.0
    };
    let v = grade(
        value,
        (Some(t::SHARPNESS_PASS), None),
        (Some(t::SHARPNESS_FAIL), None),
    );
    check(
        CheckId::Sharpness,
        value,
        v,
        [
            m("照片清晰", "The photo is sharp"),
            m(
                "照片略有模糊，建议对焦后重新拍摄",
                "The photo is slightly blurred: focus and retake if you can",
            ),
            m(
                "照片模糊，请对焦、保持手机稳定后重新拍摄",
                "The photo is blurred: focus and hold the phone steady",
            ),
        ],
    )
}

fn sharpness(img: &Rgb) -> f32 {
    let (w, h) = (img.width as usize, img.height as usize);
    let l: Vec<f32> = img
        .data
        .chunks_exact(3)
        .map(|p| luma([p[0], p[1], p[2]]) as f32)
        .collect();
    let mut lap = 0.0f32;
    let mut n = 0.0f32;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = l[y * w + x];
            let s = 4.0 * c
                - l[y * w + x - 1]
                - l[y * w + x + 1]
                - l[(y - 1) * w + x]
                - l[(y + 1) * w + x];
            lap += s.abs();
            n += 1.0;
        }
    }
    let mean = l.iter().sum::<f32>() / l.len() as f32;
    let var = l.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / l.len() as f32;
    (lap / n.max(1.0)) / (var.sqrt() + t::SHARPNESS_STD_FLOOR)
}

/// Plainness and lightness of the background: the strips beside and above the head.
fn background_check(img: &Rgb, d: &Detection) -> Check {
    let h = img.height as f32;
    let head = (
        d.x - d.width * 0.35,
        d.x + d.width * 1.35,
        d.y - d.height * 0.9,
    );
    let bottom = (d.y + d.height * 0.5).min(h);
    let mut l = Vec::new();
    let mut grad = 0.0f32;
    let step = (img.width.max(img.height) / 200).max(1);
    for y in (0..bottom as u32).step_by(step as usize) {
        for x in (0..img.width).step_by(step as usize) {
            let (fx, fy) = (x as f32, y as f32);
            let beside = fx < head.0 || fx > head.1;
            let above = fy < head.2;
            if !(beside || above) || x + 1 >= img.width || y + 1 >= img.height {
                continue;
            }
            let p = luma(img.pixel(x, y)) as f32;
            grad += (p - luma(img.pixel(x + 1, y)) as f32).abs()
                + (p - luma(img.pixel(x, y + 1)) as f32).abs();
            l.push(p as u8);
        }
    }
    let mean_l = mean(&l);
    let std = (l.iter().map(|&v| (v as f32 - mean_l).powi(2)).sum::<f32>() / l.len().max(1) as f32)
        .sqrt();
    let texture = grad / l.len().max(1) as f32;
    // One number for "plain": spread of brightness plus fine texture.
    let busy = std + texture * t::BACKGROUND_TEXTURE_WEIGHT;
    // Warn only, whatever the value: the server whitens the backdrop.
    let dark = mean_l < t::BACKGROUND_MIN_LUMA;
    let v = grade(busy, (None, Some(t::BACKGROUND_BUSY_MAX)), (None, None));
    let (status, zh, en) = if l.is_empty() || dark {
        (
            Status::Warn,
            "背景偏暗，建议在白墙前拍摄（系统会尝试替换为白色背景）",
            "The background is dark: a white wall works best (the server will try to whiten it)",
        )
    } else if v.status == Status::Warn {
        (
            Status::Warn,
            "背景不够简洁，建议在白墙前拍摄（系统会尝试替换为白色背景）",
            "The background is busy: a white wall works best (the server will try to whiten it)",
        )
    } else {
        (Status::Pass, "背景简洁明亮", "Plain, light background")
    };
    Check {
        id: CheckId::Background,
        status,
        value: Some(round(busy)),
        range: Some(v.range),
        message_zh: zh.to_string(),
        message_en: en.to_string(),
    }
}

/// Colour against greyscale and tinted monochrome (sepia): how varied the hues of the colourful
/// pixels are (circular spread in degrees). A tint has one hue; any colour photo has several.
fn colour_check(img: &Rgb) -> Check {
    let step = (img.width.max(img.height) / 300).max(1) as usize;
    let (mut sx, mut sy, mut n_col, mut n) = (0.0f32, 0.0f32, 0usize, 0usize);
    for p in img.data.chunks_exact(3).step_by(step) {
        let y = luma([p[0], p[1], p[2]]);
        if !(t::COLOUR_LUMA.0..=t::COLOUR_LUMA.1).contains(&y) {
            continue;
        }
        n += 1;
        let cb = p[2] as f32 - y as f32;
        let cr = p[0] as f32 - y as f32;
        // Not `hypotf`: per pixel, and WASM's libm computes its square root in software.
        let chroma = (cb * cb + cr * cr).sqrt();
        if chroma >= t::COLOUR_MIN_CHROMA {
            n_col += 1;
            sx += cb / chroma;
            sy += cr / chroma;
        }
    }
    let spread_deg = if n_col > 0 {
        let r = (libm::hypotf(sx, sy) / n_col as f32).clamp(1e-6, 1.0);
        libm::sqrtf(-2.0 * libm::logf(r)).to_degrees()
    } else {
        0.0
    };
    // A handful of tinted pixels (JPEG noise at edges) is still a greyscale photo.
    let share = n_col as f32 / n.max(1) as f32;
    let value = if share >= t::COLOUR_MIN_SHARE {
        spread_deg
    } else {
        0.0
    };
    let v = grade(
        value,
        (Some(t::COLOUR_PASS), None),
        (Some(t::COLOUR_FAIL), None),
    );
    check(
        CheckId::Colour,
        value,
        v,
        [
            m("彩色照片", "Colour photo"),
            m(
                "照片色彩偏淡，请确认是彩色照片、未加滤镜",
                "Colours are faint: make sure it is a colour photo without a filter",
            ),
            m(
                "须为彩色照片，不能是黑白或单色调照片",
                "It must be a colour photo, not black-and-white or a single tint",
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20×20 face of luma `base`, its first `lit` rows at luma 120.
    fn face(base: u8, lit: u32) -> (Rgb, Region) {
        let mut img = Rgb::new(20, 20);
        for (i, px) in img.data.chunks_exact_mut(3).enumerate() {
            px.fill(if (i as u32) < lit * 20 { 120 } else { base });
        }
        let region = Region {
            x0: 0,
            y0: 0,
            x1: 20,
            y1: 20,
        };
        (img, region)
    }

    #[test]
    fn a_dark_face_with_lit_parts_warns_and_a_dark_photo_fails() {
        let (img, r) = face(40, 2);
        let lit = exposure_check(&img, &r);
        assert!(
            lit.value.unwrap() < f64::from(t::FACE_LUMA_FAIL.0),
            "{lit:?}"
        );
        assert_eq!(lit.status, Status::Warn, "{lit:?}");
        let (img, r) = face(40, 0);
        assert_eq!(exposure_check(&img, &r).status, Status::Fail);
    }
}
