//! Document photo specifications as data. Pixel figures are for the final digital photo.
//!
//! Sources (checked against the published texts as quoted by issuing offices):
//! - GA 461-2004《居民身份证制证用数字相片技术要求》: 358×441 px, 350 dpi, 24-bit RGB, white background,
//!   JPEG quality 70, "一般相片的文件容量在 14k~20k 字节之间"; face width 207±14 px; top of the hair
//!   7–21 px below the top edge; eye line at least 207 px above the bottom edge.
//! - 社会保障卡制证用数字相片技术要求 (人社部, as published by issuing offices): 358×441 px, 350 dpi,
//!   white, JPEG quality 70, file 14–40 KB; face width 179–255 px; hair top 7–21 px; eye line ≥ 207 px
//!   above the bottom edge.
//! - 机动车驾驶证档案用数字相片 (GA 482 / 公安部交管局 photo rules): 260×378 px (22×32 mm), 300 dpi,
//!   white, JPEG quality ≥ 70, file 14–30 KB; head width 165–189 px, head length 224–260 px; hair top
//!   10–20 px below the top edge.
//! - 《出入境证件相片照相指引》(国家移民管理局) for 护照 and 往来港澳通行证: 33×48 mm; head width 15–22 mm,
//!   head height (chin to crown) 28–33 mm, crown 3–5 mm below the top edge, chin ≥ 7 mm above the
//!   bottom edge; digital photo JPEG 30–80 KB; 354×472 px at 300 dpi for the digital upload. The
//!   millimetre figures are converted at 472 px / 48 mm = 9.83 px/mm so the head keeps its
//!   proportions (354 px is then 36 mm: slightly more side room than the print).

use serde::Serialize;

/// An inclusive range of pixels or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub min: u32,
    pub max: u32,
}

impl Span {
    pub fn mid(self) -> f32 {
        (self.min + self.max) as f32 / 2.0
    }
    pub fn contains(self, v: f32) -> bool {
        (self.min as f32..=self.max as f32).contains(&v)
    }
}

const fn span(min: u32, max: u32) -> Span {
    Span { min, max }
}

/// Where the head sits in the final photo, in the standard's own terms (pixels of the final photo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeadGeometry {
    /// Width of the face (cheek to cheek), when the standard gives it.
    pub face_width_px: Option<Span>,
    /// Width of the head including hair, when the standard gives it.
    pub head_width_px: Option<Span>,
    /// Chin to crown, when the standard gives it.
    pub head_height_px: Option<Span>,
    /// From the top of the hair to the top edge.
    pub top_margin_px: Span,
    /// Minimum distance of the eye line above the bottom edge.
    pub eye_line_min_from_bottom_px: Option<u32>,
    /// Minimum distance of the chin above the bottom edge.
    pub chin_min_from_bottom_px: Option<u32>,
}

/// One document's photo specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub id: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub width_px: u32,
    pub height_px: u32,
    pub dpi: u32,
    /// Background colour as `#rrggbb`.
    pub background: &'static str,
    pub file_size_bytes: Span,
    pub head: HeadGeometry,
    /// The standard the figures come from.
    pub source: &'static str,
}

const KB: u32 = 1024;

// GA 461-2004 (see the module comment).
const ID_CARD_HEAD: HeadGeometry = HeadGeometry {
    face_width_px: Some(span(207 - 14, 207 + 14)),
    head_width_px: None,
    head_height_px: None,
    top_margin_px: span(7, 21),
    eye_line_min_from_bottom_px: Some(207),
    chin_min_from_bottom_px: None,
};

// 出入境证件相片照相指引, mm × 9.83 px/mm (see the module comment).
const EXIT_ENTRY_HEAD: HeadGeometry = HeadGeometry {
    face_width_px: None,
    head_width_px: Some(span(147, 216)),  // 15–22 mm
    head_height_px: Some(span(275, 324)), // 28–33 mm
    top_margin_px: span(29, 49),          // 3–5 mm
    eye_line_min_from_bottom_px: None,
    chin_min_from_bottom_px: Some(69), // 7 mm
};

static SPECS: [Spec; 5] = [
    Spec {
        id: "id-card",
        name_zh: "居民身份证",
        name_en: "Resident identity card",
        width_px: 358,
        height_px: 441,
        dpi: 350,
        background: "#ffffff",
        file_size_bytes: span(14 * KB, 20 * KB),
        head: ID_CARD_HEAD,
        source: "GA 461-2004",
    },
    Spec {
        id: "social-security-card",
        name_zh: "社会保障卡",
        name_en: "Social security card",
        width_px: 358,
        height_px: 441,
        dpi: 350,
        background: "#ffffff",
        file_size_bytes: span(14 * KB, 40 * KB),
        head: HeadGeometry {
            face_width_px: Some(span(179, 255)),
            ..ID_CARD_HEAD
        },
        source: "社会保障卡制证用数字相片技术要求",
    },
    Spec {
        id: "driving-licence",
        name_zh: "机动车驾驶证",
        name_en: "Driving licence",
        width_px: 260,
        height_px: 378,
        dpi: 300,
        background: "#ffffff",
        file_size_bytes: span(14 * KB, 30 * KB),
        head: HeadGeometry {
            face_width_px: None,
            head_width_px: Some(span(165, 189)),
            head_height_px: Some(span(224, 260)),
            top_margin_px: span(10, 20),
            eye_line_min_from_bottom_px: None,
            chin_min_from_bottom_px: None,
        },
        source: "机动车驾驶证档案用数字相片要求 (GA 482)",
    },
    Spec {
        id: "passport",
        name_zh: "护照",
        name_en: "Passport",
        width_px: 354,
        height_px: 472,
        dpi: 300,
        background: "#ffffff",
        file_size_bytes: span(30 * KB, 80 * KB),
        head: EXIT_ENTRY_HEAD,
        source: "出入境证件相片照相指引",
    },
    Spec {
        id: "hk-macau-permit",
        name_zh: "往来港澳通行证",
        name_en: "Exit-entry permit for Hong Kong and Macao",
        width_px: 354,
        height_px: 472,
        dpi: 300,
        // The guide allows white, light grey or light blue; white is what the server produces.
        background: "#ffffff",
        file_size_bytes: span(30 * KB, 80 * KB),
        head: EXIT_ENTRY_HEAD,
        source: "出入境证件相片照相指引",
    },
];

/// All document specs, in a stable order.
pub fn specs() -> &'static [Spec] {
    &SPECS
}

/// The spec with this id (`id-card`, `social-security-card`, `driving-licence`, `passport`,
/// `hk-macau-permit`).
pub fn spec_by_id(id: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_found() {
        for s in specs() {
            assert_eq!(spec_by_id(s.id), Some(s));
            assert!(s.file_size_bytes.min < s.file_size_bytes.max);
            assert!(s.head.top_margin_px.max < s.height_px / 4);
        }
        assert_eq!(spec_by_id("nope"), None);
        let ids: std::collections::BTreeSet<_> = specs().iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), specs().len());
    }

    #[test]
    fn id_card_matches_ga_461() {
        let s = spec_by_id("id-card").unwrap();
        assert_eq!((s.width_px, s.height_px, s.dpi), (358, 441, 350));
        assert_eq!(s.head.face_width_px, Some(span(193, 221)));
        assert_eq!(s.head.eye_line_min_from_bottom_px, Some(207));
    }
}
