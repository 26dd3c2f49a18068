//! Hand-made inputs: degenerate sizes, bombs, truncation, alpha, CMYK, greyscale, orientation,
//! and mutated bytes. Every one must give a clean report, never a panic.
#![cfg(feature = "decode")]

mod common;

use common::{id_card, jpeg, photo, png};
use photo_wasm::{CheckId, Report, Status};

fn status(r: &Report, id: CheckId) -> Option<Status> {
    r.check(id).map(|c| c.status)
}

/// The upright pixels of a shared photo.
fn pixels(name: &str) -> photo_wasm::raster::Rgb {
    photo_wasm::decode::decode(&photo(name), photo_wasm::decode::Want::Full)
        .expect("shared photo decodes")
        .image
}

#[test]
fn one_pixel_images_fail_cleanly() {
    let j = jpeg(1, 1, &[200, 180, 170], jpeg_encoder::ColorType::Rgb);
    let p = png(1, 1, &[200, 180, 170], png::ColorType::Rgb);
    for bytes in [j, p] {
        let r = photo_wasm::check(&bytes, id_card());
        assert_eq!(status(&r, CheckId::Decode), Some(Status::Pass));
        assert_eq!(status(&r, CheckId::FaceCount), Some(Status::Fail));
        assert_eq!(status(&r, CheckId::Resolution), Some(Status::Fail));
    }
    let r = photo_wasm::check_rgba(1, 1, &[1, 2, 3, 255], id_card());
    assert!(r.failed());
}

/// Rewrites the size in a JPEG's SOF0 header.
fn with_jpeg_size(mut bytes: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    let sof = bytes
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline JPEG");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let small = jpeg(8, 8, &[128; 8 * 8 * 3], jpeg_encoder::ColorType::Rgb);
    let bomb = with_jpeg_size(small, 20000, 20000);
    let r = photo_wasm::check(&bomb, id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Fail));
    assert!(r
        .check(CheckId::Decode)
        .unwrap()
        .message_en
        .contains("20000×20000"));

    let r = photo_wasm::check(&png_declaring(20000, 20000), id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Fail));

    let r = photo_wasm::check_rgba(20000, 20000, &[0; 16], id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Fail));
}

