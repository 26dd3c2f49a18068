//! `photo-check FILE [--spec ID] [--json] [--normalise OUT.jpg] [--matte OUT.png]`: checks a photo
//! against a document spec; optionally writes the document photo and the person matte (greyscale,
//! 255 = person, the photo's size after EXIF orientation) whatever the verdict, when a face is found.
//! Exit status: 0 nothing failed, 1 something failed, 2 usage error or nothing to write.

use std::process::ExitCode;

const USAGE: &str = "usage: photo-check FILE [--spec ID] [--json] [--normalise OUT.jpg] [--matte OUT.png]\n\
                     spec ids: id-card (default), social-security-card, driving-licence, passport, hk-macau-permit";

struct Args {
    file: String,
    spec: String,
    json: bool,
    normalise: Option<String>,
    matte: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut file, mut spec, mut json) = (None, "id-card".to_string(), false);
    let (mut normalise, mut matte) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--spec" => spec = args.next().ok_or("--spec needs an id")?,
            "--normalise" => normalise = Some(args.next().ok_or("--normalise needs a file")?),
            "--matte" => matte = Some(args.next().ok_or("--matte needs a file")?),
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
        normalise,
        matte,
    })
}

/// Writes the document photo and the matte the arguments ask for, around the photo's one frontal
/// face (else its largest face).
fn write_outputs(
    args: &Args,
    bytes: &[u8],
    spec: &'static photo_wasm::Spec,
    checked: &photo_wasm::Checked,
) -> Result<(), String> {
    if args.normalise.is_none() && args.matte.is_none() {
        return Ok(());
    }
    let report = &checked.report;
    let frontal: Vec<_> = report.faces.iter().filter(|f| f.frontal).collect();
    let face = match frontal[..] {
        [one] => one,
        _ => report
            .faces
            .first()
            .ok_or("no face found: nothing to write")?,
    };
    let write = |path: &str, data: &[u8]| {
        std::fs::write(path, data).map_err(|e| format!("cannot write {path}: {e}"))
    };
    if let Some(path) = &args.normalise {
        let n =
            photo_wasm::normalise_around(bytes, spec, checked, face).map_err(|e| e.to_string())?;
        write(path, &n.jpeg)?;
        let note = n.background_note.map(|n| n.message_en).unwrap_or_default();
        eprintln!(
            "{path}: {}×{} at {} dpi, quality {}, background replaced: {}, soft edge {} px {note}",
            n.width, n.height, n.dpi, n.quality, n.background_whitened, n.soft_edge_px
        );
    }
    if let Some(path) = &args.matte {
        write(
            path,
            &photo_wasm::matte_png(bytes, spec, checked, face).map_err(|e| e.to_string())?,
        )?;
    }
    Ok(())
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
    let checked = photo_wasm::check_segmented(&bytes, spec);
    let report = &checked.report;
    if args.json {
        match serde_json::to_string_pretty(report) {
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
    if let Err(e) = write_outputs(&args, &bytes, spec, &checked) {
        eprintln!("photo-check: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(u8::from(report.failed()))
}
