//! The architecture invariants of `docs/architecture.md`, checked. Each test
//! reads the repository (Cargo.lock, Cargo.toml files, `server/core/src`) as
//! text, so none needs a build tool or a network.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Crates gantry-core must not reach, even transitively: HTTP, GraphQL and
/// Docker belong to `gantry-api`, `gantry-docker` and the binary.
const FORBIDDEN_IN_CORE: &[&str] = &["axum", "async-graphql", "hyper", "bollard"];

/// The longest a function in core may be, in lines.
const LONGEST_FUNCTION: usize = 150;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Architecture invariant: gantry-core depends on no HTTP, GraphQL or Docker
// crate, directly or transitively.

/// Package name → names of its dependencies, from Cargo.lock (all versions
/// of a name merged, which can only over-report).
fn lock_graph() -> BTreeMap<String, BTreeSet<String>> {
    let lock = read(&repo().join("Cargo.lock"));
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = BTreeSet::new();
        let mut in_deps = false;
        for line in block.lines() {
            let line = line.trim();
            if let Some(value) = line.strip_prefix("name = ") {
                name = Some(value.trim_matches('"').to_owned());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line.starts_with(']') {
                in_deps = false;
            } else if in_deps {
                let entry = line.trim_end_matches(',').trim_matches('"');
                let dep = entry.split(' ').next().unwrap_or_default();
                deps.insert(dep.to_owned());
            }
        }
        let name = name.expect("every Cargo.lock package has a name");
        graph.entry(name).or_default().extend(deps);
    }
    graph
}

