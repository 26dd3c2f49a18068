//! Bounded JPEG/PNG decoding with EXIF orientation. The header is read first, so a decompression
//! bomb is refused before any pixel buffer is allocated; JPEGs are decoded in the DCT domain at
//! the smallest scale (1/8, 1/4, 1/2, 1) that still covers the requested size. [`plan`]
//! reads the same header and says how much memory a decode will hold at most, so a caller can
//! budget for it before decoding.

use crate::raster::Rgb;
use crate::thresholds as t;
use std::io::Cursor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JPEG or PNG file")]
    UnknownFormat,
    #[error(
        "image of {width}×{height} pixels is larger than the {max_megapixels} megapixels accepted"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_megapixels: u32,
    },
    /// PNG has no reduced decode: every pixel is held in memory, so it is capped lower.
    #[error(
        "PNG of {width}×{height} pixels is larger than the {max_megapixels} megapixels accepted for PNG (a PNG is decoded in full; save the photo as JPEG)"
    )]
    PngTooLarge {
        width: u32,
        height: u32,
        max_megapixels: u32,
    },
    #[error("a {file_bytes}-byte file declaring {width}×{height} pixels is not a photo (it would inflate {ratio}-fold)")]
    Inflates {
        width: u32,
        height: u32,
        file_bytes: usize,
        ratio: u64,
    },
    /// A progressive or lossless JPEG holds the full image while decoding, at any scale.
    #[error("progressive or lossless JPEG of {width}×{height} pixels is too large to decode (save it as a baseline JPEG)")]
    FullSizeTooLarge { width: u32, height: u32 },
    #[error("image has no pixels")]
    Empty,
    #[error("cannot decode the image: {0}")]
    Corrupt(String),
}

impl DecodeError {
    /// The same in Chinese, for the report's `decode` check.
    pub fn message_zh(&self) -> String {
        match self {
            DecodeError::UnknownFormat => "不是 JPEG 或 PNG 文件".into(),
            DecodeError::TooLarge {
                width,
                height,
                max_megapixels,
            } => format!("图片为 {width}×{height} 像素，超过可接受的 {max_megapixels} 百万像素"),
            DecodeError::PngTooLarge {
                width,
                height,
                max_megapixels,
            } => format!(
                "PNG 图片为 {width}×{height} 像素，超过 PNG 可接受的 {max_megapixels} 百万像素（PNG 须完整解码，请保存为 JPEG 后上传）"
            ),
            DecodeError::Inflates {
                width,
                height,
                file_bytes,
                ..
            } => format!("{file_bytes} 字节的文件声明了 {width}×{height} 像素，不是正常照片"),
            DecodeError::FullSizeTooLarge { width, height } => format!(
                "渐进式或无损 JPEG 图片为 {width}×{height} 像素，过大无法解码（请保存为普通 JPEG）"
            ),
            DecodeError::Empty => "图片没有像素".into(),
            DecodeError::Corrupt(why) => format!("图片已损坏（{why}）"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

/// A decoded, upright image, possibly smaller than the source.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: Rgb,
    /// Size of the upright source at full resolution.
    pub source_width: u32,
    pub source_height: u32,
    pub format: Format,
}

pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else {
        None
    }
}

/// How many pixels the caller needs. A JPEG is decoded at the smallest DCT scale that still gives
/// that many; PNG always decodes in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Full,
    LongSide(u32),
    Pixels(u64),
}

impl Want {
    /// Scale factor (≤ 1) for a `width`×`height` source.
    fn factor(self, width: u32, height: u32) -> f32 {
        let f = match self {
            Want::Full => 1.0,
            Want::LongSide(n) => n as f32 / width.max(height) as f32,
            Want::Pixels(n) => (n as f32 / (width as f32 * height as f32)).sqrt(),
        };
        f.min(1.0)
    }
}

pub fn decode(bytes: &[u8], want: Want) -> Result<Decoded, DecodeError> {
    match sniff(bytes).ok_or(DecodeError::UnknownFormat)? {
        Format::Jpeg => decode_jpeg(bytes, want),
        Format::Png => decode_png(bytes),
    }
}

/// What [`decode`] of some bytes for some [`Want`] will take, from the header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The most memory (bytes) the decode holds at once: the decoder's buffers and the image.
    pub bytes: u64,
    /// The decoded image's size (before EXIF orientation, which may swap the two).
    pub width: u32,
    pub height: u32,
}

/// What [`decode`] of `bytes` for `want` will take, read from the header alone. An error is
/// the one [`decode`] gives at the same header, before it allocates anything.
pub fn plan(bytes: &[u8], want: Want) -> Result<Plan, DecodeError> {
    match sniff(bytes).ok_or(DecodeError::UnknownFormat)? {
        Format::Jpeg => {
            let (dec, source) = jpeg_decoder(bytes, want)?;
            let info = dec.info().ok_or(DecodeError::Empty)?;
            Ok(Plan {
                bytes: source.full_size_bytes + jpeg_scaled_bytes(&info),
                width: info.width as u32,
                height: info.height as u32,
            })
        }
        Format::Png => {
            let reader = png_reader(bytes)?;
            let (w, h) = (reader.info().width, reader.info().height);
            let size = reader
                .output_buffer_size()
                .ok_or_else(|| corrupt("image too large"))? as u64;
            // The decoded frame and the RGB image made from it.
            Ok(Plan {
                bytes: size + w as u64 * h as u64 * 3,
                width: w,
                height: h,
            })
        }
    }
}

