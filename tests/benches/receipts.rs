//! Photo-receipt benchmark (`scripts/bench-receipts.sh`; not part of the test command):
//! normalisation of a 12-megapixel phone photo, and orders accepted per second over HTTP on
//! SQLite and on Redis. Prints figures; asserts nothing about speed.

use std::time::{Duration, Instant};

use tests::receipts::{order_fields, photo};
use tests::{Backend, TestApp};

const RUNS: usize = 10;
const ORDERS: usize = 40;
const CONCURRENCY: usize = 8;

/// `portrait-test0.jpg` upscaled to a phone's 3024×4032, as a phone would send it.
fn twelve_megapixels() -> Vec<u8> {
    let source = image::load_from_memory(&photo("portrait-test0.jpg")).unwrap();
    let large = source.resize_exact(3024, 4032, image::imageops::FilterType::CatmullRom);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&large.to_rgb8())
        .unwrap();
    jpeg
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time(runs: usize, mut work: impl FnMut()) -> (Duration, Duration) {
    work();
    let times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    (median(times.clone()), times.into_iter().min().unwrap())
}

async fn orders_per_second(backend: Backend, jpeg: &[u8]) -> f64 {
    let app = TestApp::spawn(backend).await;
    let token = app.login("openid-bench").await;
    let fields = order_fields("id-card", "广东省东莞市");
    let started = Instant::now();
    let mut sent = 0;
    while sent < ORDERS {
        let batch = CONCURRENCY.min(ORDERS - sent);
        let requests = (0..batch)
            .map(|_| app.post_multipart("/api/v1/receipt-orders", &token, jpeg.to_vec(), &fields));
        for response in futures_util::future::join_all(requests).await {
            assert_eq!(response.status(), 201, "order accepted");
        }
        sent += batch;
    }
    ORDERS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let spec = photo_wasm::spec_by_id("id-card").expect("id-card spec");
    let jpeg = twelve_megapixels();
    println!(
        "input: portrait-test0.jpg upscaled to 3024x4032 (12.2 MP), JPEG q90, {} KB",
        jpeg.len() / 1024
    );
    let (median_ms, min_ms) = time(RUNS, || {
        photo_wasm::normalise(&jpeg, spec).expect("normalises");
    });
    println!(
        "normalise from scratch (find the face, decode, crop, resize, whiten, JPEG size search), 12 MP: median {:.1} ms, min {:.1} ms over {RUNS} runs",
        median_ms.as_secs_f64() * 1e3,
        min_ms.as_secs_f64() * 1e3
    );
    let checked = photo_wasm::check_segmented(&jpeg, spec);
    let (median_ms, min_ms) = time(RUNS, || {
        photo_wasm::normalise_checked(&jpeg, spec, &checked).expect("normalises");
    });
    println!(
        "normalise around the check's face, along its segmentation (what an upload does after the check), 12 MP: median {:.1} ms, min {:.1} ms",
        median_ms.as_secs_f64() * 1e3,
        min_ms.as_secs_f64() * 1e3
    );
    let (median_ms, min_ms) = time(RUNS, || {
        assert!(!photo_wasm::check(&jpeg, spec).failed());
    });
    println!(
        "check (the same code as the phone's), 12 MP: median {:.1} ms, min {:.1} ms",
        median_ms.as_secs_f64() * 1e3,
        min_ms.as_secs_f64() * 1e3
    );
    for backend in [Backend::Sqlite, Backend::Redis] {
        let rate = orders_per_second(backend, &jpeg).await;
        println!(
            "orders accepted ({backend:?}, {ORDERS} orders of 12 MP photos, {CONCURRENCY} at a time, over HTTP): {rate:.1} per second"
        );
    }
}
