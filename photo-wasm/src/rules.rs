//! The seed's rules about what the face shows: `glasses` (no sunglasses or tinted lenses),
//! `occlusion` (no mask or object over the nose and mouth), `headwear` (no hat or cap),
//! `shoulders` (both in the photo, level) and `accessories` (no earrings; warn only).
//! Each is measured from colour and brightness in regions of the face's own frame (see
//! [`Frame`]), against the face's own skin, and from the person segmentation; no model of its
//! own. Every region has its mirror image and the two sides are pooled with a symmetric rule, so
//! a mirrored photo measures the same.

use crate::check::{check, grade, m};
use crate::landmarks::Frame;
use crate::raster::Rgb;
use crate::report::{Check, CheckId, Status};
use crate::segment::Mask;
use crate::thresholds as t;

/// Luma and the two colour differences (BT.601) of a pixel.
#[derive(Clone, Copy)]
struct Ycc {
    y: f32,
    cb: f32,
    cr: f32,
}

impl Ycc {
    fn of([r, g, b]: [u8; 3]) -> Ycc {
        let (r, g, b) = (r as f32, g as f32, b as f32);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        Ycc {
            y,
            cb: (b - y) * 0.564,
            cr: (r - y) * 0.713,
        }
    }

    /// Red over blue: skin of every tone and lips are warm; masks, lenses, sky and most fabric
    /// are not.
    fn warmth(&self) -> f32 {
        self.cr - self.cb
    }

    fn chroma(&self) -> f32 {
        (self.cb * self.cb + self.cr * self.cr).sqrt()
    }
}

/// The pixels of a box in face coordinates, sampled on a grid of at most
/// [`t::RULE_SAMPLES`]² points (nearest pixel; points off the image are left out), with the
/// person probability at each when a mask is given.
struct Patch {
    px: Vec<Ycc>,
    person: Vec<f32>,
}

impl Patch {
    fn of(img: &Rgb, f: &Frame, u: (f32, f32), v: (f32, f32), mask: Option<&Mask>) -> Patch {
        let n = t::RULE_SAMPLES;
        let (mut px, mut person) = (Vec::new(), Vec::new());
        for j in 0..n {
            let vv = v.0 + (v.1 - v.0) * (j as f32 + 0.5) / n as f32;
            for i in 0..n {
                let uu = u.0 + (u.1 - u.0) * (i as f32 + 0.5) / n as f32;
                let [x, y] = f.to_image(uu, vv);
                if x < 0.0 || y < 0.0 || x >= img.width as f32 || y >= img.height as f32 {
                    continue;
                }
                px.push(Ycc::of(img.pixel(x as u32, y as u32)));
                if let Some(mask) = mask {
                    person.push(mask.sample(x / img.width as f32, y / img.height as f32));
                }
            }
        }
        Patch { px, person }
    }

    /// Share of the person's samples where `f` holds on a spot at most [`t::SPOT_MAX`] samples
    /// across (along the row or the column, `f` fails that far either side): earrings and studs,
    /// not a collar, a bright backdrop or a lit cheek. Needs the full grid (a patch on the image).
    fn spots(&self, f: impl Fn(&Ycc) -> bool) -> f32 {
        let n = t::RULE_SAMPLES;
        if self.px.len() != n * n {
            return 0.0;
        }
        let on: Vec<bool> = self.px.iter().map(&f).collect();
        let off = |i: isize, j: isize| {
            !(0..n as isize).contains(&i)
                || !(0..n as isize).contains(&j)
                || !on[j as usize * n + i as usize]
        };
        let d = t::SPOT_MAX as isize;
        let (mut total, mut hit) = (0usize, 0usize);
        for (k, &lit) in on.iter().enumerate() {
            if self.person.get(k).is_some_and(|&q| q < t::RULE_PERSON) {
                continue;
            }
            total += 1;
            let (i, j) = ((k % n) as isize, (k / n) as isize);
            let small = (off(i - d, j) && off(i + d, j)) || (off(i, j - d) && off(i, j + d));
            hit += usize::from(lit && small);
        }
        hit as f32 / total.max(1) as f32
    }

    fn mean(&self, f: impl Fn(&Ycc) -> f32) -> f32 {
        self.px.iter().map(f).sum::<f32>() / self.px.len().max(1) as f32
    }

