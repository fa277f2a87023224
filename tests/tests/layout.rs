//! The layout holds: no file of a crate imports, directly or through others, a file that
//! imports it back (data flows one way: plan → passes → architecture → RTL → models → host).
//! Edges are `crate::` and `super::` paths in the code (unit-test modules aside); a `mod`
//! declaration is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use partita_tests::{repo, tree};

/// Module path of a source file relative to `src/`: `a/b.rs` → [a, b], `a/mod.rs` → [a].
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Paths that follow `prefix::` in `code`, with `{a, b::c}` groups expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let pat = format!("{prefix}::");
    let mut rest = code;
    while let Some(i) = rest.find(&pat) {
        let before = rest[..i].chars().last();
        rest = &rest[i + pat.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        parse_path(rest, Vec::new(), &mut out);
    }
    out
}

fn parse_path(s: &str, mut base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        // Split the group at top-level commas.
        let (mut depth, mut start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    parse_path(&group[start..i], base.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parse_path(&group[start..i], base.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let ident: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        out.push(base);
        return;
    }
    base.push(ident.clone());
    let rest = &s[ident.len()..];
    match rest.strip_prefix("::") {
        Some(r) => parse_path(r, base, out),
        None => out.push(base),
    }
}

#[test]
fn no_import_circles() {
    let mut total = 0;
    for krate in ["hdl", "codegen", "sim", "host"] {
        let src = repo().join(krate).join("src");
        let files: Vec<_> = tree(&src)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
            .collect();
        let modules: BTreeMap<Vec<String>, String> = files
            .iter()
            .map(|f| (module_of(f), f.display().to_string()))
            .collect();
        // The file a path names: the longest prefix that is a module.
        let resolve = |path: &[String]| -> Option<&String> {
            (0..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
        };
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let text = std::fs::read_to_string(src.join(f)).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let me = module_of(f);
            let name = f.display().to_string();
            let mut targets: Vec<Vec<String>> = paths_after(code, "crate");
            let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
            for p in paths_after(code, "super") {
                targets.push(parent.iter().cloned().chain(p).collect());
            }
            for t in targets {
                if let Some(to) = resolve(&t) {
                    if *to != name {
                        edges.entry(name.clone()).or_default().insert(to.clone());
                    }
                }
            }
        }
        // Depth-first search for a back edge.
        fn visit(
            n: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(i) = stack.iter().position(|s| s == n) {
                let mut cycle = stack[i..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            if done.contains(n) {
                return None;
            }
            stack.push(n.to_string());
            for m in edges.get(n).into_iter().flatten() {
                if let Some(c) = visit(m, edges, stack, done) {
                    return Some(c);
                }
            }
            stack.pop();
            done.insert(n.to_string());
            None
        }
        let mut done = BTreeSet::new();
        for f in edges.keys() {
            if let Some(cycle) = visit(f, &edges, &mut Vec::new(), &mut done) {
                panic!("{krate}: import circle {}", cycle.join(" -> "));
            }
        }
        total += edges.values().map(BTreeSet::len).sum::<usize>();
    }
    assert!(total > 50, "only {total} imports found; the scan is broken");
}

/// The scan sees a circle when there is one (negative control).
#[test]
fn circle_scan_sees_paths() {
    let p = paths_after(
        "use crate::emit::{verilog::{a, b}, top};\nlet x = super::y::z;",
        "crate",
    );
    assert_eq!(
        p,
        vec![
            vec!["emit", "verilog", "a"],
            vec!["emit", "verilog", "b"],
            vec!["emit", "top"]
        ]
        .into_iter()
        .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    assert_eq!(paths_after("let x = super::y::z;", "super")[0], ["y", "z"]);
}
