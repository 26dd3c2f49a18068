//! Timing for `scripts/bench-photo.sh` (release build). Writes the phone-size inputs it times so
//! the wasm run uses the very same files, and the detections on the shared photos for the
//! comparison with OpenCV.
//!
//! `cargo run --release -p photo-wasm --example bench -- PHOTOS_DIR OUT_DIR [RUNS] [checks]`
//! (`checks`: time only the phone-size checks, for the interleaved rounds), or
//! `… -- BG_PHOTOS_DIR OUT_DIR RUNS matte [MODEL-masks …]`: the person matte's IoU on the portraits
//! (`NAME.jpg` or `NAME.png`) in front of ordinary backgrounds, against their reference cut-outs
//! (`NAME.ref.png`, alpha) and
//! each large model's masks (`DIR/NAME.png`, labelled by the directory's name less `-masks`, e.g.
//! `isnet`), for our matte and for the segmentation alone (its 256×256 output upsampled
//! bilinearly); with two or more models also their IoU with each other and ours over the pixels
//! where they all agree (`agreed`: what is left there is our error, not a model's), and the time of the segmentation and of `finish` given
//! it at a 12 MP photo's analysis size (of `carvekit-woman-glasses-street.jpg`, or of the first
//! photo in another directory). Our mattes are written to `OUT_DIR/matte-NAME.png`, and with
//! `BENCH_WRITE_ALONE` set the segmentation alone to `OUT_DIR/alone-NAME.pgm`, to look at. The 1 MP photo is
//! also checked as RGBA pixels (`check_rgba`, the mini-program's path: a canvas gives it the
//! decoded photo) and finished from them (`finish_rgba`, the phone's preview), written to `bench-1mp.rgba` (its size in `bench-1mp.rgba.json`) for the wasm
//! run.

use photo_wasm::decode::{decode, Want};
use std::time::Instant;

/// This thread's CPU time in ms: unlike wall time, barely inflated when other builds share the
/// cores. `clock_gettime` counts to the nanosecond (`/proc/thread-self/schedstat`, read before,
/// advances only at scheduler ticks for a thread that never blocks).
fn cpu_ms() -> Option<f64> {
    clock_ms(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The process's CPU time in ms, every thread's (a decoder's worker threads count too).
fn process_cpu_ms() -> Option<f64> {
    clock_ms(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock_ms(clock: libc::clockid_t) -> Option<f64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration.
    let ok = unsafe { libc::clock_gettime(clock, &mut t) } == 0;
    ok.then(|| t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6)
}

/// Medians over `runs`, in ms: this thread's CPU, the process's CPU and wall time.
struct Times {
    cpu: f64,
    process: f64,
    wall: f64,
}

/// [`Times`] of `f` over `runs`, after one warm-up (the model is parsed on first use). CPU times
/// fall back to wall time where they are unavailable.
fn median_ms(runs: usize, mut f: impl FnMut()) -> Times {
    f();
    let mut samples: [Vec<f64>; 3] = Default::default();
    for _ in 0..runs {
        let (c, p, s) = (cpu_ms(), process_cpu_ms(), Instant::now());
        f();
        let w = s.elapsed().as_secs_f64() * 1000.0;
        let spent =
            |after: Option<f64>, before: Option<f64>| after.zip(before).map_or(w, |(b, a)| b - a);
        samples[0].push(spent(cpu_ms(), c));
        samples[1].push(spent(process_cpu_ms(), p));
        samples[2].push(w);
    }
    let [cpu, process, wall] = samples.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[runs / 2]
    });
    Times { cpu, process, wall }
}

fn field(name: &str, t: Times) -> String {
    format!(
        "\"{name}_cpu_ms\":{:.2},\"{name}_process_cpu_ms\":{:.2},\"{name}_wall_ms\":{:.2}",
        t.cpu, t.process, t.wall
    )
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

/// A PNG's alpha channel (RGBA) or its grey values (greyscale) and its size.
fn png_mask(path: &std::path::Path) -> Option<(u32, u32, Vec<u8>)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).ok()?));
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let channels = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Grayscale => 1,
        _ => return None,
    };
    let take = if channels == 1 { 0 } else { channels - 1 };
    let values = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| p[take])
        .collect();
    Some((info.width, info.height, values))
}

/// Intersection over union of the two masks cut at half.
fn iou(a: &[u8], b: &[u8]) -> f64 {
    let (mut inter, mut union) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x >= 128, y >= 128);
        inter += u64::from(x && y);
        union += u64::from(x || y);
    }
    inter as f64 / union.max(1) as f64
}