    /// Share of the pixels (of the person's, with a mask) for which `f` holds.
    fn share(&self, f: impl Fn(&Ycc) -> bool) -> f32 {
        let mut n = 0usize;
        let mut hit = 0usize;
        for (k, p) in self.px.iter().enumerate() {
            if self.person.get(k).is_some_and(|&q| q < t::RULE_PERSON) {
                continue;
            }
            n += 1;
            hit += usize::from(f(p));
        }
        hit as f32 / n.max(1) as f32
    }
}

/// The face's skin: of the forehead and the two cheeks, the warmest (a fringe, a mask or a
/// lens over one of them is not).
struct Skin {
    y: f32,
    warmth: f32,
}

fn skin(img: &Rgb, f: &Frame) -> Skin {
    let cheek = |side: f32| {
        let (a, b) = (side * t::CHEEK_U.0, side * t::CHEEK_U.1);
        Patch::of(img, f, (a.min(b), a.max(b)), t::CHEEK_V, None)
    };
    let forehead = Patch::of(img, f, (-t::FOREHEAD_U, t::FOREHEAD_U), t::FOREHEAD_V, None);
    [cheek(-1.0), cheek(1.0), forehead]
        .iter()
        .map(|p| Skin {
            y: p.mean(|c| c.y),
            warmth: p.mean(Ycc::warmth),
        })
        .max_by(|a, b| a.warmth.total_cmp(&b.warmth))
        .unwrap_or(Skin {
            y: 0.0,
            warmth: 0.0,
        })
}

/// The checks of this module for one face: `frame` and `img` are the analysis image's, `mask`
/// the person segmentation over it (`None` without the model).
pub(crate) fn checks(img: &Rgb, f: &Frame, mask: Option<&Mask>) -> Vec<Check> {
    let skin = skin(img, f);
    let mut out = vec![
        glasses_check(img, f, &skin),
        occlusion_check(img, f, &skin),
        headwear_check(img, f, mask),
    ];
    out.push(match mask {
        Some(mask) => shoulders_check(img, f, mask),
        None => shoulders_without_model(),
    });
    out.push(accessories_check(img, f, mask, &skin));
    out
}

/// Only reachable in a WebAssembly build not given the segmentation model (its check exports
/// refuse to run then): say so rather than guess.
fn shoulders_without_model() -> Check {
    Check {
        id: CheckId::Shoulders,
        status: Status::Fail,
        value: None,
        range: None,
        message_zh: "无法判断肩膀：人像分割模型未加载".to_string(),
        message_en: "The shoulders cannot be judged: the person segmentation model is not loaded"
            .to_string(),
    }
}

/// Sunglasses or tinted lenses: the brighter eye region's mean luma over the skin's (a dark
/// lens darkens both). Open eyes with their whites and lids measure well above a lens.
fn glasses_check(img: &Rgb, f: &Frame, skin: &Skin) -> Check {
    let eye = |u: f32| {
        Patch::of(
            img,
            f,
            (u - t::EYE_HALF_U, u + t::EYE_HALF_U),
            (-t::EYE_HALF_V, t::EYE_HALF_V),
            None,
        )
        .mean(|c| c.y)
    };
    let value = eye(f.right_eye).max(eye(-f.right_eye)) / skin.y.max(1.0);
    // A tinted lens takes the skin's colour with the light; an eye in the shadow of its socket
    // keeps it: only a dark and colourless eye region fails.
    let eyes = [f.right_eye, -f.right_eye].map(|u| {
        Patch::of(
            img,
            f,
            (u - t::EYE_HALF_U, u + t::EYE_HALF_U),
            (-t::EYE_HALF_V, t::EYE_HALF_V),
            None,
        )
        .mean(Ycc::warmth)
    });
    let colourless = eyes[0].max(eyes[1]) < skin.warmth * t::LENS_MAX_WARMTH_SHARE;
    let mut v = grade(
        value,
        (Some(t::GLASSES_PASS), None),
        (Some(t::GLASSES_FAIL), None),
    );
    if v.status == Status::Fail && !colourless {
        v.status = Status::Warn;
    }
    check(
        CheckId::Glasses,
        value,
        v,
        [
            m("眼睛清晰可见", "The eyes are clearly visible"),
            m(
                "眼部偏暗，如戴有色眼镜请摘下；普通眼镜请避免反光",
                "The eyes look dark: take off tinted glasses; clear glasses must not reflect",
            ),
            m(
                "请摘下墨镜或有色眼镜，双眼须清晰可见",
                "Take off sunglasses or tinted glasses: both eyes must be clearly visible",
            ),
        ],
    )
}

