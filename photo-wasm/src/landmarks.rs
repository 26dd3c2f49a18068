//! MediaPipe's face landmark model (468 points with depth, Apache-2.0, see `models/`) run by `nn.rs`
//! on a square around each face the detector found, rotated so the eyes are level as MediaPipe does.
//! Head pose, eye and mouth opening come from these points: unlike BlazeFace's six keypoints they
//! do not depend on the ears (hidden by hair) and follow the face's own surface.
//! Natively the model is compiled in; the WebAssembly builds leave it out (it ships once beside
//! both `.wasm` builds, `face_landmark.bin`) and take it through [`load`].

use crate::detect::{Detection, Point};
use crate::nn::{Graph, ModelError, Shipped};
use crate::raster::Rgb;
use crate::thresholds as t;

/// The model's input side.
const INPUT: usize = 192;

#[cfg(not(target_arch = "wasm32"))]
static MODEL: Shipped = Shipped::new(Some(include_bytes!("../models/face_landmark.bin")));
#[cfg(target_arch = "wasm32")]
static MODEL: Shipped = Shipped::new(None);

/// Loads the model file (`face_landmark.bin`); the first valid one stays.
pub fn load(bytes: &[u8]) -> Result<(), ModelError> {
    MODEL.load(bytes)
}

pub struct FaceMesh {
    graph: &'static Graph,
}

impl FaceMesh {
    /// The model, when it is at hand: always natively, in WebAssembly once [`load`]ed.
    pub fn shared() -> Option<FaceMesh> {
        MODEL.get().map(|graph| FaceMesh { graph })
    }

    /// The raw outputs for a 192×192×3 input in [0, 1]: 468 × (x, y, z) in input pixels, and the
    /// face-presence logit.
    pub fn raw(&self, input: Vec<f32>) -> (Vec<f32>, f32) {
        let mut out = self.graph.run(input).into_iter();
        let points = out.next().unwrap_or_default();
        let flag = out
            .next()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::MIN);
        (points, flag)
    }
}

/// The landmarks of one face, looked at once as photographed and once mirrored, each in pixels of
/// its own look's window (x along the eye line, y down the face, z in the same units, towards the
/// camera negative): every measure is taken on both looks and pooled, so a mirrored photo measures
/// the same (and yaw and roll the same with the opposite sign).
pub struct Mesh {
    pub points: Vec<[f32; 3]>,
    /// The mirrored look: the model's own left and right, so its "left eye" is the subject's right.
    pub mirrored: Vec<[f32; 3]>,
    /// The model's face-presence score (0–1), the lower of the two looks.
    pub presence: f32,
    /// The presence score of each look (as photographed, mirrored).
    presence_of: (f32, f32),
    /// Where the window lies in the image.
    window: Window,
}

/// Landmark indices of MediaPipe's canonical face mesh. "Right" is the subject's right (image left).
pub mod idx {
    pub const FOREHEAD: usize = 10;
    pub const CHIN: usize = 152;
    pub const NOSE_TIP: usize = 1;
    pub const RIGHT_EYE_OUTER: usize = 33;
    pub const RIGHT_EYE_INNER: usize = 133;
    pub const RIGHT_EYE_UPPER: usize = 159;
    pub const RIGHT_EYE_LOWER: usize = 145;
    pub const LEFT_EYE_OUTER: usize = 263;
    pub const LEFT_EYE_INNER: usize = 362;
    pub const LEFT_EYE_UPPER: usize = 386;
    pub const LEFT_EYE_LOWER: usize = 374;
    pub const RIGHT_CHEEK: usize = 234;
    pub const LEFT_CHEEK: usize = 454;
    pub const MOUTH_RIGHT: usize = 61;
    pub const MOUTH_LEFT: usize = 291;
    pub const LIP_UPPER_INNER: usize = 13;
    pub const LIP_LOWER_INNER: usize = 14;
}