/// The limits every source passes before a pixel buffer is allocated: some pixels, no more than
/// the format allows, and no more decoded bytes per file byte than a photo or screenshot has.
fn admit(format: Format, width: u32, height: u32, file_bytes: usize) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty);
    }
    let pixels = width as u64 * height as u64;
    let max_pixels = match format {
        Format::Jpeg => t::MAX_JPEG_PIXELS,
        Format::Png => t::MAX_PNG_PIXELS,
    };
    if pixels > max_pixels {
        let max_megapixels = (max_pixels / 1_000_000) as u32;
        return Err(match format {
            Format::Jpeg => DecodeError::TooLarge {
                width,
                height,
                max_megapixels,
            },
            Format::Png => DecodeError::PngTooLarge {
                width,
                height,
                max_megapixels,
            },
        });
    }
    let decoded = pixels * 3;
    let ratio = decoded / file_bytes.max(1) as u64;
    if decoded > t::INFLATE_CHECK_FROM_BYTES && ratio > t::MAX_INFLATE_RATIO {
        return Err(DecodeError::Inflates {
            width,
            height,
            file_bytes,
            ratio,
        });
    }
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt(e.to_string())
}

type JpegDecoder<'a> = jpeg_decoder::Decoder<Cursor<&'a [u8]>>;

/// What a JPEG's header says before it is scaled.
struct JpegSource {
    width: u32,
    height: u32,
    full_size_bytes: u64,
}

/// A JPEG decoder past its header, admitted and scaled for `want`, and the source.
fn jpeg_decoder(bytes: &[u8], want: Want) -> Result<(JpegDecoder<'_>, JpegSource), DecodeError> {
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(corrupt)?;
    let info = dec.info().ok_or(DecodeError::Empty)?;
    let (w, h) = (info.width as u32, info.height as u32);
    admit(Format::Jpeg, w, h, bytes.len())?;
    let full_size_bytes = jpeg_full_size_bytes(&info);
    if full_size_bytes > t::MAX_DECODE_BYTES as u64 {
        return Err(DecodeError::FullSizeTooLarge {
            width: w,
            height: h,
        });
    }
    // The smallest DCT scale that covers `want`, halved while the decode would hold more than
    // the cap (only a photo of tens of megapixels wanted in full): fewer pixels, never more memory.
    let mut f = want.factor(w, h);
    loop {
        if f < 1.0 {
            let req = |v: u32| ((v as f32 * f).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
            dec.scale(req(w), req(h)).map_err(corrupt)?;
        }
        let out = dec.info().ok_or(DecodeError::Empty)?;
        let scale = out.width as f32 / w as f32;
        if full_size_bytes + jpeg_scaled_bytes(&out) <= t::MAX_DECODE_PEAK_BYTES || scale <= 0.125 {
            break;
        }
        f = scale / 2.0;
    }
    dec.set_max_decoding_buffer_size(t::MAX_DECODE_BYTES);
    let source = JpegSource {
        width: w,
        height: h,
        full_size_bytes,
    };
    Ok((dec, source))
}

/// What decoding a JPEG holds at its output size `info`: the component planes (padded to whole
/// 16-pixel units) with the interleaved output, then the output with its RGB copy (greyscale,
/// CMYK), then the RGB image with its upright copy (EXIF orientation); the most of the three.
fn jpeg_scaled_bytes(info: &jpeg_decoder::ImageInfo) -> u64 {
    let (w, h) = (info.width as u64, info.height as u64);
    let channels = jpeg_channels(info.pixel_format);
    let planes = channels * (w + 16) * (h + 16);
    let output = channels * w * h;
    let rgb = 3 * w * h;
    (planes + output).max(output + rgb).max(2 * rgb)
}

fn jpeg_channels(format: jpeg_decoder::PixelFormat) -> u64 {
    use jpeg_decoder::PixelFormat as P;
    match format {
        P::L8 => 1,
        P::L16 => 2,
        P::RGB24 => 3,
        P::CMYK32 => 4,
    }
}

/// What a JPEG keeps at full resolution whatever the output scale: a progressive one its DCT
/// coefficients (2 bytes each, 64 per 8×8 block, every channel counted at full resolution as if
/// nothing were subsampled), a lossless one its 16-bit planes and output; a baseline one nothing.
/// `info` is the header's, before any scaling.
fn jpeg_full_size_bytes(info: &jpeg_decoder::ImageInfo) -> u64 {
    use jpeg_decoder::CodingProcess as C;
    // Whole 16-pixel units, as the largest MCUs pad them.
    let padded = (info.width as u64).div_ceil(16) * 16 * (info.height as u64).div_ceil(16) * 16;
    let channels = jpeg_channels(info.pixel_format);
    match info.coding_process {
        C::DctSequential => 0,
        C::DctProgressive => padded * 2 * channels,
        C::Lossless => padded * 4 * channels,
    }
}

fn decode_jpeg(bytes: &[u8], want: Want) -> Result<Decoded, DecodeError> {
    let (mut dec, source) = jpeg_decoder(bytes, want)?;
    let (w, h) = (source.width, source.height);
    let pixels = dec.decode().map_err(corrupt)?;
    let info = dec.info().ok_or(DecodeError::Empty)?;
    let (dw, dh) = (info.width as u32, info.height as u32);
    use jpeg_decoder::PixelFormat as P;
    let n = dw as usize * dh as usize;
    let data: Vec<u8> = match info.pixel_format {
        P::RGB24 => pixels,
        P::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        // Big-endian 16-bit grey: keep the high byte.
        P::L16 => pixels.chunks_exact(2).flat_map(|v| [v[0]; 3]).collect(),
        // The decoder's CMYK values are ink amounts (it undoes Adobe's inversion).
        P::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - p[3] as u32;
                let ch = move |c: u8| (((255 - c as u32) * k + 127) / 255) as u8;
                [ch(p[0]), ch(p[1]), ch(p[2])]
            })
            .collect(),
    };
    if data.len() != n * 3 {
        return Err(corrupt("pixel buffer size does not match the header"));
    }
    let orientation = dec.exif_data().map_or(1, exif_orientation);
    let image = Rgb {
        width: dw,
        height: dh,
        data,
    }
    .orient(orientation);
    let (sw, sh) = if orientation >= 5 { (h, w) } else { (w, h) };
    Ok(Decoded {
        image,
        source_width: sw,
        source_height: sh,
        format: Format::Jpeg,
    })
}

