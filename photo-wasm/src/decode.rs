//! Bounded JPEG/PNG decoding with EXIF orientation. The header is read first, so a decompression
//! bomb is refused before any pixel buffer is allocated; JPEGs are decoded in the DCT domain at
//! the smallest scale (1/8, 1/4, 1/2, 1) that still covers the requested size.

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
    #[error("image has no pixels")]
    Empty,
    #[error("cannot decode the image: {0}")]
    Corrupt(String),
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

fn check_size(width: u32, height: u32, max_pixels: u64) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty);
    }
    if width as u64 * height as u64 > max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_megapixels: (max_pixels / 1_000_000) as u32,
        });
    }
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt(e.to_string())
}

fn decode_jpeg(bytes: &[u8], want: Want) -> Result<Decoded, DecodeError> {
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(corrupt)?;
    let info = dec.info().ok_or(DecodeError::Empty)?;
    let (w, h) = (info.width as u32, info.height as u32);
    check_size(w, h, t::MAX_SOURCE_PIXELS)?;
    let f = want.factor(w, h);
    if f < 1.0 {
        let req = |v: u32| ((v as f32 * f).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
        dec.scale(req(w), req(h)).map_err(corrupt)?;
    }
    dec.set_max_decoding_buffer_size(t::MAX_DECODE_BYTES);
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

fn decode_png(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: t::MAX_DECODE_BYTES,
        },
    );
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(corrupt)?;
    let (w, h) = (reader.info().width, reader.info().height);
    check_size(w, h, t::MAX_PNG_PIXELS)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| corrupt("image too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(corrupt)?;
    let buf = &buf[..frame.buffer_size()];
    use png::ColorType as C;
    let rgba: Vec<u8> = match frame.color_type {
        C::Rgba => buf.to_vec(),
        C::Rgb => buf
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        C::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        C::Grayscale => buf.iter().flat_map(|&v| [v, v, v, 255]).collect(),
        C::Indexed => return Err(corrupt("palette was not expanded")),
    };
    if rgba.len() != w as usize * h as usize * 4 {
        return Err(corrupt("pixel buffer size does not match the header"));
    }
    Ok(Decoded {
        image: Rgb::from_rgba(w, h, &rgba),
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
