//! The module layout as a test: arrows between the top-level modules of `src/` point
//! inward, towards `core`. It reads every `crate::` path (and `super::` path that climbs to
//! the crate root) in the non-test code of `src/` and fails on an import circle between
//! top-level modules, on any arrow out of `core`, on Kubernetes or HTTP crates used in
//! `core`, and on an arrow the table below does not allow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Who may import whom. A new top-level module, or a new arrow, is a decision about the
/// architecture: make it here, and in the README's architecture section.
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("metrics", &[]),
    ("telemetry", &[]),
    ("k8s", &["core"]),
    ("upstream", &["core", "telemetry"]),
    ("sandbox", &["core"]),
    ("mcp", &["core", "upstream", "telemetry"]),
    ("oauth", &["core"]),
    ("controller", &["core", "k8s", "oauth", "metrics"]),
    (
        "dataplane",
        &[
            "core",
            "k8s",
            "mcp",
            "oauth",
            "upstream",
            "metrics",
            "telemetry",
        ],
    ),
    (
        "local",
        &[
            "core",
            "k8s",
            "upstream",
            "dataplane",
            "runtime",
            "sandbox",
            "telemetry",
        ],
    ),
    (
        "runtime",
        &[
            "core",
            "k8s",
            "upstream",
            "controller",
            "dataplane",
            "telemetry",
        ],
    ),
    (
        "cli",
        &["core", "k8s", "controller", "dataplane", "local", "runtime"],
    ),
    ("fuzzing", &["core", "k8s", "upstream", "mcp", "local"]),
];

/// Crates `core` must not use: it knows neither Kubernetes nor HTTP servers or clients.
const BANNED_IN_CORE: &[&str] = &[
    "kube",
    "k8s_openapi",
    "axum",
    "reqwest",
    "hyper",
    "hyper_util",
];

/// One source file: its path under `src/` (with `/` separators) and its text.
type Source = (String, String);