/// Intersection over union of the masks cut at half, over the pixels where `counted`.
fn iou_where(a: &[u8], b: &[u8], counted: &[bool]) -> f64 {
    let (mut inter, mut union) = (0u64, 0u64);
    for ((&x, &y), _) in a.iter().zip(b).zip(counted).filter(|(_, &c)| c) {
        let (x, y) = (x >= 128, y >= 128);
        inter += u64::from(x && y);
        union += u64::from(x || y);
    }
    inter as f64 / union.max(1) as f64
}

/// A model's label from its masks' directory: `…/isnet-masks` → `isnet`.
fn model_label(dir: &std::path::Path) -> String {
    let name = dir
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    name.trim_end_matches("-masks").to_string()
}

/// A judged photo's name less its extension: `NAME.jpg` or `NAME.png`, not a reference cut-out
/// (`NAME.ref.png`).
fn photo_stem(name: &str) -> Option<&str> {
    let stem = name
        .strip_suffix(".jpg")
        .or_else(|| name.strip_suffix(".png"))?;
    (!stem.ends_with(".ref")).then_some(stem)
}

/// The matte's IoU per photo (see the module comment), as JSON.
fn matte_quality(
    photos: &std::path::Path,
    out: &std::path::Path,
    models: &[std::path::PathBuf],
    runs: usize,
) {
    let spec = photo_wasm::spec_by_id("id-card").expect("spec");
    let mut names: Vec<String> = std::fs::read_dir(photos)
        .expect("photos dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| photo_stem(n).is_some())
        .collect();
    names.sort();
    let segmenter = photo_wasm::segment::Segmenter::shared().expect("native model");
    let mut rows = Vec::new();
    for n in &names {
        let stem = photo_stem(n).expect("a photo");
        let bytes = std::fs::read(photos.join(n)).expect("read");
        let image = decode(&bytes, Want::Full).expect("decodes").image;
        let checked = photo_wasm::check_segmented(&bytes, spec);
        let face = checked
            .report
            .faces
            .iter()
            .find(|f| f.frontal)
            .or(checked.report.faces.first());
        let ours = match face {
            Some(f) => {
                let png = photo_wasm::matte_png(&bytes, spec, &checked, f).expect("matte");
                // Kept beside the other outputs so anyone can look at them.
                let path = out.join(format!("matte-{stem}.png"));
                std::fs::write(&path, png).expect("write");
                png_mask(&path).expect("our png").2
            }
            None => photo_wasm::photo_matte(&image, None, &segmenter.segmentation(&image), spec)
                .expect("matte"),
        };
        let alone: Vec<u8> = segmenter
            .segment_once(&image)
            .resize(image.width, image.height)
            .data
            .iter()
            .map(|v| (v * 255.0 + 0.5) as u8)
            .collect();
        if std::env::var_os("BENCH_WRITE_ALONE").is_some() {
            // The segmentation alone, to look at beside ours (binary PGM).
            let mut pgm = format!("P5 {} {} 255\n", image.width, image.height).into_bytes();
            pgm.extend_from_slice(&alone);
            std::fs::write(out.join(format!("alone-{stem}.pgm")), pgm).expect("write");
        }
        let mut fields = vec![format!("\"face\":{}", face.is_some())];
        let refs = std::iter::once(("ref".to_string(), photos.join(format!("{stem}.ref.png"))))
            .chain(
                models
                    .iter()
                    .map(|d| (model_label(d), d.join(format!("{stem}.png")))),
            );
        let mut model_masks = Vec::new();
        for (label, path) in refs {
            if let Some((w, h, mask)) = png_mask(&path) {
                assert_eq!((w, h), (image.width, image.height), "{path:?}");
                fields.push(format!("\"{label}\":{:.4}", iou(&ours, &mask)));
                fields.push(format!("\"{label}_alone\":{:.4}", iou(&alone, &mask)));
                if label != "ref" {
                    model_masks.push((label, mask));
                }
            }
        }
        if let [(first_label, first), rest @ ..] = &model_masks[..] {
            if !rest.is_empty() {
                for (label, mask) in rest {
                    fields.push(format!("\"{first_label}_{label}\":{:.4}", iou(first, mask)));
                }
                let agreed: Vec<bool> = (0..first.len())
                    .map(|i| rest.iter().all(|(_, m)| (m[i] >= 128) == (first[i] >= 128)))
                    .collect();
                fields.push(format!(
                    "\"agreed\":{:.4}",
                    iou_where(&ours, first, &agreed)
                ));
            }
        }
        rows.push(format!("\"{n}\":{{{}}}", fields.join(",")));
    }
    // Time: the check's segmentation of a 12 MP photo's analysis-size decode (one look) and
    // `finish` given it (the matte's second look, here at the square around the person; render,
    // refinement, compositing), and of that the crop's resampling, which is not matte work.
    // The street portrait where it is (`shared/photos-bg`), so the figures compare across runs;
    // in another judging set its first photo.
    let street = photos.join("carvekit-woman-glasses-street.jpg");
    let portrait = std::fs::read(if street.exists() {
        street
    } else {
        photos.join(names.first().expect("a photo"))
    })
    .expect("read");
    let src = decode(&portrait, Want::Full).expect("decodes").image;
    let big = jpeg(&src.resize(4032, 3024));
    let analysis = decode(
        &big,
        Want::LongSide(photo_wasm::thresholds::ANALYSIS_MIN_LONG_SIDE),
    )
    .expect("decodes");
    let checked = photo_wasm::check_segmented(&big, spec);
    let report = &checked.report;
    let person = checked.person.as_ref().expect("segmented");
    let face = report.faces.first().expect("a face");
    let to_analysis = analysis.image.width as f64 / report.width as f64;
    let det = photo_wasm::detect::Detection {
        x: (face.x * to_analysis) as f32,
        y: (face.y * to_analysis) as f32,
        width: (face.width * to_analysis) as f32,
        height: (face.height * to_analysis) as f32,
        score: face.score as f32,
        right_eye: face.right_eye.map(|v| (v * to_analysis) as f32),
        left_eye: face.left_eye.map(|v| (v * to_analysis) as f32),
        nose: face.nose.map(|v| (v * to_analysis) as f32),
        mouth: face.mouth.map(|v| (v * to_analysis) as f32),
        right_ear: face.right_ear.map(|v| (v * to_analysis) as f32),
        left_ear: face.left_ear.map(|v| (v * to_analysis) as f32),
    };
    let ms = median_ms(runs, || {
        std::hint::black_box(
            photo_wasm::finish(&analysis.image, &det, person, spec).expect("finish"),
        );
    });
    let seg = median_ms(runs, || {
        std::hint::black_box(segmenter.segmentation(&analysis.image));
    });
    let crop = median_ms(runs, || {
        std::hint::black_box(photo_wasm::crop_pixels(&analysis.image, &det, spec));
    });
    println!(
        "{{\"photos\":{{{}}},{},{},{},\"analysis_size\":[{},{}]}}",
        rows.join(","),
        field("finish_12mp_analysis", ms),
        field("segment_12mp_analysis", seg),
        field("crop_12mp_analysis", crop),
        analysis.image.width,
        analysis.image.height
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(4).is_some_and(|a| a == "matte") {
        let runs = args[3].parse().unwrap_or(15);
        matte_quality(
            std::path::Path::new(&args[1]),
            std::path::Path::new(&args[2]),
            &args[5..]
                .iter()
                .map(std::path::PathBuf::from)
                .collect::<Vec<_>>(),
            runs,
        );
        return;
    }
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
            // The phone's preview: the check and the finished photo from the same pixels.
            let ms = median_ms(runs, || {
                std::hint::black_box(
                    photo_wasm::finish_rgba(img.width, img.height, &rgba, spec).expect("finishes"),
                );
            });
            line.push(field("native_finish_rgba_1mp", ms));
        }
        if name == "12mp" && !checks_only {
            let ms = median_ms(runs, || {
                std::hint::black_box(photo_wasm::normalise(&bytes, spec).expect("normalises"));
            });
            line.push(field(&format!("normalise_{name}"), ms));
            // What the server runs after the check: around its face, along its segmentation.
            let checked = photo_wasm::check_segmented(&bytes, spec);
            let ms = median_ms(runs, || {
                std::hint::black_box(
                    photo_wasm::normalise_checked(&bytes, spec, &checked).expect("normalises"),
                );
            });
            line.push(field(&format!("normalise_checked_{name}"), ms));
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
        let ms = median_ms(3, || {
            let bytes = std::fs::read(&path).expect("read");
            report = Some(photo_wasm::check(&bytes, spec));
        })
        .cpu;
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
