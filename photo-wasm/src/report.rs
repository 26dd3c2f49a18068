//! The report: the same JSON from the Rust API, the CLI and the wasm exports.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// Stable check ids (the API contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// The file is a JPEG or PNG that decodes within the limits.
    Decode,
    /// The upload's size in bytes.
    FileSize,
    /// Source pixels available for the spec's face width.
    Resolution,
    /// Exactly one frontal face.
    FaceCount,
    /// The spec's crop fits inside the photo: room above the head, shoulders below.
    Framing,
    /// Eye line angle.
    Tilt,
    /// Head turned left or right (yaw, degrees).
    Turn,
    /// Head raised or lowered (pitch, degrees).
    Nod,
    /// Face brightness and clipping.
    Exposure,
    /// One side of the face darker than the other.
    Shadow,
    /// Specular highlights on the face.
    Reflection,
    /// Focus and motion blur at the final photo's scale.
    Sharpness,
    /// A colour photo, not greyscale or a tinted monochrome.
    Colour,
    /// Plain, light background (warn only: the server whitens it).
    Background,
    /// Both eyes open (the landmark mesh's lid gap).
    EyesOpen,
    /// A natural expression: mouth closed, no wide smile (warn only: the reviewer decides).
    Expression,
    /// Nose and mouth visible: no mask, hand or object over them.
    Occlusion,
    /// No sunglasses or tinted glasses.
    Glasses,
    /// No hat or cap.
    Headwear,
    /// Both shoulders in the photo and level (the person segmentation).
    Shoulders,
    /// No earrings or other jewellery where they can be seen (warn only: the reviewer decides).
    Accessories,
}

/// The allowed range of a check's value (either end may be open).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub id: CheckId,
    pub status: Status,
    /// The measured value, when the check measures one.
    pub value: Option<f64>,
    /// The range that passes.
    pub range: Option<Range>,
    pub message_zh: String,
    pub message_en: String,
}

/// A detected face in pixels of the upright source photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub score: f64,
    /// The subject's right eye (on the left of an unmirrored photo).
    pub right_eye: [f64; 2],
    pub left_eye: [f64; 2],
    pub nose: [f64; 2],
    pub mouth: [f64; 2],
    pub right_ear: [f64; 2],
    pub left_ear: [f64; 2],
    /// Eye-line angle in degrees (positive: the subject's left eye is lower), from the landmark
    /// mesh when it was measured, else from the detector's eyes.
    pub roll_deg: f64,
    /// Left-right turn in degrees from the landmark mesh (positive: towards the image's right);
    /// `null` for a face too small beside the largest one to be the applicant (not measured).
    pub yaw: Option<f64>,
    /// Nod in degrees (positive looking down, negative looking up); `null` like `yaw`.
    pub pitch: Option<f64>,
    /// Counted as a face looking at the camera.
    pub frontal: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub spec_id: String,
    /// Size of the upright source photo (0 when it could not be decoded).
    pub width: u32,
    pub height: u32,
    pub checks: Vec<Check>,
    pub faces: Vec<Face>,
}

impl Report {
    /// Whether any check failed (the photo must be retaken).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Rounds for the report: three decimals are far below any threshold's precision and keep the JSON
/// short.
pub(crate) fn round(v: f32) -> f64 {
    (v as f64 * 1000.0).round() / 1000.0
}