/// An 8×8 PNG whose header declares `w`×`h` pixels (IHDR data starts at byte 16: width and
/// height, then its CRC after 13 bytes).
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut p = png(8, 8, &[128; 8 * 8 * 3], png::ColorType::Rgb);
    p[16..20].copy_from_slice(&w.to_be_bytes());
    p[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

fn decode_message(r: &Report) -> (String, String) {
    let c = r.check(CheckId::Decode).expect("decode check");
    assert_eq!(c.status, Status::Fail);
    (c.message_zh.clone(), c.message_en.clone())
}

#[test]
fn png_is_capped_near_what_phones_save_and_says_so() {
    // The pixel bomb: 5760×5760 (33 MP) is over the PNG cap, not over the JPEG one.
    let r = photo_wasm::check(&png_declaring(5760, 5760), id_card());
    let (zh, en) = decode_message(&r);
    assert!(zh.contains("PNG") && zh.contains("5760×5760"), "{zh}");
    assert!(en.contains("decoded in full"), "{en}");
}

#[test]
fn absurd_inflation_is_refused_from_the_header() {
    // 4000×4000 is within the PNG cap, but 48 MB from a few hundred bytes is no photo.
    let r = photo_wasm::check(&png_declaring(4000, 4000), id_card());
    let (_, en) = decode_message(&r);
    assert!(en.contains("inflate"), "{en}");
    let small = jpeg(8, 8, &[128; 8 * 8 * 3], jpeg_encoder::ColorType::Rgb);
    // A 200 MP phone's size is accepted as such; these few bytes are not.
    let r = photo_wasm::check(&with_jpeg_size(small, 16320, 12240), id_card());
    let (_, en) = decode_message(&r);
    assert!(en.contains("inflate"), "{en}");
}

#[test]
fn budgets_are_read_from_the_header() {
    let overhead = photo_wasm::thresholds::WORK_OVERHEAD_BYTES;
    // Refused at the header: only the step's own working memory.
    assert_eq!(
        photo_wasm::check_bytes(&png_declaring(5760, 5760)),
        overhead
    );
    // A PNG decodes in full: its frame and its RGB copy at least.
    let img = pixels("portrait-test0.jpg");
    let p = png(img.width, img.height, &img.data, png::ColorType::Rgb);
    let full = img.width as u64 * img.height as u64 * 6;
    assert!(photo_wasm::check_bytes(&p) >= overhead + full);
    // A larger JPEG (1280×1920) is checked at half scale: less than its full size.
    let j = photo("maxemo-grimace-sepia.jpg");
    let check = photo_wasm::check_bytes(&j);
    assert!(
        check > overhead && check < overhead + 1280 * 1920 * 6,
        "{check}"
    );
    assert!(photo_wasm::review_bytes(&j, 2_000_000) > overhead);
}

#[test]
fn a_200_megapixel_jpeg_wanted_in_full_is_decoded_within_the_cap() {
    use photo_wasm::decode::{plan, Want};
    let small = jpeg(8, 8, &[128; 8 * 8 * 3], jpeg_encoder::ColorType::Rgb);
    let mut big = with_jpeg_size(small, 16320, 12240);
    // Comment segments after SOI give it a phone photo's weight (8 MB) without pixels.
    let comment: Vec<u8> = [0xFF, 0xFE, 0xFF, 0xFF]
        .into_iter()
        .chain(std::iter::repeat_n(b' ', 0xFFFD))
        .collect();
    for _ in 0..128 {
        big.splice(2..2, comment.iter().copied());
    }
    let full = plan(&big, Want::Full).expect("admitted");
    assert!(full.bytes <= photo_wasm::thresholds::MAX_DECODE_PEAK_BYTES);
    assert!(full.width < 16320, "decoded at a reduced scale: {full:?}");
    // What the check wants is far smaller still: 1/8 scale.
    let check = plan(&big, Want::LongSide(800)).expect("admitted");
    assert_eq!((check.width, check.height), (2040, 1530));
}

#[test]
fn truncated_files_give_a_report() {
    let full = photo("portrait-test0.jpg");
    for cut in [2, 100, full.len() / 3, full.len() - 10] {
        let r = photo_wasm::check(&full[..cut], id_card());
        assert!(r.check(CheckId::Decode).is_some(), "cut at {cut}");
        assert!(r.failed() || status(&r, CheckId::Decode) == Some(Status::Pass));
    }
    let img = pixels("portrait-test0.jpg");
    let p = png(img.width, img.height, &img.data, png::ColorType::Rgb);
    let r = photo_wasm::check(&p[..p.len() / 2], id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Fail));
}

#[test]
fn png_with_alpha_is_composited_on_white() {
    let img = pixels("portrait-test0.jpg");
    // Make the light studio background transparent, as a cut-out would be.
    let rgba: Vec<u8> = img
        .data
        .chunks_exact(3)
        .flat_map(|p| {
            let bg = p.iter().all(|&c| c > 170) && p[0].abs_diff(p[2]) < 20;
            [p[0], p[1], p[2], if bg { 0 } else { 255 }]
        })
        .collect();
    let bytes = png(img.width, img.height, &rgba, png::ColorType::Rgba);
    let r = photo_wasm::check(&bytes, id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Pass));
    assert_eq!(status(&r, CheckId::FaceCount), Some(Status::Pass));
    assert_eq!(status(&r, CheckId::Background), Some(Status::Pass));
}

#[test]
fn cmyk_jpeg_decodes_in_colour() {
    let img = pixels("portrait-test0.jpg");
    let cmyk: Vec<u8> = img
        .data
        .chunks_exact(3)
        .flat_map(|p| {
            let k = 255 - *p.iter().max().unwrap();
            let ink = |c: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - c - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [ink(p[0]), ink(p[1]), ink(p[2]), k]
        })
        .collect();
    let bytes = jpeg(
        img.width as u16,
        img.height as u16,
        &cmyk,
        jpeg_encoder::ColorType::Cmyk,
    );
    let r = photo_wasm::check(&bytes, id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Pass));
    assert_eq!(status(&r, CheckId::FaceCount), Some(Status::Pass), "{r:?}");
    assert_eq!(status(&r, CheckId::Colour), Some(Status::Pass));
    assert_ne!(status(&r, CheckId::Exposure), Some(Status::Fail));
}

