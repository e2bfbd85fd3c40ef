//! The source tree's shape, checked: imports between the library's top-level modules run one way
//! (a module uses only those below it in the list in src/lib.rs), no two files import each other
//! in a cycle, production code never uses the test oracle (model::reference), `main.rs` stays a
//! thin shell and no file grows past 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's top-level modules, lowest first; a module may use only lower ranks.
const RANKS: [(&str, u32); 12] = [
    ("error", 0),
    ("fsutil", 1),
    ("rng", 1),
    ("model", 2),
    ("data", 2),
    ("device", 3),
    ("kernels", 4),
    ("engine", 5),
    ("detect", 6),
    ("render", 7),
    ("export", 7),
    ("study", 8),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// The module path of a library file: src/detect/fit.rs → ["detect", "fit"].
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "mod.rs" | "lib.rs" => {}
        f => parts.push(f.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The code of a file without comments and without its unit tests (which may use anything).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out += code;
        out.push('\n');
    }
    out
}

/// Every `crate::a::b...` and `super::x` path in `code`, brace groups (`use super::{a, b::c}`)
/// expanded, as absolute module paths (the longest prefix that is a module of `modules`).
fn references(code: &str, me: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = BTreeSet::new();
    for (start, relative) in [("crate::", false), ("super::", true)] {
        let pat: Vec<char> = start.chars().collect();
        let mut i = 0;
        while i + pat.len() <= chars.len() {
            let hit = chars[i..i + pat.len()] == pat[..] && (i == 0 || !ident(chars[i - 1]));
            if !hit {
                i += 1;
                continue;
            }
            // `super` is the module's parent: a file's folder, a folder's parent.
            let base: Vec<String> = if relative {
                me[..me.len().saturating_sub(1)].to_vec()
            } else {
                Vec::new()
            };
            let mut paths = Vec::new();
            i = use_tree(&chars, i + pat.len(), base, &mut paths);
            for path in paths {
                // The deepest module the path names.
                let mut abs = Vec::new();
                for seg in path {
                    abs.push(seg);
                    if !modules.contains(&abs) {
                        abs.pop();
                        break;
                    }
                }
                if !abs.is_empty() {
                    out.insert(abs);
                }
            }
        }
    }
    out
}

