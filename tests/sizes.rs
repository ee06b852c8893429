//! One concept per file and per function, measured: no library file (`src/`, `python/src/`) over
//! 800 lines, no file of the binary (`src/bin/`) over 400, and no function over 120 lines
//! (from its `fn` line to its closing brace) in the sources, the tests and the benches. A
//! function may be longer only where the comment block just above it says why, in a line that
//! holds `longer than 120 lines because`. The failure lists every offender with `file:line`.

use std::path::{Path, PathBuf};

mod common;
use common::rust_files;

const LIBRARY_FILE: usize = 800;
const BINARY_FILE: usize = 400;
const FUNCTION: usize = 120;
const EXCUSE: &str = "longer than 120 lines because";

/// The source with comments, string literals (plain, byte and raw) and character literals
/// blanked to spaces, line breaks kept: braces inside them are not code.
fn code_only(src: &str) -> Vec<u8> {
    let s = src.as_bytes();
    let mut out = s.to_vec();
    let blank = |out: &mut Vec<u8>, a: usize, b: usize| {
        for c in &mut out[a..b.min(s.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(s.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = find(s, i + 2, b"*/").map_or(s.len(), |p| p + 2);
            blank(&mut out, i, end);
            i = end;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br"))
            && (i == 0 || !ident(s[i - 1]))
        {
            // A raw string: r"…", r#"…"#, br"…", br#"…"#.
            let start = if rest[0] == b'b' { i + 2 } else { i + 1 };
            let hashes = s[start..].iter().take_while(|&&c| c == b'#').count();
            if s.get(start + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let end = find(s, start + hashes + 1, &close).map_or(s.len(), |p| p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < s.len() && s[j] != b'"' {
                j += if s[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{..}', '{'); a lifetime ('a) is left alone.
            let len = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(n) => {
                    blank(&mut out, i, i + n);
                    i += n;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    (from..s.len().saturating_sub(needle.len() - 1)).find(|&p| s[p..].starts_with(needle))
}

/// Every function with a body: its name, first line and length in lines (1-based lines).
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(src);
    let line_of = |p: usize| 1 + code[..p].iter().filter(|&&c| c == b'\n').count();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = find(&code, i, b"fn ") {
        i = p + 3;
        if p > 0 && ident(code[p - 1]) {
            continue;
        }
        let name: String = code[i..]
            .iter()
            .skip_while(|c| c.is_ascii_whitespace())
            .take_while(|&&c| ident(c))
            .map(|&c| c as char)
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` before any `;` (a declaration has none).
        let Some(open) = code[i..].iter().position(|&c| c == b'{' || c == b';') else {
            break;
        };
        let open = i + open;
        if code[open] == b';' {
            continue;
        }
        let mut depth = 0usize;
        let mut close = open;
        for (k, &c) in code[open..].iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = line_of(p);
        out.push((name, first, line_of(close) - first + 1));
    }
    out
}

/// Whether the comment and attribute lines just above line `first` (1-based) excuse its length.
fn excused(lines: &[&str], first: usize) -> bool {
    lines[..first - 1]
        .iter()
        .rev()
        .take_while(|l| {
            let t = l.trim_start();
            t.starts_with("//") || t.starts_with("#[")
        })
        .any(|l| l.contains(EXCUSE))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        rust_files(&root().join(d), &[], &mut out);
    }
    out
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn no_library_file_over_800_lines_and_no_binary_file_over_400() {
    let mut over = Vec::new();
    for path in files(&["src", "python/src"]) {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        let binary = path.starts_with(root().join("src/bin"));
        let limit = if binary { BINARY_FILE } else { LIBRARY_FILE };
        if lines > limit {
            over.push(format!("{}: {lines} lines (limit {limit})", shown(&path)));
        }
    }
    assert!(
        over.is_empty(),
        "files over their limit:\n{}",
        over.join("\n")
    );
}

#[test]
fn no_function_over_120_lines() {
    let mut over = Vec::new();
    for path in files(&["src", "python/src", "tests", "benches"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (name, first, len) in functions(&text) {
            if len > FUNCTION && !excused(&lines, first) {
                over.push(format!("{}:{first}: fn {name}, {len} lines", shown(&path)));
            }
        }
    }
    assert!(
        over.is_empty(),
        "functions over {FUNCTION} lines (say why above one that must be, \"{EXCUSE} …\"):\n{}",
        over.join("\n")
    );
}

#[test]
fn the_measure_sees_functions_through_strings_comments_and_literals() {
    // The checker itself, on a source whose braces hide in strings, comments and literals.
    let src = "fn a() {\n    let s = \"}}\";\n    let r = r#\"{\"#;\n    // }\n    let c = '}';\n    \
               let l: &'static str = \"x\";\n}\n\nfn decl();\n\nfn b<'a>(x: &'a str) -> &'a str {\n    \
               /* { */ x\n}\n";
    let f = functions(src);
    assert_eq!(
        f,
        vec![("a".to_string(), 1, 7), ("b".to_string(), 11, 3)],
        "{f:?}"
    );
    let lines: Vec<&str> = "// it is longer than 120 lines because X\n#[test]\nfn c() {}\n"
        .lines()
        .collect();
    assert!(excused(&lines, 3));
    assert!(!excused(&["fn d() {}"], 1));
}
