//! The library's top-level modules import each other in one direction only: no module reaches,
//! through `crate::` paths, one that reaches it back. The modules are read from `src/` (the
//! binary in `src/bin` and `lib.rs` aside); a cycle fails the test with its modules and the
//! `file:line` of each edge in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod common;
use common::rust_files;

/// An edge `from -> to` between top-level modules, and where it is written (`file:line`).
#[derive(Clone, Debug)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

/// The top-level modules of `src`: its `.rs` files and folders, without `lib.rs` and `bin`.
fn modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src/ is readable") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "bin" {
                out.insert(name);
            }
        } else if let Some(stem) = name.strip_suffix(".rs")
            && stem != "lib"
        {
            out.insert(stem.to_string());
        }
    }
    out
}

/// The text with every `//` comment (doc comments included) blanked out, line breaks kept.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first segments of the `crate::` paths of `code` (comments stripped), each with the
/// 1-based line where it is written: `crate::a::b` gives `a`, `crate::{a, b::{c, d}}` gives
/// `a` and `b`.
fn crate_references(code: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let needle: Vec<char> = "crate::".chars().collect();
    let line_at = |i: usize| 1 + chars[..i].iter().filter(|&&c| c == '\n').count();
    let ident_at = |mut i: usize| {
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        (chars[start..i].iter().collect::<String>(), i)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= chars.len() {
        let preceded = i > 0 && is_ident(chars[i - 1]);
        if preceded || chars[i..i + needle.len()] != needle[..] {
            i += 1;
            continue;
        }
        let mut j = i + needle.len();
        if j < chars.len() && chars[j] == '{' {
            // A group: the names that start a path at its outer level.
            let mut depth = 0usize;
            let mut expect_name = true;
            while j < chars.len() {
                let c = chars[j];
                match c {
                    '{' => {
                        depth += 1;
                        expect_name = depth == 1;
                        j += 1;
                    }
                    '}' => {
                        depth -= 1;
                        j += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' => {
                        expect_name = depth == 1;
                        j += 1;
                    }
                    c if is_ident(c) => {
                        let (name, end) = ident_at(j);
                        if expect_name && depth == 1 {
                            out.push((name, line_at(j)));
                        }
                        expect_name = false;
                        j = end;
                    }
                    _ => j += 1,
                }
            }
        } else {
            let (name, end) = ident_at(j);
            if !name.is_empty() {
                out.push((name, line_at(j)));
            }
            j = end;
        }
        i = j.max(i + 1);
    }
    out
}

/// Every edge between distinct top-level modules written in `src`.
fn edges(src: &Path) -> (BTreeSet<String>, Vec<Edge>) {
    let mods = modules(src);
    let mut files = Vec::new();
    rust_files(src, &["bin"], &mut files);
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let from = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if from == "lib" {
            continue;
        }
        let code = strip_comments(&std::fs::read_to_string(&file).unwrap());
        for (to, line) in crate_references(&code) {
            if to != from && mods.contains(&to) {
                out.push(Edge {
                    from: from.clone(),
                    to,
                    at: format!("src/{}:{line}", rel.display()),
                });
            }
        }
    }
    (mods, out)
}

/// The strongly connected components of more than one node (Tarjan), each sorted.
fn cycles(nodes: &BTreeSet<String>, edges: &[(String, String)]) -> Vec<Vec<String>> {
    struct State<'a> {
        next: BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        let next: Vec<&str> = s.next.get(v).into_iter().flatten().copied().collect();
        for w in next {
            if !s.index.contains_key(w) {
                visit(w, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for (a, b) in edges {
        if a != b {
            s.next.entry(a.as_str()).or_default().insert(b.as_str());
        }
    }
    for v in nodes {
        if !s.index.contains_key(v.as_str()) {
            visit(v, &mut s);
        }
    }
    s.out
}

#[test]
fn top_level_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (mods, found) = edges(&src);
    // The scan sees the crate: a few modules that are known to import others.
    assert!(mods.contains("score") && mods.contains("nn"), "{mods:?}");
    assert!(
        found.iter().any(|e| e.from == "train" && e.to == "model"),
        "the scan found no edge train -> model"
    );
    let pairs: Vec<(String, String)> = found
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    let comps = cycles(&mods, &pairs);
    let mut report = String::new();
    for comp in &comps {
        report += &format!("cycle among {{{}}}:\n", comp.join(", "));
        for e in &found {
            if comp.contains(&e.from) && comp.contains(&e.to) {
                report += &format!("  {} -> {}  ({})\n", e.from, e.to, e.at);
            }
        }
    }
    assert!(
        comps.is_empty(),
        "top-level modules import each other:\n{report}"
    );
}

#[test]
fn the_detector_finds_a_hand_made_cycle() {
    let nodes: BTreeSet<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
    let pairs: Vec<(String, String)> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .into();
    assert_eq!(cycles(&nodes, &pairs), vec![vec!["a", "b", "c"]]);
    // Without the edge back, no cycle.
    assert!(cycles(&nodes, &pairs[1..]).is_empty());
    // Two cycles, found apart.
    let two: Vec<(String, String)> = [("a", "b"), ("b", "a"), ("d", "e"), ("e", "d")]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .into();
    assert_eq!(cycles(&nodes, &two), vec![vec!["a", "b"], vec!["d", "e"]]);
}

#[test]
fn the_scan_reads_paths_and_groups_not_comments() {
    let code = strip_comments(
        "use crate::alpha::X;\n\
         use crate::{beta, gamma::{delta, Y}};\n\
         // crate::hidden\n\
         let v = $crate::kernels::f(); /// crate::also_hidden\n\
         use crate::{\n    eps::Z,\n    zeta,\n};\n\
         let w = notcrate::theta;",
    );
    let refs = crate_references(&code);
    let expected = [
        ("alpha", 1),
        ("beta", 2),
        ("gamma", 2),
        ("kernels", 4),
        ("eps", 6),
        ("zeta", 7),
    ];
    assert_eq!(
        refs,
        expected.map(|(n, l)| (n.to_string(), l)).to_vec(),
        "{code}"
    );
}
