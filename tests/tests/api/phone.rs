//! The phone number from WeChat: `POST /api/v1/me/phone {code}` exchanges a `getPhoneNumber`
//! code (`wxa/business/getuserphonenumber`, simulated), and a booking without a number takes
//! the verified one; typing a number stays possible.

use serde_json::json;
use tests::booking::{adult_id, bookable_weekday, slot_id};
use tests::{assert_error, json, on_both_backends, Backend, TestApp};

async fn bind(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.post_with_token("/api/v1/me/phone", token, &json!({ "code": code }))
        .await
}

async fn me(app: &TestApp, token: &str) -> serde_json::Value {
    json(app.get_with_token("/api/v1/me", token).await).await["user"].clone()
}

async fn a_phone_code_gives_the_verified_number_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sim = app.sim();
    let token = app.login("o-phone").await;
    assert_eq!(me(&app, &token).await["phone"], json!(null));

    let code = sim.phone_code("o-phone", "13812345678").await;
    let response = bind(&app, &token, &code).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await, json!({"phone": "13812345678"}));
    assert_eq!(me(&app, &token).await["phone"], "13812345678");
    assert_eq!(sim.calls("wxa/business/getuserphonenumber").await, 1);

    // Spent, someone else's, expired, malformed, or without a login: refused.
    assert_error(bind(&app, &token, &code).await, 422, "PHONE_CODE_INVALID").await;
    app.login("o-other").await;
    let theirs = sim.phone_code("o-other", "13900001111").await;
    assert_error(bind(&app, &token, &theirs).await, 422, "PHONE_CODE_INVALID").await;
    let late = sim.phone_code("o-phone", "13700002222").await;
    app.advance_clock(301).await;
    let token = app.login("o-phone").await;
    assert_error(bind(&app, &token, &late).await, 422, "PHONE_CODE_INVALID").await;
    for bad in ["", "两个字", &"x".repeat(129)] {
        assert_error(bind(&app, &token, bad).await, 400, "INVALID_INPUT").await;
    }
    assert_error(
        app.post_json("/api/v1/me/phone", &json!({"code": "x"}))
            .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(me(&app, &token).await["phone"], "13812345678", "unchanged");
}

async fn wechat_refusals_and_foreign_numbers_are_explained(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sim = app.sim();
    let token = app.login("o-busy").await;
    let path = "wxa/business/getuserphonenumber";

    sim.fault(json!({"endpoint": path, "openid": "o-busy", "errcode": 45011}))
        .await;
    let code = sim.phone_code("o-busy", "13812345678").await;
    let response = bind(&app, &token, &code).await;
    assert_eq!(response.headers()["retry-after"], "60");
    assert_error(response, 429, "WECHAT_RATE_LIMITED").await;

    sim.fault(json!({"endpoint": path, "errcode": -1})).await;
    assert_error(bind(&app, &token, &code).await, 502, "WECHAT_UNAVAILABLE").await;

    // A token WeChat no longer takes is replaced once, and the call goes through.
    sim.invalidate_tokens().await;
    assert_eq!(bind(&app, &token, &code).await.status(), 200);

    let response = app
        .client
        .post(format!("{}/__sim/phone-codes", app.address))
        .json(&json!({"openid": "o-busy", "phone": "61234567", "country_code": "852"}))
        .send()
        .await
        .unwrap();
    let hong_kong = json(response).await["code"].as_str().unwrap().to_owned();
    assert_error(
        bind(&app, &token, &hong_kong).await,
        422,
        "PHONE_NOT_MAINLAND",
    )
    .await;
    assert_eq!(me(&app, &token).await["phone"], "13812345678");
}

async fn a_booking_without_a_number_takes_the_verified_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login("o-book").await;
    let day = bookable_weekday();
    let booking = |n: u32, time: &str, phone: Option<&str>| {
        let mut applicant = json!({"name": "张三", "id_number": adult_id(n)});
        if let Some(phone) = phone {
            applicant["phone"] = json!(phone);
        }
        json!({"slot_id": slot_id("humen", day, time), "service": "expiry_renewal", "applicant": applicant})
    };
    let response = app.book(&token, &booking(1, "0900", None), None).await;
    let body = assert_error(response, 422, "INVALID_VALUE").await;
    assert_eq!(body["field"], "applicant.phone");

    let code = app.sim().phone_code("o-book", "13812345678").await;
    assert_eq!(bind(&app, &token, &code).await.status(), 200);
    let response = app.book(&token, &booking(1, "0900", None), None).await;
    assert_eq!(response.status(), 201);
    let booked = json(response).await;
    assert!(booked.to_string().contains("13812345678"), "{booked}");

    // Typing a number still wins over the verified one.
    let response = app
        .book(&token, &booking(2, "0930", Some("13900001111")), None)
        .await;
    assert_eq!(response.status(), 201);
    let booked = json(response).await;
    assert!(booked.to_string().contains("13900001111"), "{booked}");
}

on_both_backends!(
    a_phone_code_gives_the_verified_number_once,
    wechat_refusals_and_foreign_numbers_are_explained,
    a_booking_without_a_number_takes_the_verified_one
);
