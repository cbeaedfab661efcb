//! Import loops between the top-level modules of a crate, for `tidy`: a module that names
//! `crate::other` depends on `other`; a loop means neither can be read, moved or split without
//! the other (issue 23).
//!
//! Read from the source text, as tidy reads everything: `crate::name` paths and
//! `use crate::{name::…, …}` groups outside comments and outside a closing `#[cfg(test)] mod
//! tests`. Paths through `super::` stay inside one top-level module and do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A dependency of one top-level module on another, and the first place that names it.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

/// The loops among the top-level modules of the crate whose sources are `files` (all under
/// `src`), each as its modules with the place of every edge inside it.
pub(crate) fn module_loops(src: &Path, files: &[(std::path::PathBuf, String)]) -> Vec<String> {
    let module_of = |path: &Path| -> Option<String> {
        let rel = path.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (name != "lib" && name != "main").then(|| name.to_owned())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|(p, _)| module_of(p)).collect();
    let mut edges = Edges::new();
    for (path, text) in files {
        let Some(from) = module_of(path) else {
            continue;
        };
        let body = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        for (n, line) in body.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for to in named_modules(line) {
                if to != from && modules.contains(&to) {
                    let place = format!("{}:{}", path.display(), n + 1);
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(place);
                }
            }
        }
    }
    let mut loops = Vec::new();
    for component in strongly_connected(&modules, &edges) {
        let mut inside = Vec::new();
        for a in &component {
            for (b, at) in edges.get(a).into_iter().flatten() {
                if component.contains(b) {
                    inside.push(format!("{a} → {b} ({at})"));
                }
            }
        }
        loops.push(inside.join("; "));
    }
    loops
}

/// The first segments of the `crate::` paths on `line`, groups included.
fn named_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `keyward_core::…` and the like
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Items at the group's top level: `a::X`, `b`, `c::{…}`.
            let mut depth = 0usize;
            let mut at_item = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_item = true,
                    c if at_item && (c.is_alphanumeric() || c == '_') => {
                        at_item = false;
                        found.push(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Tarjan's strongly connected components with more than one module.
fn strongly_connected(nodes: &BTreeSet<String>, edges: &Edges) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(v: &'a str, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flat_map(BTreeMap::keys) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(w, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in nodes {
        if !state.index.contains_key(v.as_str()) {
            visit(v, &mut state);
        }
    }
    state.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_modules_reads_paths_and_groups() {
        assert_eq!(named_modules("use crate::a::B;"), ["a"]);
        assert_eq!(
            named_modules("use crate::{a::X, b, c::{D, e::F}};"),
            ["a", "b", "c"]
        );
        assert_eq!(
            named_modules("let x = crate::d::f(keyward_core::e::g);"),
            ["d"]
        );
        assert!(named_modules("use super::x;").is_empty());
    }

    #[test]
    fn a_loop_is_found_and_a_chain_is_not() {
        let src = Path::new("src");
        let file = |name: &str, text: &str| (src.join(name), text.to_owned());
        let chain = [
            file("a.rs", "use crate::b::X;"),
            file("b/mod.rs", "use crate::c::Y;"),
            file("c.rs", "//! nothing\n// crate::a in a comment\n"),
        ];
        assert!(module_loops(src, &chain).is_empty());
        let looped = [
            file("a.rs", "use crate::b::X;"),
            file("b/mod.rs", "use crate::c::Y;"),
            file("c.rs", "fn f() { crate::a::g() }"),
            file("lib.rs", "use crate::a;"),
        ];
        let loops = module_loops(src, &looped);
        assert_eq!(loops.len(), 1, "{loops:?}");
        assert!(loops[0].contains("c → a (src/c.rs:1)"), "{loops:?}");
        let tests_only = [
            file("a.rs", "use crate::b::X;"),
            file(
                "b.rs",
                "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
            ),
        ];
        assert!(module_loops(src, &tests_only).is_empty());
    }
}
