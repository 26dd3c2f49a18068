//! The receipt image a user downloads from the 订单 tab and shows at the window: the normalised
//! photo at its own pixel size, the number as text and as a QR code, the document, the masked
//! applicant and the validity. Each province prints its own receipt, and exit-entry documents
//! put the photo on the other side, so the layout depends on both.

use std::io::Cursor;
use std::sync::LazyLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{ImageFormat, Rgb, RgbImage};
use qrcode::{Color, QrCode};

use super::domain::{ReceiptOrder, Region};
use crate::clock::china;

/// Noto Sans CJK SC, cut to ASCII and GB 2312 by `scripts/subset-receipt-font.sh` (SIL OFL
/// 1.1, licence beside it).
static FONT: LazyLock<FontRef<'static>> = LazyLock::new(|| {
    FontRef::try_from_slice(include_bytes!(
        "../../assets/fonts/NotoSansSC-Regular-GB2312.otf"
    ))
    .expect("the bundled font parses")
});

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 680;
const BAND: u32 = 90;
const MARGIN: u32 = 40;
const QR_MODULE: u32 = 6;
const INK: Rgb<u8> = Rgb([30, 30, 30]);
const GREY: Rgb<u8> = Rgb([110, 110, 110]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// What the receipt says, in the words the window uses.
pub struct ReceiptCard<'a> {
    pub order: &'a ReceiptOrder,
    /// The normalised photo, decoded.
    pub photo: &'a RgbImage,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("order has no receipt")]
    NoReceipt,
    #[error("cannot encode receipt image: {0}")]
    Encode(String),
}

struct Layout {
    title: String,
    band: Rgb<u8>,
    photo_on_left: bool,
}

fn layout(region: Region, spec: &str, document: &str) -> Layout {
    let band = match region {
        Region::Guangdong => Rgb([31, 95, 168]),
        Region::Jiangxi => Rgb([24, 120, 84]),
        Region::Hainan => Rgb([0, 122, 153]),
        Region::Hunan => Rgb([168, 48, 48]),
        Region::Guizhou => Rgb([96, 72, 150]),
        Region::Qinghai => Rgb([40, 90, 120]),
    };
    let exit_entry = matches!(spec, "passport" | "hk-macau-permit" | "taiwan-permit");
    let title = if spec == "id-card" {
        format!("{}居民身份证数字相片采集回执", region.name_zh())
    } else {
        format!("{}{document}数字相片回执", region.name_zh())
    };
    Layout {
        title,
        band,
        photo_on_left: !exit_entry,
    }
}

pub fn render(card: &ReceiptCard) -> Result<Vec<u8>, RenderError> {
    let order = card.order;
    let receipt = order.receipt.as_ref().ok_or(RenderError::NoReceipt)?;
    let layout = layout(order.region, &order.spec, &order.document_zh);
    let mut canvas = RgbImage::from_pixel(WIDTH, HEIGHT, WHITE);
    fill(&mut canvas, 0, 0, WIDTH, BAND, layout.band);
    draw_text(&mut canvas, &layout.title, MARGIN, 28, 36.0, WHITE);

    let (photo_w, _) = card.photo.dimensions();
    let photo_x = if layout.photo_on_left {
        MARGIN
    } else {
        WIDTH - MARGIN - photo_w
    };
    let photo_y = BAND + MARGIN;
    image::imageops::replace(
        &mut canvas,
        card.photo,
        i64::from(photo_x),
        i64::from(photo_y),
    );
    let text_x = if layout.photo_on_left {
        photo_x + photo_w + MARGIN
    } else {
        MARGIN
    };

    let date = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&china()).format("%Y-%m-%d");
    let mut y = photo_y;
    let mut line = |canvas: &mut RgbImage, label: &str, value: &str, size: f32| {
        draw_text(canvas, &format!("{label}：{value}"), text_x, y, size, INK);
        y += (size * 1.7) as u32;
    };
    line(&mut canvas, "证件类型", &order.document_zh, 26.0);
    line(&mut canvas, "姓名", &order.name.masked(), 26.0);
    line(&mut canvas, "身份证号", &order.id_number_masked, 26.0);
    line(&mut canvas, "回执号", &receipt.no.grouped(), 34.0);
    line(
        &mut canvas,
        "有效期",
        &format!(
            "{} 至 {}",
            date(receipt.issued_at),
            date(receipt.expires_at)
        ),
        24.0,
    );

    let qr = qr_image(receipt.no.as_str())?;
    let qr_x = if layout.photo_on_left {
        WIDTH - MARGIN - qr.width()
    } else {
        text_x
    };
    let qr_y = HEIGHT - MARGIN - qr.height() - 20;
    image::imageops::replace(&mut canvas, &qr, i64::from(qr_x), i64::from(qr_y));
    draw_text(
        &mut canvas,
        "凭回执号在办证窗口或网上申办时使用，仅限使用一次",
        MARGIN,
        HEIGHT - 36,
        20.0,
        GREY,
    );

    let mut png = Vec::new();
    canvas
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(png)
}