/// Where the document's needed parts of a head are, in pixels of the image the mesh was run on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outline {
    /// The top of the skull, estimated above the mesh's top (which ends on the upper forehead).
    pub crown: Point,
    pub chin: Point,
    /// The face's contour at the ears, on the subject's right (image left) and left.
    pub right: Point,
    pub left: Point,
}

/// A face's own coordinates (see [`Mesh::frame`]): `u` across (towards the subject's left), `v`
/// down, both in distances between the eyes, from the point between them. The landmarks' places
/// in it are measured on this face, not assumed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub origin: Point,
    pub across: Point,
    pub down: Point,
    pub iod: f32,
    /// `u` of the subject's right eye's centre (the left one's is its negative).
    pub right_eye: f32,
    /// `v` of the nose tip, the mouth's centre, the mesh's top (upper forehead) and the chin.
    pub nose: f32,
    pub mouth: f32,
    pub top: f32,
    pub chin: f32,
    /// Half the cheek contour's width at the ears (`u` of the left cheek's contour).
    pub cheek: f32,
}

impl Frame {
    /// The image point at face coordinates (u, v).
    pub fn to_image(&self, u: f32, v: f32) -> Point {
        let (a, d, k) = (self.across, self.down, self.iod);
        [
            self.origin[0] + (a[0] * u + d[0] * v) * k,
            self.origin[1] + (a[1] * u + d[1] * v) * k,
        ]
    }

    /// Face coordinates of an image point.
    pub fn to_frame(&self, p: Point) -> [f32; 2] {
        let (dx, dy) = (p[0] - self.origin[0], p[1] - self.origin[1]);
        [
            (dx * self.across[0] + dy * self.across[1]) / self.iod,
            (dx * self.down[0] + dy * self.down[1]) / self.iod,
        ]
    }
}

/// The square window MediaPipe feeds the landmark model: centred on the detection box, 1.5 box
/// sides wide, rotated by the eye line.
struct Window {
    centre: Point,
    side: f32,
    cos: f32,
    sin: f32,
}

impl Window {
    fn around(d: &Detection) -> Window {
        let angle = libm::atan2f(
            d.left_eye[1] - d.right_eye[1],
            d.left_eye[0] - d.right_eye[0],
        );
        let (sin, cos) = libm::sincosf(angle);
        Window {
            centre: [d.x + d.width / 2.0, d.y + d.height / 2.0],
            side: d.width.max(d.height) * t::MESH_WINDOW,
            cos,
            sin,
        }
    }

    /// Image point for window coordinates in [0, 1]² (u along the eye line, v down the face).
    fn to_image(&self, u: f32, v: f32) -> Point {
        let (du, dv) = ((u - 0.5) * self.side, (v - 0.5) * self.side);
        [
            self.centre[0] + du * self.cos - dv * self.sin,
            self.centre[1] + du * self.sin + dv * self.cos,
        ]
    }
}

/// The image around a window, shrunk so one of its pixels is about one of the model's input
/// pixels: a window much larger than the input is first shrunk with an anti-aliased resize so the
/// bilinear samples of [`Patch::input`] do not alias. Made once for both looks.
struct Patch {
    image: Rgb,
    /// The image pixel at the patch's top-left corner.
    x0: i64,
    y0: i64,
    /// Patch pixels per image pixel.
    k: f32,
}

impl Patch {
    fn around(img: &Rgb, w: &Window) -> Patch {
        let reach = w.side * (w.cos.abs() + w.sin.abs()) / 2.0 + 2.0;
        let (x0, y0) = (
            (w.centre[0] - reach).floor() as i64,
            (w.centre[1] - reach).floor() as i64,
        );
        let span = (2.0 * reach).ceil() as u32 + 1;
        let image = img.crop(x0, y0, span, span);
        let f = (w.side / INPUT as f32).max(1.0);
        let small_side = ((span as f32 / f).round() as u32).max(2);
        let image = if f > 1.0 {
            image.resize(small_side, small_side)
        } else {
            image
        };
        let k = image.width as f32 / span as f32;
        Patch { image, x0, y0, k }
    }

