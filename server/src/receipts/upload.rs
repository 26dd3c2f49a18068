//! Reading a multipart photo upload: one `photo` part within the size limit (413 past it, read
//! no further), a few short text parts, nothing else. The photo's type comes from its bytes,
//! never from the file name or the part's declared type. The request's bytes are held in the
//! photo budget from before they are read until the answer.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::HttpRequest;
use futures_util::StreamExt;

use super::budget::{Held, PhotoBudget};
use super::image_type;
use crate::error::{ApiError, ErrorCode};

/// Longest text part accepted (a name, an ID number, a spec id, a region).
const TEXT_MAX_BYTES: usize = 256;
/// Room for the multipart framing and the text parts around the photo.
const FRAMING_BYTES: usize = 64 * 1024;

pub struct Upload {
    /// The photo's bytes, sniffed as JPEG or PNG.
    pub photo: Vec<u8>,
    fields: HashMap<String, String>,
    /// The budget the upload's bytes take, until the upload is dropped.
    _held: Held,
}

impl Upload {
    /// A text part that must be present.
    pub fn field(&self, name: &str) -> Result<&str, ApiError> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ApiError::invalid(name, format!("缺少字段 {name}")))
    }
}

fn not_multipart(e: actix_multipart::MultipartError) -> ApiError {
    ApiError::invalid(
        "body",
        format!("请以 multipart/form-data 上传照片和表单字段（{e}）"),
    )
}

/// Reads the upload; `text_fields` are the text parts allowed beside `photo`.
pub async fn read(
    req: &HttpRequest,
    mut payload: Multipart,
    max_photo_bytes: usize,
    text_fields: &[&str],
    budget: &PhotoBudget,
) -> Result<Upload, ApiError> {
    // A declared length past the limit is refused before a byte of it is read.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_photo_bytes + FRAMING_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let held = budget
        .hold(declared.unwrap_or(max_photo_bytes + FRAMING_BYTES) as u64)
        .await?;
    let mut photo = None;
    let mut fields = HashMap::new();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(not_multipart)?;
        let name = field.name().unwrap_or_default().to_owned();
        let is_photo = name == "photo";
        if !is_photo && !text_fields.contains(&name.as_str()) {
            return Err(ApiError::invalid(name, "未知的表单字段"));
        }
        if (is_photo && photo.is_some()) || fields.contains_key(&name) {
            return Err(ApiError::invalid(name, "表单字段重复"));
        }
        let limit = if is_photo {
            max_photo_bytes
        } else {
            TEXT_MAX_BYTES
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(not_multipart)?;
            if bytes.len() + chunk.len() > limit {
                return Err(if is_photo {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::invalid(name, "字段内容过长")
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_photo {
            photo = Some(bytes);
        } else {
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::invalid(name.clone(), "字段内容必须是 UTF-8 文本"))?;
            fields.insert(name, text);
        }
    }
    // An empty part is a photo that is no JPEG or PNG, not a missing one.
    let photo = photo.ok_or_else(|| ApiError::invalid("photo", "请上传照片"))?;
    if image_type(&photo).is_none() {
        return Err(ErrorCode::PhotoUnreadable.into());
    }
    Ok(Upload {
        photo,
        fields,
        _held: held,
    })
}
