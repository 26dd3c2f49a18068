//! A bare actix-web JSON handler: the yardstick `scripts/bench-booking.sh` measures the
//! booking endpoints against, in the same run on the same machine.

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::var("BENCH_BARE_BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let workers = std::env::var("BENCH_BARE_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    HttpServer::new(|| {
        App::new().route(
            "/",
            web::get()
                .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
        )
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await
}