    /// Samples the window into the model's input, [0, 1] RGB, mirrored left-right when `mirror`.
    fn input(&self, w: &Window, mirror: bool) -> Vec<f32> {
        let mut input = vec![0.0f32; INPUT * INPUT * 3];
        for y in 0..INPUT {
            for x in 0..INPUT {
                let u = (x as f32 + 0.5) / INPUT as f32;
                let u = if mirror { 1.0 - u } else { u };
                let p = w.to_image(u, (y as f32 + 0.5) / INPUT as f32);
                let px = bilinear(
                    &self.image,
                    (p[0] - self.x0 as f32) * self.k - 0.5,
                    (p[1] - self.y0 as f32) * self.k - 0.5,
                );
                let i = (y * INPUT + x) * 3;
                for c in 0..3 {
                    input[i + c] = px[c] / 255.0;
                }
            }
        }
        input
    }
}

/// `x.floor()` without a call to `floorf` (the x86-64 baseline has no rounding instruction; the
/// mesh's input samples 2 × 36,864 points a look): truncated, then one down for a negative
/// fraction. The same value for any `x` within `i64`'s range (beyond 2^24 every `f32` is whole;
/// sample points are pixel coordinates, far inside it); a NaN gives 0, which the caller's `as i64`
/// makes of a NaN too.
fn floor(x: f32) -> f32 {
    let t = x as i64 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

fn bilinear(img: &Rgb, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width as i64, img.height as i64);
    let (fx, fy) = (floor(x), floor(y));
    let (ax, ay) = (x - fx, y - fy);
    let at = |xi: i64, yi: i64| {
        let p = img.pixel(xi.clamp(0, w - 1) as u32, yi.clamp(0, h - 1) as u32);
        [p[0] as f32, p[1] as f32, p[2] as f32]
    };
    let (xi, yi) = (fx as i64, fy as i64);
    let (a, b, c, d) = (
        at(xi, yi),
        at(xi + 1, yi),
        at(xi, yi + 1),
        at(xi + 1, yi + 1),
    );
    let mut out = [0.0; 3];
    for ch in 0..3 {
        let top = a[ch] + (b[ch] - a[ch]) * ax;
        let bottom = c[ch] + (d[ch] - c[ch]) * ax;
        out[ch] = top + (bottom - top) * ay;
    }
    out
}

/// Runs the model on the face `d` of `img`, as photographed and mirrored.
pub fn mesh(model: &FaceMesh, img: &Rgb, d: &Detection) -> Mesh {
    let w = Window::around(d);
    let patch = Patch::around(img, &w);
    let look = |mirror: bool| {
        let (raw, flag) = model.raw(patch.input(&w, mirror));
        let scale = w.side / INPUT as f32;
        let points = raw
            .chunks_exact(3)
            .map(|p| [p[0] * scale, p[1] * scale, p[2] * scale])
            .collect::<Vec<_>>();
        (points, sigmoid(flag))
    };
    let (points, a) = look(false);
    let (mirrored, b) = look(true);
    Mesh {
        points,
        mirrored,
        presence: a.min(b),
        presence_of: (a, b),
        window: w,
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x.clamp(-100.0, 100.0)))
}

/// Head pose in degrees: yaw positive when the face turns towards the image's right, pitch
/// positive looking down, roll positive when the subject's left eye (image right) is lower.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