/// Nose and mouth visible: the share of skin- or lip-coloured pixels (at least half the skin's
/// warmth) around the nose tip and around the lips, the lower of the two. A mask or a scarf is
/// grey, white, black or blue there; a beard leaves the lips and the nose tip.
fn occlusion_check(img: &Rgb, f: &Frame, skin: &Skin) -> Check {
    if skin.warmth < t::SKIN_MIN_WARMTH {
        // No warm skin to compare with (a greyscale photo or coloured light): the colour check
        // and the reviewer see it; this one cannot tell a mask from the face.
        return Check {
            id: CheckId::Occlusion,
            status: Status::Warn,
            value: None,
            range: None,
            message_zh: "无法判断口鼻是否被遮挡（肤色不可辨），请确保五官无遮挡".to_string(),
            message_en: "Cannot tell whether the nose and mouth are covered (no skin colour): \
                         keep every feature uncovered"
                .to_string(),
        };
    }
    let skin_like = |p: &Patch| p.share(|c| c.warmth() >= skin.warmth * t::SKIN_WARMTH_SHARE);
    let nose = Patch::of(
        img,
        f,
        (-t::NOSE_HALF_U, t::NOSE_HALF_U),
        (f.nose - t::NOSE_HALF_V, f.nose + t::NOSE_HALF_V),
        None,
    );
    // Around the mouth: the upper lip's skin, the lips, the chin's skin below them. Teeth in a
    // smile, dark lips or a moustache leave at least one of them skin-coloured; a mask none.
    let band = |v: (f32, f32)| Patch::of(img, f, (-t::MOUTH_HALF_U, t::MOUTH_HALF_U), v, None);
    let around_mouth = [
        band((f.nose + t::NOSE_HALF_V, f.mouth - t::MOUTH_HALF_V)),
        band((f.mouth - t::MOUTH_HALF_V, f.mouth + t::MOUTH_HALF_V)),
        band((f.mouth + t::CHIN_V.0, f.mouth + t::CHIN_V.1)),
    ]
    .iter()
    .map(skin_like)
    .fold(0.0f32, f32::max);
    let value = skin_like(&nose).min(around_mouth);
    let v = grade(
        value,
        (Some(t::OCCLUSION_PASS), None),
        (Some(t::OCCLUSION_FAIL), None),
    );
    check(
        CheckId::Occlusion,
        value,
        v,
        [
            m("五官无遮挡", "Every facial feature is visible"),
            m(
                "口鼻部位可能有遮挡，请确保五官清晰可见",
                "Something may cover the nose or mouth: keep every feature visible",
            ),
            m(
                "口鼻被遮挡（口罩、手或其他物品），请露出完整五官",
                "The nose or mouth is covered (a mask, a hand or an object): show the whole face",
            ),
        ],
    )
}

/// A hat or cap: above the forehead, where hair (black, brown, blond, grey: little or warm
/// colour) or nothing would be, the share of the person's pixels in a cool or strong colour no
/// hair has.
fn headwear_check(img: &Rgb, f: &Frame, mask: Option<&Mask>) -> Check {
    let h = f.chin - f.top;
    let crown = Patch::of(
        img,
        f,
        (-t::CROWN_HALF_U, t::CROWN_HALF_U),
        (f.top - t::CROWN_V.1 * h, f.top - t::CROWN_V.0 * h),
        mask,
    );
    let value = crown.share(|c| {
        c.chroma() >= t::HAT_MIN_CHROMA && (c.warmth() < 0.0 || c.chroma() >= t::HAIR_MAX_CHROMA)
    });
    let v = grade(
        value,
        (None, Some(t::HEADWEAR_PASS)),
        (None, Some(t::HEADWEAR_FAIL)),
    );
    check(
        CheckId::Headwear,
        value,
        v,
        [
            m("未佩戴帽子", "No hat or cap"),
            m(
                "头顶可能戴有帽子或头饰，证件照须免冠",
                "There may be a hat or headwear: an ID photo is taken bareheaded",
            ),
            m(
                "请摘下帽子或头饰，证件照须免冠",
                "Take off the hat or headwear: an ID photo is taken bareheaded",
            ),
        ],
    )
}

