//! `server` runs the API; `server admin add …` manages admin accounts with the same
//! configuration.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use server::admin::{create_admin_at, set_halls, AdminStore, Role};
use server::backup::Key;
use server::booking::catalog::Catalog;
use server::clock::Clock;
use server::config::Settings;
use server::erasure::Erasure;
use server::startup::AllStores;
use server::store::Backend;
use server::{telemetry, Application};

// Every request allocates (JSON, headers, store replies); glibc's allocator took a quarter of
// the CPU time under load (perf), mimalloc a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  server                      run the API (configuration from BANZHENG_* variables)
  server admin add --username NAME --role reviewer|staff|support|admin [--hall ID]... --password-stdin
                              create an admin account; the password is read from stdin;
                              staff work at the halls given (`--hall all`: every hall)
  server admin halls --username NAME --hall ID [--hall ID]...
                              move a staff account to these halls
  server backup --to FILE     back the SQLite database and its photos up into FILE (0600,
                              encrypted under BANZHENG_BACKUP__KEY) while the server serves
  server restore --from FILE  restore a backup (stop the server first), then re-apply the
                              erasures journaled since it was taken
  server erasures replay [--since RFC3339]
                              re-apply the journaled erasures (since a time) to the configured
                              store: after restoring Redis from its RDB or AOF file";

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
        ["admin", "halls", rest @ ..] => admin_halls(settings, rest).await,
        ["backup", "--to", file] => backup(settings, file).await,
        ["restore", "--from", file] => restore(settings, file).await,
        ["erasures", "replay"] => replay(settings, None).await,
        ["erasures", "replay", "--since", since] => match DateTime::parse_from_rfc3339(since) {
            Ok(since) => replay(settings, Some(since.to_utc())).await,
            Err(e) => {
                eprintln!("--since `{since}`: {e} (e.g. 2026-12-01T00:00:00Z)");
                ExitCode::from(2)
            }
        },
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

/// The answer of a maintenance command: what it did on stdout, or why it failed on stderr.
fn finished<T>(outcome: anyhow::Result<T>, say: impl FnOnce(T) -> String) -> ExitCode {
    match outcome {
        Ok(done) => {
            println!("{}", say(done));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Backups and restores copy the SQLite files; Redis keeps its own (RDB, AOF).
fn sqlite_only(settings: &Settings) -> anyhow::Result<()> {
    if settings.redis_url.is_some() {
        anyhow::bail!(
            "BANZHENG_REDIS_URL is set: Redis is backed up by Redis (RDB snapshots or the \
             append-only file, see the README); after restoring one, run `server erasures replay`"
        );
    }
    Ok(())
}

fn backup_key(settings: &Settings) -> anyhow::Result<Key> {
    settings
        .backup
        .key(settings.is_production(), &settings.data_dir)
}

async fn backup(settings: Settings, file: &str) -> ExitCode {
    let outcome = async {
        sqlite_only(&settings)?;
        let key = backup_key(&settings)?;
        server::backup::backup(&settings.data_dir, &key, Path::new(file)).await
    };
    finished(outcome.await, |r| {
        format!(
            "backed up: database {} bytes, {} photos, {file} {} bytes (0600, encrypted)",
            r.database_bytes, r.photos, r.file_bytes
        )
    })
}

async fn restore(settings: Settings, file: &str) -> ExitCode {
    let outcome = async {
        sqlite_only(&settings)?;
        let key = backup_key(&settings)?;
        let restored = server::backup::restore(&settings.data_dir, &key, Path::new(file)).await?;
        let reapplied = reapply_journal(&settings, restored.store, restored.replay_since).await?;
        anyhow::Ok((restored.started_at, restored.photos, reapplied))
    };
    finished(outcome.await, |(started_at, photos, reapplied)| {
        format!(
            "restored the backup of {}: {photos} photos; {reapplied} journaled erasures re-applied",
            started_at.to_rfc3339()
        )
    })
}

async fn replay(settings: Settings, since: Option<DateTime<Utc>>) -> ExitCode {
    let outcome = async {
        let since = since.unwrap_or(DateTime::<Utc>::MIN_UTC);
        match server::store::open(
            settings.redis_at(),
            &settings.redis_key_prefix,
            &settings.data_dir,
            settings.store_durability(),
            settings.replica_wait(),
        )
        .await?
        {
            Backend::Sqlite(store) => reapply_journal(&settings, store, since).await,
            Backend::Redis(store) => reapply_journal(&settings, store, since).await,
        }
    };
    finished(outcome.await, |n| {
        format!("{n} journaled erasures re-applied")
    })
}

/// Applies the journal's erasures since `since` to `store` again.
async fn reapply_journal<S: AllStores + 'static>(
    settings: &Settings,
    store: Arc<S>,
    since: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let erasure = Erasure::over(
        store,
        settings.backup.journal(&settings.data_dir),
        settings.erasure.clone(),
        Arc::new(Clock::default()),
    );
    erasure.reapply_since(since).await
}

/// The arguments of `server admin …`.
#[derive(Default)]
struct AccountArgs<'a> {
    username: Option<&'a str>,
    role: Option<&'a str>,
    halls: Vec<&'a str>,
    password_stdin: bool,
}

fn account_args<'a>(args: &[&'a str]) -> Result<AccountArgs<'a>, ExitCode> {
    let mut parsed = AccountArgs::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--username" => parsed.username = args.next().copied(),
            "--role" => parsed.role = args.next().copied(),
            "--hall" => match args.next() {
                Some(hall) => parsed.halls.push(*hall),
                None => {
                    eprintln!("--hall needs a hall id\n{USAGE}");
                    return Err(ExitCode::from(2));
                }
            },
            "--password-stdin" => parsed.password_stdin = true,
            _ => {
                eprintln!("unknown argument `{arg}`\n{USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(parsed)
}

async fn admin_store(settings: &Settings) -> Result<Arc<dyn AdminStore>, ExitCode> {
    let opened = server::store::open(
        settings.redis_at(),
        &settings.redis_key_prefix,
        &settings.data_dir,
        settings.store_durability(),
        settings.replica_wait(),
    )
    .await;
    match opened {
        Ok(Backend::Sqlite(store)) => Ok(store),
        Ok(Backend::Redis(store)) => Ok(store),
        Err(e) => {
            eprintln!("cannot open the store: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

async fn admin_add(settings: Settings, args: &[&str]) -> ExitCode {
    let args = match account_args(args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (Some(username), Some(role), true) = (args.username, args.role, args.password_stdin) else {
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
    if let Err(e) = check_halls(&settings, role, &args.halls) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let mut password = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut password) {
        eprintln!("cannot read the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\n', '\r']);
    let store = match admin_store(&settings).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    match create_admin_at(store.as_ref(), username, role, &args.halls, password).await {
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

/// `server admin halls`: a staff account's halls, replaced (its tokens follow at once).
async fn admin_halls(settings: Settings, args: &[&str]) -> ExitCode {
    let args = match account_args(args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (Some(username), None, false) = (args.username, args.role, args.password_stdin) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if let Err(e) = check_halls(&settings, Role::Staff, &args.halls) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let store = match admin_store(&settings).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    match set_halls(store.as_ref(), username, &args.halls).await {
        Ok(admin) => {
            println!("`{}` works at {}", admin.username, admin.halls.join(", "));
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
