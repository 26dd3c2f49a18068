//! Person segmentation: MediaPipe's selfie segmentation (256×256 in, person probability out, see
//! `models/README.md`) run by `nn.rs`. Natively the model is compiled in; the WebAssembly builds
//! leave it out (it ships once beside both `.wasm` builds) and take it through [`load`].

use crate::canonical;
use crate::detect::Detection;
use crate::nn::{ModelError, Shipped};
use crate::raster::Rgb;
use crate::thresholds as t;
use std::borrow::Cow;

/// The model's input and output side.
pub const SIDE: u32 = 256;

pub struct Segmenter {
    graph: &'static crate::nn::Graph,
}

/// A person probability map, `width`×`height` values in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

#[cfg(not(target_arch = "wasm32"))]
static MODEL: Shipped = Shipped::new(Some(include_bytes!("../models/selfie_segmentation.bin")));
#[cfg(target_arch = "wasm32")]
static MODEL: Shipped = Shipped::new(None);

/// Loads the model file (`selfie_segmentation.bin`); the first valid one stays.
pub fn load(bytes: &[u8]) -> Result<(), ModelError> {
    MODEL.load(bytes)
}

impl Segmenter {
    /// The model, when it is at hand: always natively, in WebAssembly once [`load`]ed.
    pub fn shared() -> Option<Segmenter> {
        MODEL.get().map(|graph| Segmenter { graph })
    }

    /// The raw output (person probability, 256×256) for a 256×256×3 input in [0, 1].
    pub fn raw(&self, input: Vec<f32>) -> Vec<f32> {
        self.graph.run(input).into_iter().next().unwrap_or_default()
    }

    /// The check's segmentation of `image`: the person probability over it, stretched to the
    /// model's square as MediaPipe does, at the model's 256×256: one look, at the photo as taken
    /// or mirrored as [`canonical::image`] picks (the answer mirrored back), keeping the model's
    /// input for the finished photo's second look ([`Segmentation::matte`]). The model is not
    /// symmetric (a look misses different parts of a raised arm, loose hair or a pale shoulder
    /// than the mirrored one); at the canonical orientation a photo and its mirror image give it
    /// the same input, so a mirrored photo gets exactly the mirrored answer.
    pub fn segmentation(&self, image: &Rgb) -> Segmentation {
        let (picture, mirrored) = canonical::image(image);
        let input = Self::input(&picture);
        Segmentation {
            look: self.look(input.clone(), mirrored),
            input,
            mirrored,
        }
    }

    /// The model's answer to `input`, turned back to the photo's orientation when `input` is
    /// the photo's mirror image.
    fn look(&self, input: Vec<f32>, mirrored: bool) -> Mask {
        let raw = self.raw(input);
        Mask {
            width: SIDE,
            height: SIDE,
            data: if mirrored {
                canonical::mirrored::<_, 1>(&raw, SIDE as usize)
            } else {
                raw
            },
        }
    }

    /// The person probability over `image` at the other orientation than the canonical one
    /// [`Segmenter::segmentation`] looks at (the answer turned back to the photo's): a second look
    /// that sees what the model misses at the canonical one. A photo and its mirror image still
    /// give the model the same input.
    fn segment_other_way(&self, image: &Rgb) -> Mask {
        let (picture, mirrored) = canonical::turned(image, true);
        self.look(Self::input(&picture), mirrored)
    }

    /// The model's input for `image`: stretched to 256×256, values in [0, 1].
    fn input(image: &Rgb) -> Vec<f32> {
        let small = image.resize(SIDE, SIDE);
        small.data.iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// One look only (the photo as taken): the segmentation "alone" the benchmark compares with.
    pub fn segment_once(&self, image: &Rgb) -> Mask {
        self.look(Self::input(image), false)
    }
}

/// The check's segmentation: one look at the photo's canonical orientation, which the check's
/// rules measure on, and the model's input it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    pub look: Mask,
    /// The canonical orientation's input (256×256×3).
    input: Vec<f32>,
    /// The canonical orientation is the photo's mirror image.
    mirrored: bool,
}

