//! Bundling the page's JavaScript modules into one script, at compile time
//! (the crate's build script includes this file), so the browser loads one
//! file instead of a waterfall of module requests.
//!
//! The page's modules keep to a small subset of module syntax, which this
//! bundler checks and refuses to guess past: one-line
//! `import { a, b } from './x.js';` or `import * as x from './x.js';` at the
//! start of a line, and `export` only in front of a `function`,
//! `async function`, `class` or `const` declaration. Each module becomes a
//! function called once, in dependency order, that returns its exports;
//! imports become `const` bindings of those. Lines keep their numbers
//! within each module, so a stack trace still points at the right line.
//!
//! The page served by the real server then loads `bundle.js`; the module
//! files stay as they are for the unit tests and the fixture server.

use std::collections::BTreeSet;

/// One import statement: the bindings it makes and the module it names.
#[derive(Debug, PartialEq, Eq)]
enum Import {
    /// `import * as name from './file';`
    Namespace { name: String, file: String },
    /// `import { a, b } from './file';`
    Named { names: Vec<String>, file: String },
}

impl Import {
    fn file(&self) -> &str {
        match self {
            Import::Namespace { file, .. } | Import::Named { file, .. } => file,
        }
    }
}

/// A module, parsed: its lines with imports replaced and `export` removed,
/// what it imports and what it exports.
struct Parsed {
    lines: Vec<String>,
    imports: Vec<Import>,
    exports: Vec<String>,
}

/// Bundles `entry` and every module it imports (transitively) into one
/// script; `read` gives a module's source by file name. Errors name the
/// file and line.
pub fn bundle(
    entry: &str,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut order = Vec::new();
    visit(
        entry,
        read,
        &mut Vec::new(),
        &mut BTreeSet::new(),
        &mut order,
    )?;
    let mut out = String::from(
        "// The page's modules in one script, made by the scorch build (web/src/bundle.rs).\n",
    );
    for (file, parsed) in &order {
        let exported = parsed.exports.join(", ");
        let result = if file == entry {
            "(() => {".to_string()
        } else {
            format!("const {} = (() => {{", binding(file))
        };
        out.push_str(&format!("// ---- {file}\n{result}\n"));
        for line in &parsed.lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("return {{ {exported} }};\n}})();\n"));
    }
    Ok(out)
}

/// Parses `file` and, first, the modules it imports, appending them to
/// `order` after their own imports.
fn visit(
    file: &str,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    order: &mut Vec<(String, Parsed)>,
) -> Result<(), String> {
    if done.contains(file) {
        return Ok(());
    }
    if path.iter().any(|p| p == file) {
        return Err(format!(
            "the page's modules import each other in a cycle ({} -> {file}): the bundler needs an order",
            path.join(" -> ")
        ));
    }
    let source = read(file)?;
    let parsed = parse(file, &source)?;
    path.push(file.to_string());
    for import in &parsed.imports {
        visit(import.file(), read, path, done, order)?;
    }
    path.pop();
    done.insert(file.to_string());
    order.push((file.to_string(), parsed));
    Ok(())
}

/// The name a module's exports are bound to in the bundle.
fn binding(file: &str) -> String {
    let stem = file.strip_suffix(".js").unwrap_or(file);
    let safe: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("__scorch_module_{safe}")
}

/// Parses one module's imports and exports (see the module docs).
fn parse(file: &str, source: &str) -> Result<Parsed, String> {
    let mut parsed = Parsed {
        lines: Vec::new(),
        imports: Vec::new(),
        exports: Vec::new(),
    };
    for (number, line) in source.lines().enumerate() {
        let at = || format!("{file}:{}", number + 1);
        if starts_with_word(line, "import") && !line.starts_with("import(") {
            let import = parse_import(line).ok_or_else(|| {
                format!(
                    "{}: the bundler reads only `import {{ a, b }} from './x.js';` and `import * as x from './x.js';` on one line: `{line}`",
                    at()
                )
            })?;
            parsed.lines.push(match &import {
                Import::Namespace { name, file } => format!("const {name} = {};", binding(file)),
                Import::Named { names, file } => {
                    format!("const {{ {} }} = {};", names.join(", "), binding(file))
                }
            });
            parsed.imports.push(import);
        } else if let Some(rest) = line.strip_prefix("export ") {
            let name = exported_name(rest).ok_or_else(|| {
                format!(
                    "{}: the bundler reads `export` only before `function`, `async function`, `class` or `const NAME`: `{line}`",
                    at()
                )
            })?;
            parsed.exports.push(name.to_string());
            parsed.lines.push(rest.to_string());
        } else if starts_with_word(line, "export") || line.contains("import.meta") {
            return Err(format!(
                "{}: the bundler does not handle this module syntax: `{line}`",
                at()
            ));
        } else {
            parsed.lines.push(line.to_string());
        }
    }
    Ok(parsed)
}

