//! `photo-check FILE [--spec ID] [--json]`: checks a photo against a document spec.
//! Exit status: 0 nothing failed, 1 something failed, 2 usage error.

use std::process::ExitCode;

const USAGE: &str = "usage: photo-check FILE [--spec ID] [--json]\n\
                     spec ids: id-card (default), social-security-card, driving-licence, passport, hk-macau-permit";

struct Args {
    file: String,
    spec: String,
    json: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut file, mut spec, mut json) = (None, "id-card".to_string(), false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--spec" => spec = args.next().ok_or("--spec needs an id")?,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if file.is_some() => return Err("only one FILE".into()),
            _ => file = Some(a),
        }
    }
    Ok(Args {
        file: file.ok_or("missing FILE")?,
        spec,
        json,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("photo-check: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(spec) = photo_wasm::spec_by_id(&args.spec) else {
        eprintln!("photo-check: unknown spec id {:?}\n{USAGE}", args.spec);
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("photo-check: cannot read {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let report = photo_wasm::check(&bytes, spec);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("photo-check: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        println!(
            "{} ({}×{}) against {}:",
            args.file, report.width, report.height, spec.id
        );
        for c in &report.checks {
            let status = match c.status {
                photo_wasm::Status::Pass => "pass",
                photo_wasm::Status::Warn => "WARN",
                photo_wasm::Status::Fail => "FAIL",
            };
            let value = c.value.map(|v| format!(" [{v}]")).unwrap_or_default();
            // The same snake_case id as in the JSON.
            let id = serde_json::to_value(c.id).unwrap_or_default();
            let id = id.as_str().unwrap_or_default();
            println!("  {status}  {id}{value}: {}", c.message_en);
        }
    }
    ExitCode::from(u8::from(report.failed()))
}