impl Segmentation {
    /// The whole photo's person probability for the matte: the check's look averaged with a
    /// second look at its input mirrored. One look is enough for the check's rules, not for the
    /// matte: on `carvekit-woman-glasses-street` (grey shoulders against a grey road) it loses
    /// 0.014 of IoU against a large matting model even after the colour models (see the README).
    /// A mirrored photo has the same canonical input, so it still gets exactly the mirrored matte.
    pub fn matte(&self, segmenter: &Segmenter) -> Mask {
        // That look is at the canonical input's mirror image: the photo as taken when the
        // canonical orientation is mirrored.
        let input = canonical::mirrored::<_, 3>(&self.input, SIDE as usize);
        let other = segmenter.look(input, !self.mirrored);
        Mask {
            width: SIDE,
            height: SIDE,
            data: self
                .look
                .data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| (a + b) * 0.5)
                .collect(),
        }
    }
}

/// The person probability the finished photo is cut out along: the check's look at the whole
/// photo and one second look, at the other orientation (the model is not symmetric: the two
/// miss different parts of a raised arm, loose hair or a pale shoulder). Where the person is
/// small in the frame the second look is at a square around the person (see
/// [`t::MATTE_WINDOW_FACES`]), averaged with the whole look where the square reaches; otherwise
/// it is at the whole photo ([`Segmentation::matte`]). Either way two model runs, and a mirrored
/// photo gets the mirrored matte.
pub struct Person<'a> {
    whole: Cow<'a, Mask>,
    /// The square's look and where it lies, in pixels of the photo: x, y, width, height.
    close: Option<(Mask, [f32; 4])>,
    /// The photo's size in pixels.
    size: [f32; 2],
}

impl<'a> Person<'a> {
    /// `whole` is the check's segmentation of all of `image` (at any scale), `face` in pixels of
    /// `image`. The square is clamped to the photo; when that leaves all of it (a tight
    /// portrait), or without a face, the second look is at the whole photo instead.
    pub fn new(
        segmenter: &Segmenter,
        image: &Rgb,
        face: Option<&Detection>,
        whole: &'a Segmentation,
    ) -> Self {
        let close = face.and_then(|face| Self::closer_look(segmenter, image, face));
        Person {
            whole: match close {
                Some(_) => Cow::Borrowed(&whole.look),
                None => Cow::Owned(whole.matte(segmenter)),
            },
            close,
            size: [image.width as f32, image.height as f32],
        }
    }

    /// The look at the square around `face` and where it lies (see [`Person::close`]), when the
    /// square is neither all of `image` nor too small to show the model anything new.
    fn closer_look(
        segmenter: &Segmenter,
        image: &Rgb,
        face: &Detection,
    ) -> Option<(Mask, [f32; 4])> {
        let side = face.width * t::MATTE_WINDOW_FACES;
        let (cx, cy) = (
            face.x + face.width * 0.5,
            face.y + face.height * t::MATTE_WINDOW_FACE_ALONG,
        );
        let (x0, y0) = (cx - side * 0.5, cy - side * t::MATTE_WINDOW_FACE_AT);
        let clamp = |v: f32, max: u32| (v.round().max(0.0) as u32).min(max);
        let (left, top) = (clamp(x0, image.width), clamp(y0, image.height));
        let (right, bottom) = (
            clamp(x0 + side, image.width),
            clamp(y0 + side, image.height),
        );
        let whole_photo = (left, top, right, bottom) == (0, 0, image.width, image.height);
        // A square under a quarter of the model's input (a face of about 10 px) is only blown
        // up: it shows the model nothing the whole look did not see.
        let too_small =
            right.saturating_sub(left) < SIDE / 4 || bottom.saturating_sub(top) < SIDE / 4;
        (!whole_photo && !too_small).then(|| {
            let (w, h) = (right - left, bottom - top);
            let look = segmenter.segment_other_way(&image.crop(left as i64, top as i64, w, h));
            (look, [left as f32, top as f32, w as f32, h as f32])
        })
    }

