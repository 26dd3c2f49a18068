//! Photo receipts for the tests: users, the shared photos, orders, the receipt image.

use std::path::PathBuf;

use chrono::Utc;
use serde_json::{json, Value};
use server::auth::user_id_for;

use crate::TestApp;

/// A valid 居民身份证 number (check digit per GB 11643) and another person's.
pub const ID_NUMBER: &str = "441900199003070024";
pub const OTHER_ID_NUMBER: &str = "441900201008151237";

/// `shared/photos`, or `BANZHENG_PHOTOS_DIR`.
pub fn photos_dir() -> PathBuf {
    std::env::var_os("BANZHENG_PHOTOS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/photos"))
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = photos_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl TestApp {
    pub async fn review(&self, token: &str, order_id: &str, body: Value) -> reqwest::Response {
        self.post_with_token(
            &format!("/api/v1/admin/receipt-orders/{order_id}/review"),
            token,
            &body,
        )
        .await
    }

    pub async fn approve(&self, token: &str, order_id: &str) -> Value {
        let response = self
            .review(token, order_id, json!({"decision": "approve"}))
            .await;
        assert_eq!(response.status(), 200, "approve");
        crate::json(response).await
    }

    pub async fn receipt_orders(&self, token: &str, query: &str) -> Value {
        let response = self
            .get_with_token(&format!("/api/v1/receipt-orders{query}"), token)
            .await;
        assert_eq!(response.status(), 200, "order list");
        crate::json(response).await
    }

    pub async fn bytes(&self, path: &str, token: &str, content_type: &str) -> Vec<u8> {
        let response = self.get_with_token(path, token).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        response.bytes().await.unwrap().to_vec()
    }
}

/// Decodes the QR codes in an image: their texts.
pub fn qr_codes(image: &image::RgbImage) -> Vec<String> {
    let mut prepared =
        rqrr::PreparedImage::prepare(image::DynamicImage::ImageRgb8(image.clone()).to_luma8());
    prepared
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

/// Where `photo` sits in `canvas` pixel for pixel, if it does.
pub fn find_embedded(canvas: &image::RgbImage, photo: &image::RgbImage) -> Option<(u32, u32)> {
    let (w, h) = photo.dimensions();
    if w > canvas.width() || h > canvas.height() {
        return None;
    }
    let at = (0..=canvas.height() - h)
        .flat_map(|y| (0..=canvas.width() - w).map(move |x| (x, y)))
        .find(|&(x, y)| (0..w).all(|dx| canvas.get_pixel(x + dx, y) == photo.get_pixel(dx, 0)))?;
    let embedded = image::imageops::crop_imm(canvas, at.0, at.1, w, h).to_image();
    (&embedded == photo).then_some(at)
}

impl TestApp {
    /// An order as the upload stores it, written straight to the store: the photo scaled to
    /// 358×441 stands for the normalised one.
    pub async fn seed_order(&self, openid: &str, photo_name: &str) -> String {
        use server::person::{IdNumber, PersonName};
        use server::receipts::{blob_key, OrderForm, Photo, PhotoKind, ReceiptOrder, Region};

        let store = self.shared.open().await;
        let order = ReceiptOrder::new(
            uuid::Uuid::new_v4().simple().to_string(),
            user_id_for(openid),
            OrderForm {
                spec: "id-card".into(),
                document_zh: "居民身份证".into(),
                region: Region::Guangdong,
                name: PersonName::parse("张三").unwrap(),
                id_number: IdNumber::parse(ID_NUMBER).unwrap(),
            },
            &self.shared.id_hasher(),
            Photo {
                attempt: 1,
                upload: None,
                report: json!({"checks": []}),
                background_whitened: true,
                note: None,
            },
            Utc::now(),
        );
        let original = photo(photo_name);
        let mut normalised = Vec::new();
        image::load_from_memory(&original)
            .unwrap()
            .resize_exact(358, 441, image::imageops::FilterType::Triangle)
            .to_rgb8()
            .write_to(
                &mut std::io::Cursor::new(&mut normalised),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        store
            .blob_put(&blob_key(&order, PhotoKind::Original), &original)
            .await
            .unwrap();
        store
            .blob_put(&blob_key(&order, PhotoKind::Normalised), &normalised)
            .await
            .unwrap();
        store.insert_receipt_order(&order).await.unwrap();
        order.id
    }
}

/// The first working day (not a weekend, not a public holiday in the built-in data) after
/// `from`.
pub fn working_day_after(from: chrono::NaiveDate) -> chrono::NaiveDate {
    use chrono::Datelike;
    let holidays = server::booking::catalog::Catalog::load(None, None, 1).unwrap();
    let mut day = from + chrono::Duration::days(1);
    while matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
        || holidays.holidays.contains(&day)
    {
        day += chrono::Duration::days(1);
    }
    day
}

impl TestApp {
    /// Moves the app's clock to `time` (Dongguan) on `day`; tokens issued before then expire.
    pub async fn advance_clock_to(&self, day: chrono::NaiveDate, time: &str) {
        let target =
            chrono::NaiveDateTime::parse_from_str(&format!("{day} {time}"), "%Y-%m-%d %H:%M")
                .unwrap()
                .and_local_timezone(chrono::FixedOffset::east_opt(8 * 3600).unwrap())
                .unwrap();
        let seconds = (target.with_timezone(&Utc) - Utc::now()).num_seconds();
        assert!(seconds > 0, "{target} is in the past");
        self.advance_clock(seconds).await;
    }
}

impl TestApp {
    /// `openid` accepts `grants` review-result notifications, as `wx.requestSubscribeMessage`
    /// reports them.
    pub async fn subscribe_to_review_results(&self, token: &str, grants: usize) {
        let template = self.template_id(server::notify::Event::ReviewResult).await;
        for _ in 0..grants {
            assert_eq!(self.subscribe(token, &[&template]).await.status(), 200);
        }
    }

    /// Sends what is due and returns the 服务通知 WeChat received for `openid`, each as the
    /// text of its `data`.
    pub async fn notifications_to(&self, openid: &str) -> Vec<String> {
        let delivered = self.deliveries_to(openid).await;
        delivered.into_iter().map(|(_, data)| data).collect()
    }
}

/// The form of an order for `ID_NUMBER`, as the mini-program sends it.
pub fn order_fields(spec: &str, region: &str) -> Vec<(&'static str, String)> {
    vec![
        ("spec", spec.to_owned()),
        ("region", region.to_owned()),
        ("name", "张三".to_owned()),
        ("id_number", ID_NUMBER.to_owned()),
    ]
}

impl TestApp {
    /// Posts a multipart form with `photo` (bytes, with a file name the server must ignore).
    pub async fn post_multipart(
        &self,
        path: &str,
        token: &str,
        photo: Vec<u8>,
        fields: &[(&'static str, String)],
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new().part(
            "photo",
            reqwest::multipart::Part::bytes(photo).file_name("photo.jpg"),
        );
        for (name, value) in fields {
            form = form.text(*name, value.clone());
        }
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Orders an ID-card receipt for Guangdong with a photo from `shared/photos`: the order.
    pub async fn order_receipt(&self, token: &str, photo_name: &str) -> Value {
        let response = self
            .post_multipart(
                "/api/v1/receipt-orders",
                token,
                photo(photo_name),
                &order_fields("id-card", "广东省东莞市"),
            )
            .await;
        assert_eq!(response.status(), 201, "order with {photo_name}");
        crate::json(response).await
    }
}
