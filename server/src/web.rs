//! The developer web client, served in development mode only: the user's side at `/`, the
//! detection centre's review queue at `/admin/`, the 客服 inbox at `/admin/kf/`, and the
//! photo checker's WebAssembly build (wasm-bindgen's `--target web` output,
//! `scripts/wasm.sh build`) under `/pkg/`.

use std::path::PathBuf;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::routing::endpoint;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const ADMIN_HTML: &str = include_str!("../web/admin/index.html");
const ADMIN_JS: &str = include_str!("../web/admin.js");
const KF_HTML: &str = include_str!("../web/admin/kf/index.html");
const KF_JS: &str = include_str!("../web/admin-kf.js");
const STAFF_JS: &str = include_str!("../web/staff.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

pub fn routes(cfg: &mut web::ServiceConfig, pkg_dir: PathBuf) {
    let page = |body: &'static str, content_type: &'static str| {
        move || async move {
            HttpResponse::Ok()
                .insert_header(("content-type", content_type))
                .insert_header(("cache-control", "no-store"))
                .body(body)
        }
    };
    cfg.app_data(web::Data::new(PackageDir(pkg_dir)))
        .service(endpoint("/").get(page(INDEX_HTML, "text/html; charset=utf-8")))
        .service(endpoint("/app.js").get(page(APP_JS, "text/javascript; charset=utf-8")))
        .service(endpoint("/style.css").get(page(STYLE_CSS, "text/css; charset=utf-8")))
        .service(endpoint("/admin/").get(page(ADMIN_HTML, "text/html; charset=utf-8")))
        .service(endpoint("/admin.js").get(page(ADMIN_JS, "text/javascript; charset=utf-8")))
        .service(endpoint("/admin/kf/").get(page(KF_HTML, "text/html; charset=utf-8")))
        .service(endpoint("/admin-kf.js").get(page(KF_JS, "text/javascript; charset=utf-8")))
        .service(endpoint("/staff.js").get(page(STAFF_JS, "text/javascript; charset=utf-8")))
        .service(endpoint("/pkg/{file}").get(package_file));
}

struct PackageDir(PathBuf);

async fn package_file(
    file: web::Path<String>,
    dir: web::Data<PackageDir>,
) -> Result<HttpResponse, ApiError> {
    // A plain file name only: no way out of the package directory.
    let name = file.into_inner();
    if name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(ApiError::NotFound);
    }
    let content_type = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8".to_owned(),
        Some("wasm") => "application/wasm".to_owned(),
        Some("ts") => "text/plain; charset=utf-8".to_owned(),
        _ => ContentType::octet_stream().to_string(),
    };
    let bytes = tokio::fs::read(dir.0.join(&name))
        .await
        .map_err(|_| ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header(("content-type", content_type))
        .insert_header(("cache-control", "no-store"))
        .body(bytes))
}