/// Code with comments, string literals and character literals blanked out (byte for
/// byte, newlines kept), so that only code is searched.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some(len) = raw_string_len(rest) {
            blank(&mut out, i, i + len);
            i += len;
        } else if rest[0] == b'"' || rest.starts_with(b"b\"") {
            let mut j = i + if rest[0] == b'"' { 1 } else { 2 };
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{1F}'), not a lifetime ('a).
            let end = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                // `'` is ASCII, so the next character starts right after it.
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + width) == Some(&b'\'')).then_some(width + 2)
            };
            match end {
                Some(len) => {
                    blank(&mut out, i, i + len);
                    i += len;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Length of a raw string literal (`r"…"`, `r#"…"#`, `br#"…"#`) at the start of `s`.
fn raw_string_len(s: &[u8]) -> Option<usize> {
    let start = if s.starts_with(b"br") {
        2
    } else if s.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = s[start..].iter().take_while(|&&c| c == b'#').count();
    if s.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    s[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map(|p| body + p + close.len())
}

/// Stripped code without `#[cfg(test)]` items, and the names of the `#[cfg(test)] mod x;`
/// declarations (whose files are test code).
fn without_test_code(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut out = code.to_string();
    let mut test_mods = Vec::new();
    let mut from = 0;
    while let Some(found) = out[from..].find(ATTR) {
        let start = from + found;
        let b = out.as_bytes();
        let mut i = start + ATTR.len();
        // Further attributes and whitespace before the item.
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b[i..].starts_with(b"#[") {
                i += b[i..].iter().position(|&c| c == b']').map_or(0, |p| p + 1);
            } else {
                break;
            }
        }
        let item = &out[i..];
        let declared = item
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ")
            .strip_prefix("mod ")
            .and_then(|m| {
                let name: String = m
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                m[name.len()..]
                    .trim_start()
                    .starts_with(';')
                    .then_some(name)
            });
        if let Some(name) = declared {
            test_mods.push(name);
        }
        // The item ends at a `;` outside braces or at the brace closing its body.
        let mut depth = 0usize;
        let mut end = b.len();
        for (j, &c) in b.iter().enumerate().skip(i) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        let blanked: String = out[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..end, &blanked);
        from = start + blanked.len();
    }
    (out, test_mods)
}

/// The module path of a file under `src/`: `a/b.rs` and `a/b/mod.rs` are `[a, b]`.
fn module_path(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The top-level modules a file's code names: `crate::x`, `crate::{x, y}`, and `super::`
/// chains that climb to the crate root.
fn references(code: &str, module: &[String]) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let b = code.as_bytes();
    let boundary = |at: usize| {
        at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_' || b[at - 1] == b'$')
    };
    for (at, _) in code.match_indices("crate") {
        if !boundary(at) {
            continue;
        }
        let rest = code[at + 5..].trim_start();
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        out.insert(ident(&group[k..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    for (at, _) in code.match_indices("super") {
        if !boundary(at) || (at >= 2 && &code[at - 2..at] == "::") {
            continue;
        }
        let mut rest = &code[at..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super") {
            match r.trim_start().strip_prefix("::") {
                Some(r) => {
                    climbs += 1;
                    rest = r.trim_start();
                }
                None => break,
            }
        }
        if climbs > 0 && climbs >= module.len() {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// The non-test files: path, module path and stripped code without test items. Files of
/// modules declared `#[cfg(test)] mod x;` are left out.
fn code_files(sources: &[Source]) -> Vec<(String, Vec<String>, String)> {
    let mut test_dirs: Vec<Vec<String>> = Vec::new();
    let mut files = Vec::new();
    for (path, text) in sources {
        let (code, test_mods) = without_test_code(&strip(text));
        let module = module_path(path);
        for name in test_mods {
            let mut child = module.clone();
            child.push(name);
            test_dirs.push(child);
        }
        files.push((path.clone(), module, code));
    }
    files.retain(|(_, module, _)| {
        !module.is_empty() && !test_dirs.iter().any(|t| module.starts_with(t))
    });
    files
}

/// Every problem with the layout of these sources, as sentences.
fn problems(sources: &[Source]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, module, code) in code_files(sources) {
        if module[0] != "core" {
            continue;
        }
        for banned in BANNED_IN_CORE {
            let named = code.match_indices(banned).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = code[at + banned.len()..].trim_start();
                let whole = !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
                whole && (after.starts_with("::") || code[..at].trim_end().ends_with("use"))
            });
            if named {
                out.push(format!(
                    "src/{path} uses {banned}: core knows no Kubernetes and no HTTP"
                ));
            }
        }
    }
    let edges = arrows(sources);
    if let Some(from_core) = edges.get("core") {
        for (target, path) in from_core {
            out.push(format!(
                "src/{path} imports crate::{target}: nothing in core may depend on anything outside core"
            ));
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let via: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} → {} (in src/{})", w[0], w[1], edges[&w[0]][&w[1]]))
            .collect();
        out.push(format!("import circle: {}", via.join(", ")));
    }
    out
}

/// A circle in the module graph, as the modules along it (first = last), if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

/// The arrows between top-level modules: importer → imported → a file that does it.
fn arrows(sources: &[Source]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, module, code) in code_files(sources) {
        let top = &module[0];
        for target in references(&code, &module) {
            if &target != top {
                edges
                    .entry(top.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| path.clone());
            }
        }
    }
    edges
}

fn read_tree(root: &Path) -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root).expect("under src/");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (rel, std::fs::read_to_string(&f).expect("UTF-8 source"))
        })
        .collect()
}

fn src() -> Vec<Source> {
    read_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

fn tree(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn arrows_point_inward_without_a_circle() {
    let found = problems(&src());
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn every_arrow_between_top_level_modules_is_allowed() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, targets) in arrows(&src()) {
        let Some(may) = allowed.get(from.as_str()) else {
            wrong.push(format!(
                "src/{from} is a top-level module the layout table does not know"
            ));
            continue;
        };
        for (to, path) in targets {
            if !may.contains(&to.as_str()) {
                wrong.push(format!(
                    "{from} → {to} (src/{path}) is not an allowed arrow"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The check itself: the circle the catalog once closed through the discovery meta-tools
/// and the upstream client is found, with the files that make it.
#[test]
fn the_check_finds_an_import_circle() {
    let found = problems(&tree(&[
        (
            "lib.rs",
            "pub mod catalog;\npub mod discovery;\npub mod upstream;\n",
        ),
        (
            "catalog/mod.rs",
            "fn f() { crate::discovery::listing(); }\n",
        ),
        ("discovery.rs", "use crate::upstream::ToolResult;\n"),
        (
            "upstream/mod.rs",
            "use crate::{catalog::Tool, secret::Secret};\n",
        ),
        ("secret.rs", "pub struct Secret;\n"),
    ]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("import circle: catalog → discovery"),
        "{found:?}"
    );
    assert!(
        found[0].contains("upstream → catalog (in src/upstream/mod.rs)"),
        "{found:?}"
    );
}

#[test]
fn the_check_finds_arrows_out_of_core_and_banned_crates_in_it() {
    let found = problems(&tree(&[
        ("core/mod.rs", "pub mod server;\n"),
        (
            "core/server.rs",
            "use kube::Api;\nuse crate::upstream::Target;\nfn f() { let _ = super::super::dataplane::x(); }\n",
        ),
        ("core/token.rs", "use axum\n    ::Router;\n"),
        ("upstream/mod.rs", "pub struct Target;\n"),
    ]));
    let text = found.join("\n");
    for needle in [
        "src/core/server.rs uses kube",
        "src/core/token.rs uses axum",
        "imports crate::upstream",
        "imports crate::dataplane",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

/// Test code, comments and strings are not arrows.
#[test]
fn test_code_comments_and_strings_are_not_arrows() {
    let found = problems(&tree(&[
        ("lib.rs", "pub mod core;\n#[cfg(test)]\nmod test_support;\n"),
        (
            "core/mod.rs",
            "//! See [`crate::dataplane`].\n#[cfg(test)]\nmod tests;\nconst A: &str = \"crate::runtime\";\nconst B: &str = r#\"use kube::Api;\"#;\nconst C: char = '\"';\n/* crate::cli */\n#[cfg(test)]\nmod inline {\n    use crate::controller::Context;\n    fn f() { let _ = '{'; }\n}\n#[cfg(test)]\nfn helper() -> crate::local::X { todo!() }\n",
        ),
        (
            "core/tests.rs",
            "use crate::dataplane::Registry;\nuse reqwest::Client;\n",
        ),
        ("test_support.rs", "use crate::dataplane::Registry;\n"),
    ]));
    assert!(found.is_empty(), "{found:?}");
}