/// The number as a QR code, with the four-module quiet zone scanners need.
fn qr_image(text: &str) -> Result<RgbImage, RenderError> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| RenderError::Encode(e.to_string()))?;
    let modules = code.width() as u32;
    let quiet = 4;
    let side = (modules + 2 * quiet) * QR_MODULE;
    let mut image = RgbImage::from_pixel(side, side, WHITE);
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (mx, my) = (i as u32 % modules, i as u32 / modules);
            fill(
                &mut image,
                (mx + quiet) * QR_MODULE,
                (my + quiet) * QR_MODULE,
                QR_MODULE,
                QR_MODULE,
                Rgb([0, 0, 0]),
            );
        }
    }
    Ok(image)
}

fn fill(canvas: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
    for yy in y..(y + h).min(canvas.height()) {
        for xx in x..(x + w).min(canvas.width()) {
            canvas.put_pixel(xx, yy, color);
        }
    }
}

/// Draws one line of text with its top at `top`, blending glyph coverage into the canvas.
fn draw_text(canvas: &mut RgbImage, text: &str, left: u32, top: u32, size: f32, color: Rgb<u8>) {
    let font = FONT.as_scaled(PxScale::from(size));
    let baseline = top as f32 + font.ascent();
    let mut x = left as f32;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(previous) = previous {
            x += font.kern(previous, id);
        }
        previous = Some(id);
        let glyph = id.with_scale_and_position(size, ab_glyph::point(x, baseline));
        x += font.h_advance(id);
        let Some(outline) = FONT.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (px, py) = (
                bounds.min.x as i64 + gx as i64,
                bounds.min.y as i64 + gy as i64,
            );
            if px < 0 || py < 0 || px >= canvas.width() as i64 || py >= canvas.height() as i64 {
                return;
            }
            let pixel = canvas.get_pixel_mut(px as u32, py as u32);
            for (channel, ink) in pixel.0.iter_mut().zip(color.0) {
                let blended = f32::from(*channel) * (1.0 - coverage) + f32::from(ink) * coverage;
                *channel = blended.round() as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::person::{IdNumber, PersonName};
    use crate::receipts::{Decision, OrderForm, Photo, ReceiptNo};

    fn approved_order(region: Region, spec: &str, document: &str) -> ReceiptOrder {
        let now = Utc::now();
        let mut order = ReceiptOrder::new(
            "o1".into(),
            "u1".into(),
            OrderForm {
                spec: spec.into(),
                document_zh: document.into(),
                region,
                name: PersonName::parse("欧阳明").unwrap(),
                id_number: IdNumber::parse("441900199003070024").unwrap(),
            },
            &crate::id_hash::IdHasher::new(secrecy::SecretString::from("test-key")),
            Photo {
                attempt: 1,
                upload: None,
                report: serde_json::json!({}),
                background_whitened: true,
                note: None,
            },
            now,
        );
        order
            .decide(
                Decision::Approve {
                    no: ReceiptNo::generate(&mut rand::rng()),
                    valid_for: Duration::days(180),
                },
                "r1",
                now,
            )
            .unwrap();
        order
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
    }

    /// Where `photo` sits in `canvas`, found by its first row.
    pub(crate) fn find(canvas: &RgbImage, photo: &RgbImage) -> Option<(u32, u32)> {
        let (w, h) = photo.dimensions();
        (0..=canvas.height() - h)
            .flat_map(|y| (0..=canvas.width() - w).map(move |x| (x, y)))
            .find(|&(x, y)| (0..w).all(|dx| canvas.get_pixel(x + dx, y) == photo.get_pixel(dx, 0)))
    }

    #[test]
    fn the_receipt_carries_the_photo_and_a_qr_code_of_the_number() {
        for (region, spec, document, size) in [
            (Region::Guangdong, "id-card", "居民身份证", (358, 441)),
            (Region::Hunan, "id-card", "居民身份证", (358, 441)),
            (Region::Guangdong, "passport", "护照", (354, 472)),
        ] {
            let order = approved_order(region, spec, document);
            let photo = gradient(size.0, size.1);
            let png = render(&ReceiptCard {
                order: &order,
                photo: &photo,
            })
            .unwrap();
            let image = image::load_from_memory_with_format(&png, ImageFormat::Png)
                .unwrap()
                .to_rgb8();
            let (x, y) = find(&image, &photo).expect("photo embedded");
            let embedded = image::imageops::crop_imm(&image, x, y, size.0, size.1).to_image();
            assert_eq!(embedded, photo, "embedded pixel for pixel");

            let mut grid =
                rqrr::PreparedImage::prepare(image::DynamicImage::ImageRgb8(image).to_luma8());
            let grids = grid.detect_grids();
            assert_eq!(grids.len(), 1, "one QR code");
            let (_, content) = grids[0].decode().unwrap();
            assert_eq!(content, order.receipt.unwrap().no.as_str());
        }
    }
}