    /// The probability at a point in pixels of the photo. Beyond the photo its border repeats,
    /// both looks alike (a square that reaches the photo's edge goes on past it, so the matte of
    /// a crop reaching past the photo has no step at the edge).
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.5, self.size[0] - 0.5);
        let y = y.clamp(0.5, self.size[1] - 0.5);
        let p = self.whole.sample(x / self.size[0], y / self.size[1]);
        match &self.close {
            Some((look, [left, top, w, h]))
                if (*left..left + w).contains(&x) && (*top..top + h).contains(&y) =>
            {
                (p + look.sample((x - left) / w, (y - top) / h)) * 0.5
            }
            _ => p,
        }
    }
}

impl Mask {
    /// Bilinear sample at a point given as a fraction of the mask's width and height (pixel
    /// centres at (i + ½)/n), clamped at the edges.
    pub fn sample(&self, u: f32, v: f32) -> f32 {
        let (w, h) = (self.width as f32, self.height as f32);
        let x = (u * w - 0.5).clamp(0.0, w - 1.0);
        let y = (v * h - 0.5).clamp(0.0, h - 1.0);
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = (
            (x0 + 1).min(self.width as usize - 1),
            (y0 + 1).min(self.height as usize - 1),
        );
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let at = |x: usize, y: usize| self.data[y * self.width as usize + x];
        let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
        let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
        top + (bottom - top) * fy
    }

