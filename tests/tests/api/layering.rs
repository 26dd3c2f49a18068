//! The server's imports point one way: handlers → capability → store traits → engines. Only
//! the composition root (`startup.rs`, with `lib.rs` and `main.rs`) knows every capability,
//! `store/` knows none, and no two modules import each other, however indirectly. Read from
//! the sources, so a new import that breaks the rule fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What `store/` may use besides itself: modules that import no capability.
const STORE_MAY_USE: &[&str] = &["store", "error", "clock", "telemetry"];
/// The composition root and the crate's front doors.
const MAY_USE_STARTUP: &[&str] = &["startup.rs", "lib.rs", "main.rs"];

fn server_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `server/src` (`booking/store/mod.rs` → `booking::store`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn ident(text: &str) -> Option<String> {
    let id: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The top-level modules `source` names through `crate::…` (grouped imports included) or
/// through enough `super::` to reach the crate root from `module`. Comment lines are skipped.
fn top_level_uses(source: &str, module: &[String]) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level entries of the group: split at commas outside nested braces.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        used.extend(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        used.extend(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            used.extend(ident(rest));
        }
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("super::") {
            continue; // counted from the first `super::` of the chain
        }
        let mut rest = &code[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        if ups == module.len() {
            used.extend(ident(rest));
        }
    }
    used
}

/// Each server source file, relative to `server/src`, with the top-level modules it uses.
fn server_uses() -> Vec<(PathBuf, BTreeSet<String>)> {
    let root = server_src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 20, "server sources not found under {root:?}");
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).unwrap().to_path_buf();
            let source = std::fs::read_to_string(&path).unwrap();
            let uses = top_level_uses(&source, &module_path(&relative));
            (relative, uses)
        })
        .collect()
}

#[test]
fn the_reader_sees_plain_grouped_and_super_imports() {
    let module = vec!["booking".to_owned(), "handlers".to_owned()];
    let source = "use crate::{error::ApiError, startup::{A, B}, clock};\n\
                  // use crate::commented_out;\n\
                  use super::super::receipts::Receipts;\n\
                  use super::form::Form;\n\
                  fn f() { crate::metrics::x(); }";
    let expected = ["clock", "error", "metrics", "receipts", "startup"];
    assert_eq!(
        top_level_uses(source, &module),
        expected.iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn only_the_composition_root_imports_startup() {
    let offenders: Vec<_> = server_uses()
        .into_iter()
        .filter(|(file, uses)| {
            uses.contains("startup") && !MAY_USE_STARTUP.iter().any(|ok| file == Path::new(ok))
        })
        .map(|(file, _)| file)
        .collect();
    assert!(
        offenders.is_empty(),
        "these import `startup`; take the capability as its own web::Data instead: {offenders:?}"
    );
}

#[test]
fn the_store_imports_no_capability() {
    let offenders: Vec<_> = server_uses()
        .into_iter()
        .filter(|(file, _)| file.starts_with("store"))
        .flat_map(|(file, uses)| {
            uses.into_iter()
                .filter(|m| !STORE_MAY_USE.contains(&m.as_str()))
                .map(move |m| format!("{} uses {m}", file.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "store/ must not know the capabilities (their store traits live with them): {offenders:?}"
    );
}

/// A circle in `graph` through `from`, if any: the modules along it.
fn circle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|m| m == from) {
        let mut circle = path[at..].to_vec();
        circle.push(from.to_owned());
        return Some(circle);
    }
    if done.contains(from) {
        return None;
    }
    path.push(from.to_owned());
    for next in graph.get(from).into_iter().flatten() {
        if let Some(circle) = circle_from(graph, next, path, done) {
            return Some(circle);
        }
    }
    path.pop();
    done.insert(from.to_owned());
    None
}

#[test]
fn the_modules_form_no_import_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, uses) in server_uses() {
        let module = module_path(&file);
        // The crate root and the binaries sit above every module.
        if module.len() == 1 && ["lib", "main"].contains(&module[0].as_str()) || module[0] == "bin"
        {
            continue;
        }
        let top = &module[0];
        graph
            .entry(top.clone())
            .or_default()
            .extend(uses.into_iter().filter(|m| m != top));
    }
    assert!(graph.len() > 10, "modules not found: {graph:?}");
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let circle = circle_from(&graph, module, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "import circle: {}",
            circle.unwrap().join(" → ")
        );
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
            .into_iter()
            .map(|(m, uses)| (m.to_owned(), uses.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(
        circle_from(&graph, "a", &mut Vec::new(), &mut BTreeSet::new()),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
