//! `POST /api/v1/me/phone {code}`: the code of the mini-program's `getPhoneNumber` button is
//! exchanged with WeChat (`wxa/business/getuserphonenumber`) for the user's verified mobile
//! number, which bookings then offer as the applicant's. WeChat charges for the call and
//! offers it to verified accounts only, so typing a number always stays possible.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::login::{Users, WeChatCode};
use super::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::person::PhoneNumber;
use crate::telemetry::mask;
use crate::wechat::token::{CallError, TokenError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    code: String,
}

pub async fn bind(
    user: AuthUser,
    body: web::Json<PhoneRequest>,
    users: web::Data<Users>,
) -> Result<HttpResponse, ApiError> {
    let code = WeChatCode::parse(
        body.into_inner().code,
        "手机号授权 code 无效，请重新点击获取手机号",
    )?;
    let user = users.user(&user.id).await?.ok_or(ApiError::Unauthorized)?;
    let wechat = users.wechat();
    let info = users
        .access_tokens()
        .call(|token| {
            let (code, openid) = (&code.0, &user.openid);
            async move { wechat.phone_number(&token, code, openid).await }
        })
        .await
        .map_err(refusal)?;
    let phone = PhoneNumber::parse(&info.pure_phone_number)
        .ok()
        .filter(|_| info.country_code == "86")
        .ok_or(ErrorCode::PhoneNotMainland)?;
    users.set_phone(&user.id, &phone).await?;
    tracing::info!(user = %user.id, phone = %mask::phone(phone.as_str()), "phone number verified by WeChat");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "phone": phone })))
}

/// WeChat's answers as the phone should see them.
fn refusal(error: CallError) -> ApiError {
    let wechat = match &error {
        CallError::WeChat(e) | CallError::Token(TokenError::WeChat(e)) => e.errcode(),
        CallError::Token(_) => None,
    };
    match (wechat, &error) {
        (Some(40029 | 40163), CallError::WeChat(_)) => ErrorCode::PhoneCodeInvalid.into(),
        (Some(45011), _) => ErrorCode::WechatRateLimited.with("获取手机号过于频繁，请一分钟后再试"),
        _ => ApiError::WeChatUnavailable(error.to_string()),
    }
}