type PngReader<'a> = png::Reader<Cursor<&'a [u8]>>;

/// A PNG reader past its header, admitted, giving 8-bit samples.
fn png_reader(bytes: &[u8]) -> Result<PngReader<'_>, DecodeError> {
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: t::MAX_DECODE_BYTES,
        },
    );
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let reader = dec.read_info().map_err(corrupt)?;
    let (w, h) = (reader.info().width, reader.info().height);
    admit(Format::Png, w, h, bytes.len())?;
    Ok(reader)
}

fn decode_png(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut reader = png_reader(bytes)?;
    let (w, h) = (reader.info().width, reader.info().height);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| corrupt("image too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(corrupt)?;
    let buf = &buf[..frame.buffer_size()];
    use png::ColorType as C;
    let channels = match frame.color_type {
        C::Rgba => 4,
        C::Rgb => 3,
        C::GrayscaleAlpha => 2,
        C::Grayscale => 1,
        C::Indexed => return Err(corrupt("palette was not expanded")),
    };
    if buf.len() != w as usize * h as usize * channels {
        return Err(corrupt("pixel buffer size does not match the header"));
    }
    // Straight to RGB, a pixel at a time (no RGBA copy of the whole image in between).
    let mut image = Rgb::new(w, h);
    for (out, p) in image
        .data
        .chunks_exact_mut(3)
        .zip(buf.chunks_exact(channels))
    {
        let rgba = match *p {
            [r, g, b, a] => [r, g, b, a],
            [r, g, b] => [r, g, b, 255],
            [v, a] => [v, v, v, a],
            [v] => [v, v, v, 255],
            _ => unreachable!("chunks of 1 to 4 samples"),
        };
        out.copy_from_slice(&Rgb::over_white(rgba));
    }
    Ok(Decoded {
        image,
        source_width: w,
        source_height: h,
        format: Format::Png,
    })
}

/// The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or malformed.
pub fn exif_orientation(tiff: &[u8]) -> u16 {
    let le = match tiff.get(0..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return 1,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b = tiff.get(i..i + 2)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b = tiff.get(i..i + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let find = || -> Option<u16> {
        let ifd = u32_at(4)? as usize;
        let count = u16_at(ifd)? as usize;
        (0..count).find_map(|k| {
            let e = ifd + 2 + k * 12;
            (u16_at(e)? == 0x0112).then(|| u16_at(e + 8)).flatten()
        })
    };
    find().filter(|o| (1..=8).contains(o)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_orientation_both_byte_orders() {
        let le = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0,
        ];
        assert_eq!(exif_orientation(&le), 6);
        let be = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0,
        ];
        assert_eq!(exif_orientation(&be), 3);
        assert_eq!(exif_orientation(&le[..12]), 1);
        assert_eq!(exif_orientation(b"garbage"), 1);
    }

    #[test]
    fn refuses_unknown_and_empty_input() {
        assert_eq!(
            decode(b"", Want::Full).unwrap_err(),
            DecodeError::UnknownFormat
        );
        assert!(matches!(
            decode(&[0xFF, 0xD8, 0xFF], Want::Full),
            Err(DecodeError::Corrupt(_))
        ));
    }
}