type V3 = [f32; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm(a: V3) -> V3 {
    let n = libm::sqrtf(dot(a, a)).max(1e-6);
    [a[0] / n, a[1] / n, a[2] / n]
}
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// The pose of one look: the face's left-right axis from the eye corners and cheeks, its
/// up-down axis from forehead to chin, the facing direction across both (the 3-D points, so it
/// needs no ear and no average face).
fn pose_of(p: &[[f32; 3]]) -> Pose {
    use idx::*;
    let across = add(
        norm(sub(p[LEFT_EYE_OUTER], p[RIGHT_EYE_OUTER])),
        norm(sub(p[LEFT_CHEEK], p[RIGHT_CHEEK])),
    );
    let ex = norm(across);
    let down = sub(p[CHIN], p[FOREHEAD]);
    let ey = norm(sub(down, ex.map(|c| c * dot(down, ex))));
    // Towards the camera (z is negative towards it).
    let f = cross(ey, ex);
    Pose {
        yaw: libm::atan2f(f[0], -f[2]).to_degrees(),
        pitch: libm::atan2f(f[1], -f[2]).to_degrees() - t::PITCH_NEUTRAL_DEG,
        roll: libm::atan2f(ex[1], ex[0]).to_degrees(),
    }
}

impl Mesh {
    /// The pose, the photographed and the mirrored look pooled (yaw and roll change sign in a
    /// mirror), each weighted by the model's face presence in it (a look where the model hardly
    /// sees a face, e.g. on a blurred photo, says little); roll is the window's angle plus the
    /// face's within it.
    pub fn pose(&self) -> Pose {
        let (a, b) = (pose_of(&self.points), pose_of(&self.mirrored));
        let (wa, wb) = (self.presence_of.0, self.presence_of.1);
        let total = (wa + wb).max(1e-6);
        let pool = |x: f32, y: f32| (x * wa + y * wb) / total;
        Pose {
            yaw: pool(a.yaw, -b.yaw),
            pitch: pool(a.pitch, b.pitch),
            roll: libm::atan2f(self.window.sin, self.window.cos).to_degrees()
                + pool(a.roll, -b.roll),
        }
    }

    /// A landmark in image pixels, both looks pooled; `twin` is its mirror image's index
    /// (itself on the midline), which the mirrored look calls it.
    fn image_point(&self, i: usize, twin: usize) -> Point {
        let side = self.window.side;
        let (a, b) = (self.points[i], self.mirrored[twin]);
        // The mirrored look's x runs the other way across the window.
        let (u, v) = (
            (a[0] + side - b[0]) / 2.0 / side,
            (a[1] + b[1]) / 2.0 / side,
        );
        self.window.to_image(u, v)
    }

    /// The face's own frame in image pixels: origin between the eyes' centres, `across` from the
    /// subject's right eye to the left, `down` square to it, `iod` the distance between the eyes'
    /// centres; both looks pooled, so a mirrored photo gets the mirrored frame.
    pub fn frame(&self) -> Frame {
        use idx::*;
        let mid = |a: Point, b: Point| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
        let right = mid(
            self.image_point(RIGHT_EYE_OUTER, LEFT_EYE_OUTER),
            self.image_point(RIGHT_EYE_INNER, LEFT_EYE_INNER),
        );
        let left = mid(
            self.image_point(LEFT_EYE_OUTER, RIGHT_EYE_OUTER),
            self.image_point(LEFT_EYE_INNER, RIGHT_EYE_INNER),
        );
        let iod = libm::hypotf(left[0] - right[0], left[1] - right[1]).max(1.0);
        let across = [(left[0] - right[0]) / iod, (left[1] - right[1]) / iod];
        let mut frame = Frame {
            origin: mid(right, left),
            across,
            down: [-across[1], across[0]],
            iod,
            right_eye: 0.0,
            nose: 0.0,
            mouth: 0.0,
            top: 0.0,
            chin: 0.0,
            cheek: 0.0,
        };
        let v = |p: Point| frame.to_frame(p);
        let (nose, mouth, top, chin) = (
            v(self.image_point(NOSE_TIP, NOSE_TIP))[1],
            v(mid(
                self.image_point(LIP_UPPER_INNER, LIP_UPPER_INNER),
                self.image_point(LIP_LOWER_INNER, LIP_LOWER_INNER),
            ))[1],
            v(self.image_point(FOREHEAD, FOREHEAD))[1],
            v(self.image_point(CHIN, CHIN))[1],
        );
        let cheek = (v(self.image_point(LEFT_CHEEK, RIGHT_CHEEK))[0]
            - v(self.image_point(RIGHT_CHEEK, LEFT_CHEEK))[0])
            / 2.0;
        frame.right_eye = v(right)[0];
        (frame.nose, frame.mouth, frame.top, frame.chin, frame.cheek) =
            (nose, mouth, top, chin, cheek);
        frame
    }

    /// The head's outline: chin and cheek contour from the mesh, the crown
    /// [`t::CROWN_ABOVE_MESH_TOP`] of the mesh's height above its top.
    pub fn outline(&self) -> Outline {
        use idx::*;
        let (top, chin) = (
            self.image_point(FOREHEAD, FOREHEAD),
            self.image_point(CHIN, CHIN),
        );
        let k = t::CROWN_ABOVE_MESH_TOP;
        Outline {
            crown: [
                top[0] + (top[0] - chin[0]) * k,
                top[1] + (top[1] - chin[1]) * k,
            ],
            chin,
            right: self.image_point(RIGHT_CHEEK, LEFT_CHEEK),
            left: self.image_point(LEFT_CHEEK, RIGHT_CHEEK),
        }
    }

    /// Eye opening, lid gap over eye width (open eyes measure about 0.2–0.4, closed ones under
    /// 0.1): the lower of the two eyes' (one eye shut is still a shut eye), both looks averaged.
    pub fn min_eye_opening(&self) -> f32 {
        use idx::*;
        let one = |p: &[[f32; 3]], up, low, outer, inner| {
            dist2(p[up], p[low]) / dist2(p[outer], p[inner]).max(1e-3)
        };
        let eyes = |p: &[[f32; 3]]| {
            (
                one(
                    p,
                    RIGHT_EYE_UPPER,
                    RIGHT_EYE_LOWER,
                    RIGHT_EYE_OUTER,
                    RIGHT_EYE_INNER,
                ),
                one(
                    p,
                    LEFT_EYE_UPPER,
                    LEFT_EYE_LOWER,
                    LEFT_EYE_OUTER,
                    LEFT_EYE_INNER,
                ),
            )
        };
        // The mirrored look sees the subject's right eye as its left.
        let (a, b) = (eyes(&self.points), eyes(&self.mirrored));
        ((a.0 + b.1) / 2.0).min((a.1 + b.0) / 2.0)
    }

    /// Lip gap over mouth width, both looks averaged (a closed mouth measures under 0.05).
    pub fn mouth_opening(&self) -> f32 {
        use idx::*;
        let one = |p: &[[f32; 3]]| {
            dist2(p[LIP_UPPER_INNER], p[LIP_LOWER_INNER])
                / dist2(p[MOUTH_RIGHT], p[MOUTH_LEFT]).max(1e-3)
        };
        (one(&self.points) + one(&self.mirrored)) / 2.0
    }

    /// Mouth width over the distance between the eyes' outer corners, both looks averaged: a
    /// relaxed mouth is about 0.5–0.6 of it, a wide smile stretches it.
    pub fn mouth_width(&self) -> f32 {
        use idx::*;
        let one = |p: &[[f32; 3]]| {
            dist2(p[MOUTH_RIGHT], p[MOUTH_LEFT])
                / dist2(p[RIGHT_EYE_OUTER], p[LEFT_EYE_OUTER]).max(1e-3)
        };
        (one(&self.points) + one(&self.mirrored)) / 2.0
    }
}

/// Distance in the image plane.
fn dist2(a: [f32; 3], b: [f32; 3]) -> f32 {
    libm::hypotf(a[0] - b[0], a[1] - b[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::golden;

    #[test]
    fn runtime_matches_the_reference_interpreter() {
        let want = golden::outputs(include_bytes!("../models/face-landmark-golden.bin"));
        let (points, flag) = FaceMesh::shared().unwrap().raw(golden::input(INPUT));
        assert_eq!(points.len() + 1, want.len());
        golden::assert_close("landmarks", &points, &want[..points.len()]);
        golden::assert_close("face flag", &[flag], &want[points.len()..]);
    }
}
