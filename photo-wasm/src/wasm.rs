//! The wasm-bindgen layer: plain JS objects in and out, nothing else. Compiled only for wasm32.

use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export type Status = "pass" | "warn" | "fail";
export type CheckId =
  | "decode" | "file_size" | "resolution" | "face_count" | "framing" | "tilt" | "turn" | "nod"
  | "exposure" | "shadow" | "reflection" | "sharpness" | "colour" | "background" | "eyes_open"
  | "expression";
export interface Range { min: number | null; max: number | null; }
export interface Check {
  id: CheckId;
  status: Status;
  value: number | null;
  range: Range | null;
  message_zh: string;
  message_en: string;
}
export type Point = [number, number];
export interface Face {
  x: number; y: number; width: number; height: number; score: number;
  right_eye: Point; left_eye: Point; nose: Point; mouth: Point; right_ear: Point; left_ear: Point;
  roll_deg: number; yaw: number | null; pitch: number | null; frontal: boolean;
}
export interface Report {
  spec_id: string;
  width: number;
  height: number;
  checks: Check[];
  faces: Face[];
}
export interface Note { code: string; message_zh: string; message_en: string; }
export interface FinishReport {
  spec_id: string;
  width: number;
  height: number;
  rotated_deg: number;
  background: string;
  background_replaced: boolean;
  soft_edge_px: number;
  note: Note | null;
}
export interface PhotoRgba { width: number; height: number; pixels: Uint8Array; finish: FinishReport; }
export interface FinishedRgba { report: Report; photo: PhotoRgba | null; }
export interface Span { min: number; max: number; }
export interface HeadGeometry {
  face_width_px: Span | null;
  head_width_px: Span | null;
  head_height_px: Span | null;
  top_margin_px: Span;
  eye_line_min_from_bottom_px: number | null;
  chin_min_from_bottom_px: number | null;
}
export interface Spec {
  id: string; name_zh: string; name_en: string;
  width_px: number; height_px: number; dpi: number;
  background: string;
  file_size_bytes: Span;
  head: HeadGeometry;
  source: string;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "Report")]
    pub type JsReport;
    #[wasm_bindgen(typescript_type = "Spec[]")]
    pub type JsSpecs;
    #[wasm_bindgen(typescript_type = "FinishedRgba")]
    pub type JsFinished;
}

fn to_js<T: Serialize + ?Sized, J: JsCast>(value: &T) -> Result<J, JsError> {
    // JSON-compatible: `None` becomes `null`, exactly as in the server's JSON.
    // Bytes (a finished photo's pixels) as a Uint8Array, not an array of numbers.
    let serializer =
        serde_wasm_bindgen::Serializer::json_compatible().serialize_bytes_as_arrays(false);
    let js = value.serialize(&serializer)?;
    Ok(js.unchecked_into())
}

/// The spec for `id`, once the models every check needs are loaded: a check without the face
/// landmark model would judge poses it cannot measure, one without the segmentation model
/// shoulders it cannot see, so it is refused outright.
fn spec(id: &str) -> Result<&'static crate::Spec, JsError> {
    if crate::landmarks::FaceMesh::shared().is_none() {
        return Err(JsError::new(
            "the face landmark model is not loaded: call load_model(\"face_landmark\", bytes of face_landmark.bin)",
        ));
    }
    if crate::segment::Segmenter::shared().is_none() {
        return Err(JsError::new(
            "the segmentation model is not loaded: call load_model(\"selfie_segmentation\", bytes of selfie_segmentation.bin)",
        ));
    }
    crate::spec_by_id(id).ok_or_else(|| JsError::new(&format!("unknown spec id {id:?}")))
}

/// Checks an encoded JPEG or PNG photo. Throws for an unknown spec id or before the face
/// landmark and the segmentation models are loaded.
#[cfg(feature = "decode")]
#[wasm_bindgen]
pub fn check_encoded(bytes: &[u8], spec_id: &str) -> Result<JsReport, JsError> {
    to_js(&crate::check(bytes, spec(spec_id)?))
}

/// Checks RGBA pixels (e.g. `ImageData.data` from a canvas). Throws for an unknown spec id or
/// before the face landmark and the segmentation models are loaded.
#[wasm_bindgen]
pub fn check_rgba(
    width: u32,
    height: u32,
    pixels: &[u8],
    spec_id: &str,
) -> Result<JsReport, JsError> {
    to_js(&crate::check_rgba(width, height, pixels, spec(spec_id)?))
}

/// All document specs.
#[wasm_bindgen]
pub fn specs() -> Result<JsSpecs, JsError> {
    to_js(crate::specs())
}

/// Loads a model file shipped beside the `.wasm`: `"face_landmark"` (`face_landmark.bin`) and
/// `"selfie_segmentation"` (`selfie_segmentation.bin`), both needed by every check. Throws for an unknown name or a malformed file.
#[wasm_bindgen]
pub fn load_model(name: &str, bytes: &[u8]) -> Result<(), JsError> {
    let loaded = match name {
        "face_landmark" => crate::landmarks::load(bytes),
        "selfie_segmentation" => crate::segment::load(bytes),
        _ => return Err(JsError::new(&format!("unknown model {name:?}"))),
    };
    loaded.map_err(|e| JsError::new(&e.to_string()))
}

/// Checks RGBA pixels and, when they show one frontal face, finishes the document photo (RGBA
/// pixels and what was done) exactly as the server does. Throws for an unknown spec id or when
/// the face landmark or the segmentation model was not loaded.
#[wasm_bindgen]
pub fn finish_rgba(
    width: u32,
    height: u32,
    pixels: &[u8],
    spec_id: &str,
) -> Result<JsFinished, JsError> {
    let done = crate::finish_rgba(width, height, pixels, spec(spec_id)?)
        .map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&done)
}
