use server::config::Settings;
use server::{telemetry, Application};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let result = async {
        Application::build(settings)
            .await?
            .run_until_stopped()
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server stopped: {e:#}");
            eprintln!("启动失败 / failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
