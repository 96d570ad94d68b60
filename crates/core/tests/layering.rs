//! The modules of both crates depend on each other downward only: no import
//! cycle among the top-level modules of `crates/core` or of the pgrx glue.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// The top-level modules named after `crate::` in `text`, also inside
/// `use crate::{a, b::c}` groups.
fn references(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 {
                    item.push(c);
                }
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Module → the modules it uses, for the crate whose sources are in `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "tests" {
            continue;
        }
        let uses = references(&std::fs::read_to_string(&file).unwrap());
        graph.entry(module.clone()).or_default().extend(uses.into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn references_are_found_in_paths_and_groups() {
    let found = references("use crate::a::B;\nuse crate::{b, c::{D, E}, d as e};\nlet x = crate::f::g();");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["a", "b", "c", "d", "f"]);
    let mut g = BTreeMap::new();
    g.insert("x".to_owned(), BTreeSet::from(["y".to_owned()]));
    g.insert("y".to_owned(), BTreeSet::from(["x".to_owned()]));
    assert_eq!(cycle(&g), Some(vec!["x".to_owned(), "y".to_owned(), "x".to_owned()]));
}

#[test]
fn no_import_cycles() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let glue = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../src");
    for src in [core, glue] {
        let graph = graph(&src);
        assert!(graph.len() > 5, "no modules found in {}", src.display());
        if let Some(found) = cycle(&graph) {
            panic!("import cycle in {}: {}", src.display(), found.join(" → "));
        }
    }
}