    /// Resampled bilinearly to `width`×`height`.
    pub fn resize(&self, width: u32, height: u32) -> Mask {
        let mut data = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height {
            let v = (y as f32 + 0.5) / height as f32;
            for x in 0..width {
                data.push(self.sample((x as f32 + 0.5) / width as f32, v));
            }
        }
        Mask {
            width,
            height,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The synthetic input of `models/golden_selfie.py`.
    fn golden_input() -> Vec<f32> {
        let mut v = Vec::with_capacity(256 * 256 * 3);
        for y in 0..256 {
            for x in 0..256 {
                for c in 0..3 {
                    let (xf, yf, cf) = (x as f64, y as f64, c as f64);
                    let disc = (x - 128) * (x - 128) + (y - 110) * (y - 110) < 60 * 60;
                    let byte = if disc {
                        200.0 - 20.0 * cf
                    } else {
                        (128.0 + 127.0 * (xf * 0.05 + cf).sin() * (yf * 0.04 - cf / 2.0).cos())
                            .floor()
                    };
                    v.push(byte as f32 / 255.0);
                }
            }
        }
        v
    }

    #[test]
    fn runtime_matches_mediapipe() {
        let golden: Vec<f32> = include_bytes!("../models/selfie-golden.bin")
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let out = Segmenter::shared().unwrap().raw(golden_input());
        assert_eq!(out.len(), 256 * 256);
        let ours: Vec<f32> = (0..256)
            .step_by(3)
            .flat_map(|y| (0..256).step_by(3).map(move |x| (y, x)))
            .map(|(y, x)| out[y * 256 + x])
            .collect();
        assert_eq!(ours.len(), golden.len());
        let worst = ours
            .iter()
            .zip(&golden)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // Not a flat answer: the input has regions the model is unsure of.
        let mid = golden.iter().filter(|&&g| (0.1..0.9).contains(&g)).count();
        assert!(
            mid > 100,
            "only {mid} uncertain values in the golden output"
        );
        assert!(worst < 1e-3, "probabilities differ by {worst}");
    }

    fn face_at(x: f32, y: f32, width: f32) -> Detection {
        Detection {
            x,
            y,
            width,
            height: width,
            score: 1.0,
            right_eye: [x + width * 0.3, y + width * 0.4],
            left_eye: [x + width * 0.7, y + width * 0.4],
            nose: [x + width * 0.5, y + width * 0.6],
            mouth: [x + width * 0.5, y + width * 0.75],
            right_ear: [x, y + width * 0.5],
            left_ear: [x + width, y + width * 0.5],
        }
    }

    #[test]
    fn the_closer_look_counts_only_within_its_square() {
        let segmenter = Segmenter::shared().unwrap();
        let whole = Segmentation {
            look: Mask {
                width: SIDE,
                height: SIDE,
                data: vec![0.25; (SIDE * SIDE) as usize],
            },
            input: vec![0.5; (SIDE * SIDE * 3) as usize],
            mirrored: false,
        };
        // A wide photo with a small face: the square (6 face widths) is a part of it.
        let mut image = Rgb::new(1200, 400);
        image.data.iter_mut().enumerate().for_each(|(k, v)| {
            *v = (k % 251) as u8;
        });
        let face = face_at(580.0, 100.0, 40.0);
        let person = Person::new(&segmenter, &image, Some(&face), &whole);
        let (look, [left, top, w, h]) = person.close.as_ref().expect("a closer look");
        assert_eq!((*left, *top, *w, *h), (480.0, 44.0, 240.0, 240.0));
        for (x, y) in [
            (100.0, 200.0),
            (1100.0, 50.0),
            (479.0, 100.0),
            (600.0, 300.0),
        ] {
            assert_eq!(person.sample(x, y), 0.25, "({x}, {y}) is outside");
        }
        for (x, y) in [(500.0, 60.0), (600.0, 150.0), (700.0, 270.0)] {
            let close = look.sample((x - left) / w, (y - top) / h);
            assert_eq!(
                person.sample(x, y),
                (0.25 + close) * 0.5,
                "({x}, {y}) is inside"
            );
        }
        // Near the bottom, the square reaches past the photo: below it the edge row repeats.
        let low = Person::new(
            &segmenter,
            &image,
            Some(&face_at(580.0, 300.0, 40.0)),
            &whole,
        );
        assert!(low.close.is_some());
        assert_eq!(low.sample(600.0, 450.0), low.sample(600.0, 399.5));
        assert_ne!(low.sample(600.0, 399.5), 0.25);
        // A tight portrait: the square covers the whole photo, which the first look saw; the
        // second look is at the whole photo.
        let tight = Person::new(
            &segmenter,
            &Rgb::new(200, 240),
            Some(&face_at(50.0, 40.0, 100.0)),
            &whole,
        );
        assert!(tight.close.is_none());
        assert_eq!(*tight.whole, whole.matte(&segmenter));
        assert_ne!(*tight.whole, whole.look);
    }

    #[test]
    fn the_look_at_a_mirrored_photo_is_the_mirrored_look() {
        let segmenter = Segmenter::shared().unwrap();
        let mut image = Rgb::new(256, 256);
        image.data.iter_mut().enumerate().for_each(|(k, v)| {
            *v = ((k * 7) % 253) as u8;
        });
        let mut flipped = Rgb::new(256, 256);
        for y in 0..256 {
            for x in 0..256 {
                let k = ((y * 256 + x) * 3) as usize;
                flipped.data[k..k + 3].copy_from_slice(&image.pixel(255 - x, y));
            }
        }
        let (a, b) = (
            segmenter.segmentation(&image),
            segmenter.segmentation(&flipped),
        );
        assert_eq!(canonical::mirrored::<_, 1>(&a.look.data, 256), b.look.data);
        // The matte's second look too: the two looks of a mirrored photo are the mirrored looks.
        let (ma, mb) = (a.matte(&segmenter), b.matte(&segmenter));
        assert_eq!(canonical::mirrored::<_, 1>(&ma.data, 256), mb.data);
        assert_ne!(ma, a.look);
        // The closer look, at the other orientation: mirrored too, and not the canonical look.
        let (oa, ob) = (
            segmenter.segment_other_way(&image),
            segmenter.segment_other_way(&flipped),
        );
        assert_eq!(canonical::mirrored::<_, 1>(&oa.data, 256), ob.data);
        assert_ne!(oa, a.look);
        // The model itself is not symmetric: looks as taken at the two differ.
        let (c, d) = (
            segmenter.segment_once(&image),
            segmenter.segment_once(&flipped),
        );
        assert_ne!(canonical::mirrored::<_, 1>(&c.data, 256), d.data);
    }

    #[test]
    fn mask_resize_keeps_a_flat_map() {
        let m = Mask {
            width: 4,
            height: 4,
            data: vec![0.25; 16],
        };
        let r = m.resize(9, 7);
        assert_eq!((r.width, r.height, r.data.len()), (9, 7, 63));
        assert!(r.data.iter().all(|&v| (v - 0.25).abs() < 1e-6));
    }
}