/// Both shoulders in the photo and level: the person segmentation's top edge in two columns
/// either side of the face, [`t::SHOULDER_U`] from its centre line; the value is the angle of the
/// line through those two points (a shoulder the photo does not show counts at the photo's
/// bottom edge, which tilts the line).
fn shoulders_check(img: &Rgb, f: &Frame, mask: &Mask) -> Check {
    let (w, h) = (img.width as f32, img.height as f32);
    let below_chin = f.chin + t::SHOULDER_FROM_CHIN;
    // Walk down the column at `u` from the chin's level; where the person probability first
    // reaches sure is the shoulder's top (in face coordinates, between the last two steps where
    // the probability crosses it: a step's size would make the angle jump by about a degree), or
    // the photo's bottom edge.
    let top = |u: f32| {
        let mut v = below_chin;
        let mut before: Option<f32> = None;
        loop {
            let [x, y] = f.to_image(u, v);
            if y >= h {
                return (v, false);
            }
            // Beyond the photo's side, the nearest column it has.
            let x = x.clamp(0.0, w - 1.0);
            let p = mask.sample(x / w, y / h);
            if p >= t::RULE_PERSON {
                let back = before.map_or(0.0, |q| (p - t::RULE_PERSON) / (p - q));
                return (v - back * t::SHOULDER_STEP, true);
            }
            before = Some(p);
            v += t::SHOULDER_STEP;
        }
    };
    let (right, left) = (top(-t::SHOULDER_U), top(t::SHOULDER_U));
    let value = libm::atan2f((left.0 - right.0).abs(), 2.0 * t::SHOULDER_U).to_degrees();
    let mut v = grade(
        value,
        (None, Some(t::SHOULDERS_PASS_DEG)),
        (None, Some(t::SHOULDERS_FAIL_DEG)),
    );
    let hidden = !(left.1 && right.1);
    if !left.1 && !right.1 {
        v.status = Status::Fail;
    } else if hidden && v.status == Status::Fail {
        // One column past a narrow or turned-away shoulder reaches the bottom edge: the angle
        // then says little, the reviewer sees it.
        v.status = Status::Warn;
    }
    let (warn, fail) = if hidden {
        (
            m(
                "一侧肩膀可能不在画面内，请露出双肩",
                "A shoulder may be out of the photo: show both shoulders",
            ),
            m(
                "照片中看不到双肩，请后退一些，露出完整的双肩",
                "Both shoulders are not in the photo: step back so they show",
            ),
        )
    } else {
        (
            m(
                format!("双肩略有高低（{value:.0}°），请端正站立"),
                format!("The shoulders are slightly uneven ({value:.0}°): stand straight"),
            ),
            m(
                format!("双肩不平（{value:.0}°），请端正站立、正对镜头"),
                format!(
                    "The shoulders are not level ({value:.0}°): stand straight, facing the camera"
                ),
            ),
        )
    };
    check(
        CheckId::Shoulders,
        value,
        v,
        [
            m("双肩可见且端正", "Both shoulders show and are level"),
            warn,
            fail,
        ],
    )
}

/// Earrings and other jewellery by the ears: small bright, colourless (metal, stones, pearls)
/// spots on the person where the ear lobes and what hangs from them are (about the cheek
/// contour's width, from the nose tip's level down to the chin's), much brighter than the face's skin; the more
/// of the two sides. Warn only: lit hair and a bright collar look alike.
fn accessories_check(img: &Rgb, f: &Frame, mask: Option<&Mask>, skin: &Skin) -> Check {
    let lobe = |side: f32| {
        let (a, b) = (
            side * (f.cheek - t::LOBE_U.0),
            side * (f.cheek + t::LOBE_U.1),
        );
        Patch::of(img, f, (a.min(b), a.max(b)), (f.nose, f.chin), mask)
    };
    let bright = |c: &Ycc| {
        c.y >= (skin.y + t::JEWEL_ABOVE_SKIN).max(t::JEWEL_MIN_LUMA)
            && c.chroma() <= t::JEWEL_MAX_CHROMA
    };
    let value = lobe(-1.0).spots(bright).max(lobe(1.0).spots(bright));
    let v = grade(value, (None, Some(t::ACCESSORIES_PASS)), (None, None));
    let warn = m(
        "耳部附近可能佩戴耳环等饰品，证件照不宜佩戴饰品（由审核人员确认）",
        "There may be earrings or other jewellery by the ears: an ID photo is taken without them (a reviewer decides)",
    );
    check(
        CheckId::Accessories,
        value,
        v,
        [m("未见饰品", "No jewellery seen"), warn.clone(), warn],
    )
}
