//! The module layering stated in src/lib.rs, checked by reading the source: no import cycle
//! between the top-level modules of src/, and the generic layers import no resource module.
//! Plain tests, no database.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One reference `from -> to` between top-level modules, and the file it was found in.
struct Edge {
    from: String,
    to: String,
    file: PathBuf,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `pub mod X;` lines of src/lib.rs.
fn modules() -> Vec<String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("read src/lib.rs");
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ")?.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

fn rs_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read dir") {
            rs_files(&entry.expect("dir entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The first path segment after each `crate::`: `crate::X…`, or each item of a `crate::{X, Y::…}` group.
fn crate_refs(code: &str) -> Vec<String> {
    let ident = |s: &str| {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let mut refs = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // part of a longer name, e.g. `other_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            refs.push(ident(rest));
            continue;
        };
        // Split the group at its top-level commas, up to the matching brace.
        let (mut depth, mut start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    refs.push(ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    refs.push(ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    refs
}

fn edges() -> Vec<Edge> {
    let modules = modules();
    let mut edges = Vec::new();
    for from in &modules {
        let (dir, file) = (src().join(from), src().join(format!("{from}.rs")));
        let mut files = Vec::new();
        rs_files(if dir.is_dir() { &dir } else { &file }, &mut files);
        assert!(!files.is_empty(), "no source found for module `{from}`");
        for file in files {
            let text = fs::read_to_string(&file).expect("read source file");
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            for to in crate_refs(&code.join("\n")) {
                if &to != from && modules.contains(&to) {
                    edges.push(Edge {
                        from: from.clone(),
                        to,
                        file: file.clone(),
                    });
                }
            }
        }
    }
    edges
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules()
        .into_iter()
        .map(|m| (m, BTreeSet::new()))
        .collect();
    for e in edges() {
        graph.get_mut(&e.from).expect("known module").insert(e.to);
    }
    graph
}

/// Depth-first search; returns the first cycle found as a path `a, b, …, a`.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn parser_finds_edges() {
    let graph = graph();
    assert!(
        graph["refunds"].contains("domain"),
        "expected an edge refunds -> domain; the import parser is broken. Graph: {graph:#?}"
    );
}

#[test]
fn top_level_modules_import_one_way() {
    let graph = graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between top-level modules: {}\nGraph: {graph:#?}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn generic_layers_import_no_resource() {
    let allowed: BTreeMap<&str, &[&str]> = [
        ("domain", &[][..]),
        ("polar", &["domain"][..]),
        ("http", &["domain", "polar"][..]),
        ("config", &[][..]),
        ("telemetry", &[][..]),
    ]
    .into();
    let offences: Vec<String> = edges()
        .into_iter()
        .filter(|e| {
            allowed
                .get(e.from.as_str())
                .is_some_and(|ok| !ok.contains(&e.to.as_str()))
        })
        .map(|e| {
            let file = e
                .file
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(&e.file)
                .display()
                .to_string();
            format!(
                "{file}: `{}` imports crate::{} (allowed: {:?})",
                e.from,
                e.to,
                allowed[e.from.as_str()]
            )
        })
        .collect();
    assert!(
        offences.is_empty(),
        "generic layers import beyond their allowance:\n{}",
        offences.join("\n")
    );
}