/// The import on `line`, if it is one the bundler reads.
fn parse_import(line: &str) -> Option<Import> {
    let rest = line.strip_prefix("import ")?.trim_end();
    let rest = rest.strip_suffix(';').unwrap_or(rest);
    let (what, from) = rest.split_once(" from ")?;
    let from = from.trim();
    let quoted = from
        .strip_prefix('\'')
        .and_then(|f| f.strip_suffix('\''))
        .or_else(|| from.strip_prefix('"').and_then(|f| f.strip_suffix('"')))?;
    let file = quoted.strip_prefix("./")?;
    if file.contains('/') || !file.ends_with(".js") {
        return None;
    }
    let file = file.to_string();
    if let Some(name) = what.trim().strip_prefix("* as ") {
        let name = name.trim();
        return is_identifier(name).then(|| Import::Namespace {
            name: name.to_string(),
            file,
        });
    }
    let list = what.trim().strip_prefix('{')?.strip_suffix('}')?;
    let names: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    (!names.is_empty() && names.iter().all(|n| is_identifier(n)))
        .then_some(Import::Named { names, file })
}

/// The name an `export` declaration (after `export `) declares.
fn exported_name(declaration: &str) -> Option<&str> {
    let rest = ["async function ", "function ", "class ", "const "]
        .iter()
        .find_map(|k| declaration.strip_prefix(k))?;
    let rest = rest.strip_prefix('*').unwrap_or(rest).trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(rest.len());
    let name = &rest[..end];
    is_identifier(name).then_some(name)
}

/// Whether `line` starts with the keyword `word` (not a longer identifier).
fn starts_with_word(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| {
        !rest
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The page's `index.html` for the bundle: its module script loads
/// `bundle.js` instead of `entry`, and the module preloads (which the
/// bundle makes pointless) are dropped.
pub fn bundled_html(html: &str, entry: &str) -> Result<String, String> {
    let module = format!("<script type=\"module\" src=\"{entry}\"></script>");
    if html.matches(&module).count() != 1 {
        return Err(format!(
            "index.html must load the page with exactly one `{module}` for the bundler to replace"
        ));
    }
    let mut out = String::with_capacity(html.len());
    for line in html.lines() {
        if line.trim_start().starts_with("<link rel=\"modulepreload\"") {
            continue;
        }
        out.push_str(&line.replace(
            &module,
            "<script type=\"module\" src=\"bundle.js\"></script>",
        ));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(
        list: &'a [(&'a str, &'a str)],
    ) -> impl FnMut(&str) -> Result<String, String> + 'a {
        move |name| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.to_string())
                .ok_or_else(|| format!("no {name}"))
        }
    }

    #[test]
    fn modules_come_in_dependency_order_with_imports_bound_to_exports() {
        let mut read = files(&[
            (
                "app.js",
                "import * as api from './api.js';\nimport { twice } from './util.js';\nconsole.log(twice(api.one()));",
            ),
            (
                "api.js",
                "import { twice } from './util.js';\nexport function one() { return twice(0) + 1; }",
            ),
            (
                "util.js",
                "export const twice = (x) => 2 * x;\nexport async function later() {}\nexport class Box {}",
            ),
        ]);
        let out = bundle("app.js", &mut read).unwrap();
        let util = out.find("// ---- util.js").unwrap();
        let api = out.find("// ---- api.js").unwrap();
        let app = out.find("// ---- app.js").unwrap();
        assert!(util < api && api < app, "{out}");
        assert_eq!(out.matches("// ---- util.js").count(), 1, "util.js once");
        assert!(out.contains("return { twice, later, Box };"), "{out}");
        assert!(out.contains("const api = __scorch_module_api;"), "{out}");
        assert!(
            out.contains("const { twice } = __scorch_module_util;"),
            "{out}"
        );
        assert!(
            !out.contains("import ") && !out.contains("export "),
            "{out}"
        );
    }

    #[test]
    fn syntax_it_does_not_handle_is_an_error_with_the_line() {
        for (source, what) in [
            ("let a;\nexport default 1;", "app.js:2"),
            ("import x from './x.js';", "app.js:1"),
            ("import {\n  a } from './x.js';", "app.js:1"),
            ("export { a };", "app.js:1"),
            ("import { a } from 'https://cdn/x.js';", "app.js:1"),
            ("const u = import.meta.url;", "app.js:1"),
        ] {
            let err = bundle("app.js", &mut files(&[("app.js", source)])).unwrap_err();
            assert!(err.starts_with(what), "{source}: {err}");
        }
        let err = bundle(
            "app.js",
            &mut files(&[
                ("app.js", "import { b } from './b.js';"),
                ("b.js", "import { a } from './app.js';\nexport const b = 1;"),
            ]),
        )
        .unwrap_err();
        assert!(err.contains("app.js -> b.js -> app.js"), "{err}");
    }

    #[test]
    fn the_html_loads_the_bundle_without_preloads() {
        let html = "<head>\n<script src=\"boot.js\"></script>\n<script type=\"module\" src=\"app.js\"></script>\n<link rel=\"modulepreload\" href=\"api.js\">\n</head>\n";
        let out = bundled_html(html, "app.js").unwrap();
        assert_eq!(
            out,
            "<head>\n<script src=\"boot.js\"></script>\n<script type=\"module\" src=\"bundle.js\"></script>\n</head>\n"
        );
        assert!(bundled_html("<head></head>", "app.js").is_err());
    }
}
