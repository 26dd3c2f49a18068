//! Head pose and the spec's crop, from a detection's box and keypoints.

use crate::detect::{Detection, Point};
use crate::specs::{Span, Spec};
use crate::thresholds as t;

/// Eye-line angle in degrees (positive: the subject's left eye, on the image right, is lower).
pub fn roll_deg(d: &Detection) -> f32 {
    let (dx, dy) = (
        d.left_eye[0] - d.right_eye[0],
        d.left_eye[1] - d.right_eye[1],
    );
    libm::atan2f(dy, dx).to_degrees()
}

pub fn midpoint(a: Point, b: Point) -> Point {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

/// The spec's face-box width in final-photo pixels: the middle of what all its head figures allow,
/// each converted to the detector's box with the proportions in `thresholds`.
pub fn target_box_width(spec: &Spec) -> f32 {
    let h = &spec.head;
    let ranges: Vec<(f32, f32)> = [
        h.face_width_px.map(|s| scaled(s, t::FACE_WIDTH_PER_BOX)),
        h.head_width_px.map(|s| scaled(s, t::HEAD_WIDTH_PER_BOX)),
        h.head_height_px
            .map(|s| scaled(s, t::CROWN_ABOVE_EYES_PER_BOX + t::CHIN_BELOW_EYES_PER_BOX)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let lo = ranges.iter().map(|r| r.0).fold(f32::MIN, f32::max);
    let hi = ranges.iter().map(|r| r.1).fold(f32::MAX, f32::min);
    if ranges.is_empty() {
        // No head figure at all: a face about half the photo's width.
        spec.width_px as f32 / 2.0
    } else if lo <= hi {
        (lo + hi) / 2.0
    } else {
        ranges.iter().map(|r| (r.0 + r.1) / 2.0).sum::<f32>() / ranges.len() as f32
    }
}

fn scaled(s: Span, per_box: f32) -> (f32, f32) {
    (s.min as f32 / per_box, s.max as f32 / per_box)
}

/// The final photo's frame in source pixels: an upright rectangle in the face's own frame
/// (rotated by the roll), which normalisation turns into the spec's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    /// Centre in source pixels.
    pub cx: f32,
    pub cy: f32,
    /// Size in source pixels.
    pub width: f32,
    pub height: f32,
    /// Rotation of the frame (the eye line's angle), degrees.
    pub angle_deg: f32,
    /// Final-photo pixels per source pixel.
    pub scale: f32,
}

impl Crop {
    /// The source point for a point given in final-photo pixels.
    pub fn to_source(&self, x: f32, y: f32, spec: &Spec) -> Point {
        let (u, v) = (
            (x - spec.width_px as f32 / 2.0) / self.scale,
            (y - spec.height_px as f32 / 2.0) / self.scale,
        );
        let (s, c) = libm::sincosf(self.angle_deg.to_radians());
        [self.cx + u * c - v * s, self.cy + u * s + v * c]
    }

    /// The final-photo point for a source point (inverse of [`Crop::to_source`]).
    pub fn from_source(&self, p: Point, spec: &Spec) -> Point {
        let (dx, dy) = (p[0] - self.cx, p[1] - self.cy);
        let (s, c) = libm::sincosf(self.angle_deg.to_radians());
        let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
        [
            u * self.scale + spec.width_px as f32 / 2.0,
            v * self.scale + spec.height_px as f32 / 2.0,
        ]
    }
}

/// Where the spec's frame falls on the source, for a face `d` in source pixels. `crown_above_eyes`
/// (source pixels) overrides the estimate from the face size when the hair line was measured.
pub fn crop(d: &Detection, spec: &Spec, crown_above_eyes: Option<f32>) -> Crop {
    let angle = roll_deg(d);
    let scale = target_box_width(spec) / d.width.max(1.0);
    let h = &spec.head;
    let height = spec.height_px as f32;
    // Vertical positions in final-photo pixels, measured from the eye line.
    let crown = crown_above_eyes.unwrap_or(t::CROWN_ABOVE_EYES_PER_BOX * d.width) * scale;
    let chin = t::CHIN_BELOW_EYES_PER_BOX * d.width * scale;
    let mut eyes_from_top = h.top_margin_px.mid() + crown;
    // When the hair and the eye line cannot both be placed, the standards keep the eyes (and the
    // chin) in place and cut standing hair.
    if let Some(min) = h.eye_line_min_from_bottom_px {
        eyes_from_top = eyes_from_top.min(height - min as f32);
    }
    if let Some(min) = h.chin_min_from_bottom_px {
        eyes_from_top = eyes_from_top.min(height - min as f32 - chin);
    }
    let eyes = midpoint(d.left_eye, d.right_eye);
    // Offset of the frame's centre from the eyes, in the face's frame, back to source pixels.
    let v = (height / 2.0 - eyes_from_top) / scale;
    let (s, c) = libm::sincosf(angle.to_radians());
    Crop {
        cx: eyes[0] - v * s,
        cy: eyes[1] + v * c,
        width: spec.width_px as f32 / scale,
        height: height / scale,
        angle_deg: angle,
        scale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specs::spec_by_id;

    fn face(x: f32, y: f32, w: f32) -> Detection {
        let e = y + w * 0.3;
        Detection {
            x,
            y,
            width: w,
            height: w,
            score: 1.0,
            right_eye: [x + w * 0.3, e],
            left_eye: [x + w * 0.7, e],
            nose: [x + w * 0.5, e + w * 0.2],
            mouth: [x + w * 0.5, e + w * 0.4],
            right_ear: [x, e + w * 0.1],
            left_ear: [x + w, e + w * 0.1],
        }
    }

    #[test]
    fn upright_face_has_no_roll() {
        let f = face(100.0, 100.0, 200.0);
        assert!(roll_deg(&f).abs() < 1e-4);
    }

    #[test]
    fn id_card_crop_puts_the_eyes_where_ga_461_wants_them() {
        let spec = spec_by_id("id-card").unwrap();
        let f = face(400.0, 500.0, 300.0);
        let c = crop(&f, spec, None);
        // The eye midpoint maps to the photo's centre column and ≥ 207 px above the bottom.
        let eyes = midpoint(f.left_eye, f.right_eye);
        let top_left = c.to_source(0.0, 0.0, spec);
        let eye_y_in_photo = (eyes[1] - top_left[1]) * c.scale;
        assert!((eyes[0] - c.cx).abs() < 1e-3);
        assert!(spec.height_px as f32 - eye_y_in_photo >= 207.0 - 1e-3);
        let back = c.from_source(c.to_source(12.0, 34.0, spec), spec);
        assert!((back[0] - 12.0).abs() < 1e-2 && (back[1] - 34.0).abs() < 1e-2);
        let box_in_photo = f.width * c.scale * t::FACE_WIDTH_PER_BOX;
        assert!(spec.head.face_width_px.unwrap().contains(box_in_photo));
    }
}
