//! Timing for `scripts/bench-photo.sh` (release build). Writes the phone-size inputs it times so
//! the wasm run uses the very same files, and the detections on the shared photos for the
//! comparison with OpenCV.
//!
//! `cargo run --release -p photo-wasm --example bench -- PHOTOS_DIR OUT_DIR [RUNS] [checks]`
//! (`checks`: time only the phone-size checks, for the interleaved rounds). The 1 MP photo is
//! also checked as RGBA pixels (`check_rgba`, the mini-program's path: a canvas gives it the
//! decoded photo), written to `bench-1mp.rgba` (its size in `bench-1mp.rgba.json`) for the wasm
//! run.

use photo_wasm::decode::{decode, Want};
use std::time::Instant;

/// This thread's CPU time in ms (Linux): unlike wall time, barely inflated when other builds
/// share the cores.
fn cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e6)
}

/// Median (CPU ms, wall ms) over `runs`, after one warm-up (the model is parsed on first use).
/// CPU time falls back to wall time where it is unavailable.
fn median_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let (mut cpu, mut wall): (Vec<f64>, Vec<f64>) = (0..runs)
        .map(|_| {
            let (c, s) = (cpu_ms(), Instant::now());
            f();
            let w = s.elapsed().as_secs_f64() * 1000.0;
            (cpu_ms().zip(c).map_or(w, |(b, a)| b - a), w)
        })
        .unzip();
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    (cpu[runs / 2], wall[runs / 2])
}

fn field(name: &str, (cpu, wall): (f64, f64)) -> String {
    format!("\"{name}_cpu_ms\":{cpu:.2},\"{name}_wall_ms\":{wall:.2}")
}

fn jpeg(img: &photo_wasm::raster::Rgb) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(
            &img.data,
            img.width as u16,
            img.height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encode");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench PHOTOS_DIR OUT_DIR [RUNS]");
        std::process::exit(2);
    }
    let (photos, out) = (
        std::path::Path::new(&args[1]),
        std::path::Path::new(&args[2]),
    );
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(15);
    let checks_only = args.get(4).is_some_and(|a| a == "checks");
    std::fs::create_dir_all(out).expect("out dir");
    let spec = photo_wasm::spec_by_id("id-card").expect("spec");

    // Phone-size inputs made from the test portrait.
    let src = decode(
        &std::fs::read(photos.join("portrait-test0.jpg")).expect("portrait-test0.jpg"),
        Want::Full,
    )
    .expect("decodes")
    .image;
    let inputs = [("12mp", 3024, 4032), ("1mp", 864, 1152)];
    let mut line = Vec::new();
    for (name, w, h) in inputs {
        let bytes = jpeg(&src.resize(w, h));
        std::fs::write(out.join(format!("bench-{name}.jpg")), &bytes).expect("write");
        let ms = median_ms(runs, || {
            std::hint::black_box(photo_wasm::check(&bytes, spec));
        });
        line.push(field(&format!("native_{name}"), ms));
        if name == "1mp" {
            let img = decode(&bytes, Want::Full).expect("decodes").image;
            let rgba: Vec<u8> = img
                .data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect();
            std::fs::write(out.join("bench-1mp.rgba"), &rgba).expect("write");
            let size = format!("{{\"width\":{},\"height\":{}}}", img.width, img.height);
            std::fs::write(out.join("bench-1mp.rgba.json"), size).expect("write");
            let ms = median_ms(runs, || {
                std::hint::black_box(photo_wasm::check_rgba(img.width, img.height, &rgba, spec));
            });
            line.push(field("native_rgba_1mp", ms));
        }
        if name == "12mp" && !checks_only {
            let ms = median_ms(runs, || {
                std::hint::black_box(photo_wasm::normalise(&bytes, spec).expect("normalises"));
            });
            line.push(field(&format!("normalise_{name}"), ms));
            let ms = median_ms(runs, || {
                std::hint::black_box(
                    photo_wasm::downscale_for_review(&bytes, 2_000_000).expect("review copy"),
                );
            });
            line.push(field(&format!("review_copy_{name}"), ms));
        }
    }

    if checks_only {
        println!("{{{}}}", line.join(","));
        return;
    }

    // The shared photos: detections and time per photo (file read, decode, detection, checks).
    let mut names: Vec<String> = std::fs::read_dir(photos)
        .expect("photos dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    let mut per_photo = Vec::new();
    let mut times = Vec::new();
    for n in &names {
        let path = photos.join(n);
        let mut report = None;
        let (ms, _) = median_ms(3, || {
            let bytes = std::fs::read(&path).expect("read");
            report = Some(photo_wasm::check(&bytes, spec));
        });
        times.push(ms);
        let faces: Vec<String> = report
            .iter()
            .flat_map(|r| &r.faces)
            .map(|f| format!("[{},{},{},{},{}]", f.x, f.y, f.width, f.height, f.frontal))
            .collect();
        per_photo.push(format!(
            "\"{n}\":{{\"ms\":{ms:.2},\"faces\":[{}]}}",
            faces.join(",")
        ));
    }
    times.sort_by(f64::total_cmp);
    line.push(format!(
        "\"native_photos_median_cpu_ms\":{:.2}",
        times[times.len() / 2]
    ));
    std::fs::write(
        out.join("native-detections.json"),
        format!("{{{}}}", per_photo.join(",")),
    )
    .expect("write");
    println!("{{{}}}", line.join(","));
}