/// Parses a use tree (`a::b::c`, `a::{b, c::d}`, nested) at `i`, appending each full path to
/// `out`; returns where it ends.
fn use_tree(
    chars: &[char],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            i += 1;
            loop {
                i = use_tree(chars, i, path.clone(), out);
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        if i == start {
            out.push(path);
            return i;
        }
        path.push(chars[start..i].iter().collect());
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

struct Tree {
    /// Library module → the modules it references.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn tree() -> Tree {
    let mut paths = Vec::new();
    files(&root().join("src"), "rs", &mut paths);
    paths.retain(|p| {
        let rel = p.strip_prefix(root().join("src")).unwrap();
        !rel.starts_with("cli") && rel != Path::new("main.rs")
    });
    let modules: BTreeSet<Vec<String>> = paths.iter().map(|p| module_of(p)).collect();
    let mut edges = BTreeMap::new();
    for p in &paths {
        let me = module_of(p);
        let refs = references(&code(p), &me, &modules);
        edges.insert(me, refs);
    }
    Tree { edges }
}

fn rank(top: &str) -> u32 {
    RANKS
        .iter()
        .find(|(n, _)| *n == top)
        .unwrap_or_else(|| panic!("src/{top}: a new top-level module needs a rank in RANKS"))
        .1
}

#[test]
fn imports_run_one_way_between_top_level_modules() {
    let t = tree();
    let mut wrong = Vec::new();
    for (from, refs) in &t.edges {
        let Some(top) = from.first() else { continue };
        for r in refs {
            let to = &r[0];
            if to != top && rank(to) >= rank(top) {
                wrong.push(format!("{} uses {}", from.join("::"), r.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_cycles_between_files() {
    let t = tree();
    // A folder's mod.rs and its own files may refer to each other: the mod.rs declares and
    // re-exports them, and they add `impl` blocks to its main type (`impl Engine` in
    // engine/stats.rs). Every other pair of files must not form a cycle.
    let parent_child = |a: &Vec<String>, b: &Vec<String>| {
        (b.len() == a.len() + 1 && b.starts_with(a)) || (a.len() == b.len() + 1 && a.starts_with(b))
    };
    let graph: Graph = t
        .edges
        .iter()
        .map(|(a, refs)| {
            let to = refs
                .iter()
                .filter(|b| *b != a && !parent_child(a, b) && !a.is_empty() && !b.is_empty())
                .filter(|b| t.edges.contains_key(*b))
                .collect();
            (a, to)
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" → "));
    }
}

type Graph<'a> = BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>;

/// A cycle of `g`, by depth-first search for a back edge.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit<'a>(
        n: &'a Vec<String>,
        g: &Graph<'a>,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(n, 1);
        stack.push(n);
        for &m in g.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let i = stack.iter().position(|s| *s == m).unwrap();
                    return Some(stack[i..].iter().map(|s| s.join("::")).collect());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn production_code_never_uses_the_reference_oracle() {
    let t = tree();
    let oracle = vec!["model".to_string(), "reference".to_string()];
    let users: Vec<String> = t
        .edges
        .iter()
        .filter(|(from, refs)| {
            **from != oracle && from.as_slice() != ["model"] && refs.contains(&oracle)
        })
        .map(|(from, _)| from.join("::"))
        .collect();
    assert!(
        users.is_empty(),
        "production modules using the oracle: {users:?}"
    );
}

#[test]
fn files_stay_small_and_main_thin() {
    let mut all = Vec::new();
    for (dir, ext) in [
        ("src", "rs"),
        ("tests", "rs"),
        ("shaders", "wgsl"),
        ("benches", "rs"),
    ] {
        files(&root().join(dir), ext, &mut all);
    }
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    let long: Vec<String> = all
        .iter()
        .filter(|p| lines(p) > 600)
        .map(|p| format!("{} ({} lines)", p.display(), lines(p)))
        .collect();
    assert!(long.is_empty(), "files over 600 lines: {long:?}");
    let main = lines(&root().join("src/main.rs"));
    assert!(
        main < 150,
        "src/main.rs has {main} lines: it only parses and dispatches"
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    // The parser: paths from `crate::` and `super::`, resolved to the deepest module.
    let modules: BTreeSet<Vec<String>> = [
        m("study"),
        m("detect"),
        m("detect::fit"),
        m("detect::score"),
    ]
    .into_iter()
    .collect();
    let refs = references(
        "use crate::study::x;\nuse super::score::{a, b};\nlet v = crate::detect::fit::run();",
        &m("detect::eval"),
        &modules,
    );
    let want: BTreeSet<Vec<String>> = [m("study"), m("detect::score"), m("detect::fit")]
        .into_iter()
        .collect();
    assert_eq!(refs, want);
    // The cycle finder.
    let (a, b, c) = (m("a"), m("b"), m("c"));
    let mut g: Graph = BTreeMap::new();
    g.insert(&a, vec![&b]);
    g.insert(&b, vec![&c]);
    g.insert(&c, vec![]);
    assert_eq!(find_cycle(&g), None);
    g.insert(&c, vec![&a]);
    assert!(find_cycle(&g).is_some());
    // And the real tree has the edges a reader expects.
    let t = tree();
    assert!(t.edges[&m("detect::fit")].contains(&m("engine")));
    assert!(t.edges[&m("kernels::gemm")].contains(&m("kernels::prelude")));
    assert!(
        t.edges[&m("data::demo")].contains(&m("data::idx")),
        "through a brace group"
    );
}

/// Messages to the user go through `say!`/`sayln!` and `out!`/`outln!`, which never panic:
/// `eprintln!` panics when standard error is closed (`lamp train ... 2>&1 | head -1`) and would
/// abandon a training run; `println!` would do the same on standard output.
#[test]
fn no_printing_macro_that_panics() {
    let mut all = Vec::new();
    files(&root().join("src"), "rs", &mut all);
    let banned = ["eprintln!(", "eprint!(", "println!(", "print!("];
    let found: Vec<String> = all
        .iter()
        .flat_map(|p| {
            let code = code(p);
            banned
                .iter()
                .filter(|b| {
                    code.match_indices(*b).any(|(i, _)| {
                        // A whole macro name only (`print!(` inside `eprint!(` is not one).
                        !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                })
                .map(|b| format!("{} uses {b}", p.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(found.is_empty(), "{found:?}");
}
