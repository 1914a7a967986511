//! The kernel's source tree keeps its layers: every `crate::` path a module
//! names points to its own layer or one below, and no two modules import
//! each other, directly or round a cycle — between top folders or between
//! the modules inside them. The layers are the ones
//! `kernel/src/lib.rs` and `docs/architecture.md` describe; a new folder
//! must be given one here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of a module path (`["services", "storage"]`), lowest first.
fn layer(module: &[String]) -> Option<u8> {
    Some(match module.first().map(String::as_str)? {
        "core" => 1,
        "db" | "metrics" | "cluster" => 2,
        "audit" => 3,
        "identity" => 4,
        "services" => 5,
        "plugins" | "runtime" => 6,
        "node" => 7,
        "http" => 8,
        _ => return None,
    })
}

/// The units cycles are checked between, at two sizes: a top folder
/// (`services`), and a module inside one (`services::storage`, `db::migrate`).
fn unit(module: &[String], depth: usize) -> String {
    module
        .iter()
        .take(depth)
        .cloned()
        .collect::<Vec<_>>()
        .join("::")
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/services/storage/mod.rs` → `["services", "storage"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The module paths a file names with `crate::`, comments left out.
fn imports(text: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let path: Vec<String> = rest
                .split("::")
                .map(|segment| {
                    segment
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|segment| !segment.is_empty())
                .collect();
            if !path.is_empty() {
                out.insert(path);
            }
        }
    }
    out
}

#[test]
fn kernel_modules_import_only_their_layer_or_below_and_never_round_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 40, "read {} files", files.len());
    let mut upward = Vec::new();
    let mut unlayered = BTreeSet::new();
    let mut edges: [BTreeMap<String, BTreeSet<String>>; 2] = Default::default();
    for file in &files {
        let module = module_of(&src, file);
        // The crate root and the binary only assemble the layers.
        let Some(own) = layer(&module) else {
            if !module.is_empty() {
                unlayered.insert(module.join("::"));
            }
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text) {
            let Some(theirs) = layer(&target) else {
                unlayered.insert(format!(
                    "{} (named in {})",
                    target.join("::"),
                    file.display()
                ));
                continue;
            };
            if theirs > own {
                upward.push(format!(
                    "{} (layer {own}) imports {} (layer {theirs})",
                    module.join("::"),
                    target.join("::")
                ));
            }
            for (depth, graph) in edges.iter_mut().enumerate() {
                let (from, to) = (unit(&module, depth + 1), unit(&target, depth + 1));
                if from != to {
                    graph.entry(from).or_default().insert(to);
                }
            }
        }
    }
    assert!(
        unlayered.is_empty(),
        "modules with no layer (give them one in layers.rs): {unlayered:#?}"
    );
    assert!(
        upward.is_empty(),
        "imports that point up a layer: {upward:#?}"
    );
    for graph in &edges {
        let cycle = find_cycle(graph);
        assert!(
            cycle.is_none(),
            "an import cycle: {}",
            cycle.unwrap_or_default().join(" -> ")
        );
    }
}

/// One cycle of the graph, if it has any (depth-first, three colours).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == next).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, edges, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut path = Vec::new();
            if let Some(cycle) = visit(node, edges, &mut state, &mut path) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_passes_a_tree() {
    let graph = |pairs: &[(&str, &str)]| {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            edges
                .entry(a.to_string())
                .or_default()
                .insert(b.to_string());
        }
        edges
    };
    assert!(find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_none());
    let cycle = find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    let parsed = imports(
        "use crate::db::{Db, now};\n// crate::http::api\nlet x = crate::core::ids::new_record_id();",
    );
    assert!(parsed.contains(&vec!["db".to_string()]));
    assert!(parsed.contains(&vec![
        "core".to_string(),
        "ids".to_string(),
        "new_record_id".to_string()
    ]));
    assert!(!parsed.iter().any(|p| p[0] == "http"));
}
