//! `server` runs the API; `server admin add …` manages admin accounts with the same
//! configuration.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use server::admin::{create_admin_at, AdminStore, Role};
use server::booking::catalog::Catalog;
use server::config::Settings;
use server::store::Backend;
use server::{telemetry, Application};

// Every request allocates (JSON, headers, store replies); glibc's allocator took a quarter of
// the CPU time under load (perf), mimalloc a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  server                      run the API (configuration from BANZHENG_* variables)
  server admin add --username NAME --role reviewer|staff|admin [--hall ID]... --password-stdin
                              create an admin account; the password is read from stdin;
                              staff work at the halls given (`--hall all`: every hall)";

#[actix_web::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => serve(settings).await,
        ["admin", "add", rest @ ..] => admin_add(settings, rest).await,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server stopped: {e:#}");
            eprintln!("启动失败 / failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn admin_add(settings: Settings, args: &[&str]) -> ExitCode {
    let (mut username, mut role, mut password_stdin) = (None, None, false);
    let mut halls = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--username" => username = args.next().copied(),
            "--role" => role = args.next().copied(),
            "--hall" => match args.next() {
                Some(hall) => halls.push(*hall),
                None => {
                    eprintln!("--hall needs a hall id\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--password-stdin" => password_stdin = true,
            _ => {
                eprintln!("unknown argument `{arg}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(username), Some(role), true) = (username, role, password_stdin) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let role: Role = match role.parse() {
        Ok(role) => role,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_halls(&settings, role, &halls) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let mut password = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut password) {
        eprintln!("cannot read the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\n', '\r']);
    let opened = server::store::open(
        settings.redis_url.as_deref(),
        &settings.redis_key_prefix,
        &settings.data_dir,
        settings.store_durability(),
    )
    .await;
    let store: Arc<dyn AdminStore> = match opened {
        Ok(Backend::Sqlite(store)) => store,
        Ok(Backend::Redis(store)) => store,
        Err(e) => {
            eprintln!("cannot open the store: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match create_admin_at(store.as_ref(), username, role, &halls, password).await {
        Ok(admin) => {
            println!(
                "created {} account `{}`",
                admin.role.as_str(),
                admin.username
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Staff work at one hall at least, each a hall of the configured catalog (or `all`); other
/// roles at none.
fn check_halls(settings: &Settings, role: Role, halls: &[&str]) -> Result<(), String> {
    match (role, halls.is_empty()) {
        (Role::Staff, true) => {
            return Err(
                "staff accounts work at halls: give --hall ID (repeat it for several, \
                 or --hall all)"
                    .into(),
            )
        }
        (Role::Staff, false) => {}
        (_, true) => return Ok(()),
        (_, false) => {
            return Err(format!(
                "only staff accounts work at halls, not {}",
                role.as_str()
            ))
        }
    }
    let booking = &settings.booking;
    let catalog = Catalog::load(
        booking.halls_file.as_deref(),
        booking.holidays_file.as_deref(),
        booking.slot_capacity,
    )
    .map_err(|e| e.to_string())?;
    match halls
        .iter()
        .find(|hall| **hall != "all" && catalog.hall(hall).is_none())
    {
        Some(unknown) => Err(format!("no hall `{unknown}` in the halls file")),
        None => Ok(()),
    }
}
