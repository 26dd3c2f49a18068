//! 户政 appointments end to end over HTTP, on SQLite and on Redis.

use chrono::{Duration, Weekday};
use tests::booking::{bookable_weekday, next, slot_id, today};
use tests::{assert_error, json, on_both_backends, Backend, TestApp};

async fn halls_and_services_are_listed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let offices = json(app.get("/api/v1/offices").await).await;
    let offices = offices["offices"].as_array().unwrap();
    assert_eq!(offices.len(), 34, "32 镇街, 松山湖 and the 市民服务中心");
    let dongcheng = offices.iter().find(|o| o["id"] == "dongcheng").unwrap();
    assert_eq!(dongcheng["name"], "东莞市公安局东城分局办证大厅");
    assert_eq!(dongcheng["town"], "东城街道");
    assert!(dongcheng["hours"].as_str().unwrap().contains("家庭专场"));
    assert_eq!(dongcheng["services"].as_array().unwrap().len(), 4);

    let services = json(app.get("/api/v1/services").await).await;
    let services = services["services"].as_array().unwrap();
    let fee = |id: &str| services.iter().find(|s| s["id"] == id).unwrap()["fee_yuan"].clone();
    assert_eq!(fee("expiry_renewal"), 20);
    assert_eq!(fee("damage_replacement"), 40);
    assert_eq!(fee("loss_replacement"), 40);
    assert_eq!(fee("first_application"), 20);
    assert!(services.iter().all(|s| s["materials"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m.as_str().unwrap().contains("回执"))));
}

async fn slots_show_capacity_and_remaining_seats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = bookable_weekday();
    let response = app.slots("humen", "expiry_renewal", day).await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    let slots = body["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 13);
    let first = &slots[0];
    assert_eq!(first["id"], slot_id("humen", day, "0900"));
    assert_eq!(first["start"], format!("{day}T09:00:00+08:00"));
    assert_eq!(first["end"], format!("{day}T09:30:00+08:00"));
    assert_eq!(first["capacity"], 6);
    assert_eq!(first["remaining"], 6);
    assert_eq!(first["family_only"], false);
    assert_eq!(
        body["bookable_from"],
        (today() + Duration::days(1)).to_string()
    );
    assert!(body["closed_reason"].is_null());

    let saturday = next(Weekday::Sat, today());
    let body = json(app.slots("humen", "first_application", saturday).await).await;
    let slots = body["slots"].as_array().unwrap();
    match body["closed_reason"].as_str() {
        Some(reason) => assert_eq!(reason, "public_holiday", "{body}"),
        None => {
            assert_eq!(slots.len(), 6, "Saturday morning");
            assert!(slots.iter().all(|s| s["family_only"] == true));
        }
    }

    let sunday = next(Weekday::Sun, today());
    let body = json(app.slots("humen", "expiry_renewal", sunday).await).await;
    assert!(body["slots"].as_array().unwrap().is_empty());
    assert!(!body["closed_reason"].is_null());

    let body = json(app.slots("humen", "expiry_renewal", today()).await).await;
    assert_eq!(
        body["closed_reason"], "outside_booking_window",
        "today is not bookable"
    );
    let body = json(
        app.slots("humen", "expiry_renewal", today() + Duration::days(8))
            .await,
    )
    .await;
    assert_eq!(body["closed_reason"], "outside_booking_window");
}

async fn slot_queries_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = bookable_weekday();
    assert_error(
        app.slots("atlantis", "expiry_renewal", day).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let body = assert_error(
        app.slots("humen", "passport", day).await,
        400,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(body["field"], "service");
    let response = app
        .get("/api/v1/offices/humen/slots?service=expiry_renewal&date=2026-13-01")
        .await;
    let body = assert_error(response, 400, "INVALID_INPUT").await;
    assert_eq!(body["field"], "date");
}

on_both_backends!(
    halls_and_services_are_listed,
    slots_show_capacity_and_remaining_seats,
    slot_queries_are_checked,
);