#[test]
fn core_depends_on_no_http_graphql_or_docker_crate() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("gantry-core"),
        "Cargo.lock lacks gantry-core"
    );
    // Breadth-first from gantry-core, remembering how each crate was reached.
    let mut reached: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = vec!["gantry-core".to_owned()];
    while let Some(current) = queue.pop() {
        for dep in graph.get(&current).into_iter().flatten() {
            if dep != "gantry-core" && !reached.contains_key(dep) {
                reached.insert(dep.clone(), current.clone());
                queue.push(dep.clone());
            }
        }
    }
    let forbidden = |name: &str| {
        FORBIDDEN_IN_CORE
            .iter()
            .any(|bad| name == *bad || name.starts_with(&format!("{bad}-")))
    };
    let mut violations = Vec::new();
    for name in reached.keys().filter(|name| forbidden(name)) {
        let mut chain = vec![name.clone()];
        while let Some(parent) = reached.get(chain.last().expect("never empty")) {
            chain.push(parent.clone());
        }
        chain.reverse();
        violations.push(chain.join(" -> "));
    }
    assert!(
        violations.is_empty(),
        "gantry-core must not depend on {FORBIDDEN_IN_CORE:?}; it reaches:\n{}",
        violations.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Reading Rust source as text.

/// `source` with comments and the contents of string and char literals
/// blanked out (newlines kept), so braces and paths in them are not code.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string, r"…" or r#"…"#; `r#ident` is a raw identifier.
            let hashes = chars[i + 1..].iter().take_while(|ch| **ch == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closes = |at: usize| {
                chars[at] == '"' && (1..=hashes).all(|n| chars.get(at + n) == Some(&'#'))
            };
            let mut end = i + 2 + hashes;
            while end < chars.len() && !closes(end) {
                end += 1;
            }
            out.push('"');
            for &ch in &chars[i + 1..end.min(chars.len())] {
                blank(&mut out, ch);
            }
            out.push('"');
            i = end + 1 + hashes;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            let mut j = i + 1;
            if chars[j] == '\\' {
                j += 1;
            }
            j += 1;
            while chars[j] != '\'' {
                j += 1;
            }
            out.push_str(&" ".repeat(j - i + 1));
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Whether the `'` at `i` opens a char literal (`'x'`, `'\n'`, `'\u{1F}'`)
/// rather than a lifetime (`'a`, `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// The module a file of core defines: `ops::exec` for `src/ops/exec.rs`,
/// `ops` for `src/ops/mod.rs`, `` for `src/lib.rs`.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(core_src()).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach
/// anywhere, and `use super::*` is not a dependency).
fn non_test_code(file: &Path) -> String {
    let code = code_only(&read(file));
    match code.find("#[cfg(test)]\nmod tests") {
        Some(index) => code[..index].to_owned(),
        None => code,
    }
}

// ---------------------------------------------------------------------------
// Architecture invariant: no two modules of gantry-core import each other,
// directly or around a loop.

/// Module → the modules it names (`crate::…`, `super::…`, `self::…` paths
/// and `mod` declarations), from the source of core.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(&core_src());
    let modules: BTreeSet<String> = files.iter().map(|file| module_of(file)).collect();
    let resolve = |segments: &[&str]| -> Option<String> {
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|candidate| modules.contains(candidate))
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut root_items = Vec::new();
    for file in &files {
        let module = module_of(file);
        if module.is_empty() {
            continue; // lib.rs declares and re-exports; it is not a module
        }
        let own: Vec<&str> = module.split("::").collect();
        let mut edges = BTreeSet::new();
        for path in paths_in(&non_test_code(file)) {
            let segments: Vec<&str> = path.split("::").collect();
            let absolute: Vec<&str> = match segments[0] {
                "crate" => segments[1..].to_vec(),
                "super" => own[..own.len() - 1]
                    .iter()
                    .chain(&segments[1..])
                    .copied()
                    .collect(),
                "self" => own.iter().chain(&segments[1..]).copied().collect(),
                "mod" => own.iter().chain(&segments[1..]).copied().collect(),
                _ => continue,
            };
            match resolve(&absolute) {
                Some(target) if target != module => {
                    edges.insert(target);
                }
                Some(_) => {}
                None if segments[0] == "crate" => root_items.push(format!(
                    "{}: crate::{} is a re-export of lib.rs; import it from its module",
                    module,
                    absolute.join("::")
                )),
                None => {}
            }
        }
        graph.insert(module, edges);
    }
    assert!(root_items.is_empty(), "{}", root_items.join("\n"));
    graph
}

/// The paths a piece of code names: `crate::a::b`, each item of
/// `crate::{a, b::c}`, `super::x`, `self::x`, and `mod x;` as `mod::x`.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = code.split(|c: char| c.is_whitespace()).collect();
    for pair in words.windows(2) {
        if pair[0] == "mod" && pair[1].ends_with(';') {
            out.push(format!("mod::{}", pair[1].trim_end_matches(';')));
        }
    }
    for start in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(index) = rest.find(start) {
            let before = rest[..index].chars().last();
            rest = &rest[index..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                rest = &rest[start.len()..];
                continue;
            }
            let head = &start[..start.len() - 2];
            let tail = &rest[start.len()..];
            if let Some(group) = tail.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let item = item.trim();
                    if !item.is_empty() && item != "self" {
                        out.push(format!("{head}::{}", path_prefix(item)));
                    }
                }
            } else {
                out.push(format!("{head}::{}", path_prefix(tail)));
            }
            rest = &rest[start.len()..];
        }
    }
    out
}

/// The leading `a::b::c` of `text`.
fn path_prefix(text: &str) -> String {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches(':').to_owned()
}

/// The cycles of a graph (its strongly connected components of more than
/// one node), each as `a -> b -> … -> a`.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // Nodes that reach each other are in one component; for a graph of a
    // few dozen nodes, pairwise reachability is plenty fast.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(node) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|node| (node, reach(node))).collect();
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for node in graph.keys() {
        if reported.contains(node) || !reachable[node].contains(node) {
            continue;
        }
        // Walk one loop through `node`, for the message.
        let mut path = vec![node.clone()];
        let mut current = node.clone();
        loop {
            let next = graph[&current]
                .iter()
                .find(|next| *next == node || reachable[*next].contains(node))
                .expect("a node on a cycle has a successor on it")
                .clone();
            path.push(next.clone());
            if next == *node || path.len() > graph.len() + 1 {
                break;
            }
            current = next;
        }
        for member in graph.keys() {
            if reachable[node].contains(member) && reachable[member].contains(node) {
                reported.insert(member.clone());
            }
        }
        out.push(path.join(" -> "));
    }
    out
}