#[test]
fn greyscale_files_fail_the_colour_check_only() {
    let img = pixels("portrait-test0.jpg");
    let grey: Vec<u8> = img
        .data
        .chunks_exact(3)
        .map(|p| photo_wasm::raster::luma([p[0], p[1], p[2]]))
        .collect();
    for bytes in [
        jpeg(
            img.width as u16,
            img.height as u16,
            &grey,
            jpeg_encoder::ColorType::Luma,
        ),
        png(img.width, img.height, &grey, png::ColorType::Grayscale),
    ] {
        let r = photo_wasm::check(&bytes, id_card());
        assert_eq!(status(&r, CheckId::Colour), Some(Status::Fail));
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(failed, vec![CheckId::Colour]);
    }
}

/// Inserts an EXIF APP1 segment with the given orientation after SOI.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let tiff: Vec<u8> = [
        &b"II*\0"[..],
        &8u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &0x0112u16.to_le_bytes(),
        &3u16.to_le_bytes(),
        &1u32.to_le_bytes(),
        &orientation.to_le_bytes(),
        &[0, 0],
        &0u32.to_le_bytes(),
    ]
    .concat();
    let len = (2 + 6 + tiff.len()) as u16;
    [
        &jpeg[..2],
        &[0xFF, 0xE1],
        &len.to_be_bytes(),
        b"Exif\0\0",
        &tiff,
        &jpeg[2..],
    ]
    .concat()
}

#[test]
fn exif_orientation_is_applied() {
    let img = pixels("portrait-test0.jpg");
    // Store the portrait turned 90° clockwise, tagged "rotate 90° clockwise to view" (6) —
    // i.e. pixels as a phone held sideways writes them.
    let stored = img.clone().orient(8);
    let bytes = jpeg(
        stored.width as u16,
        stored.height as u16,
        &stored.data,
        jpeg_encoder::ColorType::Rgb,
    );
    let untagged = photo_wasm::check(&bytes, id_card());
    let tagged = photo_wasm::check(&with_orientation(&bytes, 6), id_card());
    assert_eq!((tagged.width, tagged.height), (img.width, img.height));
    assert_eq!(
        status(&tagged, CheckId::Tilt),
        Some(Status::Pass),
        "{tagged:?}"
    );
    assert_eq!(status(&tagged, CheckId::FaceCount), Some(Status::Pass));
    assert_ne!(status(&untagged, CheckId::Tilt), Some(Status::Pass));
}

#[test]
fn blurring_a_sharp_portrait_fails_sharpness() {
    let img = pixels("portrait-test0.jpg");
    let sharpness = |img: &photo_wasm::raster::Rgb| {
        let rgba: Vec<u8> = img
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        let r = photo_wasm::check_rgba(img.width, img.height, &rgba, id_card());
        let c = r.check(CheckId::Sharpness).expect("one face").clone();
        (c.value.unwrap(), c.status)
    };
    let (sharp, s0) = sharpness(&img);
    // Shrinking then enlarging by 5× is a strong blur that keeps the face detectable.
    let blurred = img
        .resize(img.width / 5, img.height / 5)
        .resize(img.width, img.height);
    let (soft, s1) = sharpness(&blurred);
    assert_eq!(s0, Status::Pass);
    assert_eq!(s1, Status::Fail, "sharpness {sharp} -> {soft}");
}

#[test]
fn wrong_rgba_length_is_a_clean_failure() {
    let r = photo_wasm::check_rgba(10, 10, &[0; 399], id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Fail));
    let r = photo_wasm::check_rgba(0, 0, &[], id_card());
    assert_eq!(status(&r, CheckId::Decode), Some(Status::Fail));
}

/// Mutated and random bytes behind valid signatures: whatever comes out, it is a report.
#[test]
fn mutated_files_never_panic() {
    let img = pixels("portrait-test0-tiny.jpg");
    let seeds = [
        jpeg(
            img.width as u16,
            img.height as u16,
            &img.data,
            jpeg_encoder::ColorType::Rgb,
        ),
        png(img.width, img.height, &img.data, png::ColorType::Rgb),
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let mut bytes = seeds[round % 2].clone();
        for _ in 0..1 + next() % 8 {
            let i = (next() as usize) % bytes.len();
            bytes[i] = next() as u8;
        }
        if round % 10 == 0 {
            let cut = (next() as usize) % bytes.len();
            bytes.truncate(cut.max(3));
        }
        let r = photo_wasm::check(&bytes, id_card());
        assert!(r.check(CheckId::Decode).is_some());
    }
    for len in [3usize, 10, 100, 1000] {
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        assert_eq!(
            status(&photo_wasm::check(&bytes, id_card()), CheckId::Decode),
            Some(Status::Fail)
        );
    }
}