#[test]
fn core_modules_import_each_other_in_one_direction_only() {
    let graph = module_graph();
    assert!(
        graph.contains_key("solver") && graph["ops::exec"].contains("context"),
        "the scan found no imports; is it reading the right files? {graph:?}"
    );
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "modules of gantry-core import each other (move the shared part down, \
         e.g. into `value`, `context` or `eval`):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_loops() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(node, next)| {
        (
            node.to_owned(),
            next.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect();
    assert_eq!(cycles(&graph), ["a -> b -> c -> a"]);
    let paths = paths_in("use crate::{a::B, c};\nuse super::d::E;\nmod f;\nfoo_crate::x();");
    assert_eq!(paths, ["mod::f", "crate::a::B", "crate::c", "super::d::E"]);
    let code = code_only("let s = \"crate::x {\"; // crate::y {\nlet c = '{'; let l: &'a str;");
    assert!(!code.contains("crate::") && !code.contains('{'), "{code}");
    assert!(code.contains("&'a str"), "{code}");
}

// ---------------------------------------------------------------------------
// Architecture invariant: no function in gantry-core is longer than
// LONGEST_FUNCTION lines (split it along what it does).

/// `(lines, name, file:line)` of every function with a body.
fn functions(file: &Path) -> Vec<(usize, String, String)> {
    let code = code_only(&read(file));
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(offset) = code[search..].find("fn ") {
        let start = search + offset;
        search = start + 3;
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let name: String = code[start + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !word_start || name.is_empty() {
            continue;
        }
        // The body starts at the first `{` before any `;` (a declaration
        // without a body ends at `;`).
        let Some(open) = code[start..].find(['{', ';']).map(|at| start + at) else {
            continue;
        };
        if bytes[open] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut close = open;
        for (at, byte) in bytes.iter().enumerate().skip(open) {
            match byte {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = at;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first_line = code[..start].matches('\n').count() + 1;
        let lines = code[start..=close].matches('\n').count() + 1;
        let relative = file.strip_prefix(core_src()).unwrap().display().to_string();
        out.push((lines, name, format!("{relative}:{first_line}")));
    }
    out
}

#[test]
fn no_function_in_core_is_longer_than_the_limit() {
    let all: Vec<_> = rust_files(&core_src())
        .iter()
        .flat_map(|file| functions(file))
        .collect();
    assert!(
        all.len() > 100,
        "the scan found too few functions: {}",
        all.len()
    );
    let long: Vec<String> = all
        .iter()
        .filter(|(lines, _, _)| *lines > LONGEST_FUNCTION)
        .map(|(lines, name, at)| format!("{at} fn {name}: {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "functions longer than {LONGEST_FUNCTION} lines in gantry-core:\n{}",
        long.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Architecture invariant: core's public surface is what other crates use.
// Every `pub mod` of lib.rs is named by another crate; the rest is private
// (items inside are `pub(crate)` where no other crate needs them, which the
// `unreachable_pub` lint enforces).

#[test]
fn every_public_module_of_core_is_used_by_another_crate() {
    let lib = code_only(&read(&core_src().join("lib.rs")));
    let public: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|name| name.trim_end_matches(';'))
        .collect();
    assert!(!public.is_empty());
    let mut users = String::new();
    let crates = std::fs::read_dir(repo().join("server"))
        .expect("server/ lists the crates")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir() && !path.ends_with("core"));
    for krate in crates {
        for dir in ["src", "tests"] {
            let dir = krate.join(dir);
            if dir.is_dir() {
                for file in rust_files(&dir) {
                    users.push_str(&code_only(&read(&file)));
                }
            }
        }
    }
    let mut imported: BTreeSet<String> = BTreeSet::new();
    for path in paths_in(&users.replace("gantry_core::", "crate::")) {
        if let Some(rest) = path.strip_prefix("crate::") {
            imported.insert(rest.split("::").next().unwrap_or_default().to_owned());
        }
    }
    let unused: Vec<&&str> = public
        .iter()
        .filter(|name| !imported.contains(**name))
        .collect();
    assert!(
        unused.is_empty(),
        "public modules of gantry-core that no other crate uses (make them private): {unused:?}"
    );
}

// ---------------------------------------------------------------------------
// Architecture invariant: FakeRuntime and MemoryStore are test doubles,
// compiled only for tests or with the `testing` feature, which only
// dev-dependencies turn on, so they are not in the release binary.

#[test]
fn test_doubles_stay_out_of_release_builds() {
    let gate = "#[cfg(any(test, feature = \"testing\"))]";
    // The attribute lines right above an item.
    let attributes_of = |source: &str, item: &str| -> Vec<String> {
        let lines: Vec<&str> = source.lines().collect();
        let at = lines
            .iter()
            .position(|line| line.starts_with(item))
            .unwrap_or_else(|| panic!("{item} not found"));
        lines[..at]
            .iter()
            .rev()
            .take_while(|line| line.starts_with("#["))
            .map(|line| line.to_string())
            .collect()
    };
    for (file, items) in [
        ("lib.rs", &["pub mod fake;"][..]),
        (
            "store.rs",
            &[
                "pub struct MemoryStore",
                "impl Default for MemoryStore",
                "impl Drop for MemoryStore",
                "impl MemoryStore",
                "impl Store for MemoryStore",
            ][..],
        ),
    ] {
        let source = read(&core_src().join(file));
        for item in items {
            assert!(
                attributes_of(&source, item).iter().any(|line| line == gate),
                "{file}: `{item}` must be behind {gate}"
            );
        }
    }
    let workspace = read(&repo().join("Cargo.toml"));
    let core_line = workspace
        .lines()
        .find(|line| line.starts_with("gantry-core"))
        .expect("the workspace declares gantry-core");
    assert!(
        !core_line.contains("features"),
        "[workspace.dependencies] must not enable core features: {core_line}"
    );
    for krate in ["api", "docker", "native", "cli", "store", "xtask", "core"] {
        let manifest = read(&repo().join("server").join(krate).join("Cargo.toml"));
        let mut section = "";
        for line in manifest.lines() {
            if line.starts_with('[') {
                section = line;
            } else if section == "[dependencies]"
                && line.starts_with("gantry-core")
                && line.contains("testing")
            {
                panic!("server/{krate}: only [dev-dependencies] may enable gantry-core's testing feature");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The code map in docs/architecture.md lists every module of core from the
// bottom up: a module uses only modules listed above it.

#[test]
fn the_code_map_lists_every_core_module_in_layer_order() {
    let docs = read(&repo().join("docs/architecture.md"));
    let listed: Vec<String> = docs
        .lines()
        .skip_while(|line| !line.starts_with("### Modules of gantry-core"))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| row.split_once("` |").map(|(module, _)| module.to_owned()))
        .collect();
    let graph = module_graph();
    let missing: Vec<&String> = graph
        .keys()
        .filter(|module| !listed.contains(module))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md's code map lacks these gantry-core modules: {missing:?}"
    );
    let position = |module: &String| listed.iter().position(|listed| listed == module);
    let mut upward = Vec::new();
    for (module, uses) in &graph {
        for used in uses {
            if position(used) > position(module) {
                upward.push(format!("{module} uses {used}, listed below it"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "docs/architecture.md lists gantry-core's modules from the bottom up, but:\n{}",
        upward.join("\n")
    );
}
