//! Bundles the page's JavaScript modules into one script and rewrites
//! `index.html` to load it (see `src/bundle.rs`), into `OUT_DIR`.

#[path = "src/bundle.rs"]
mod bundle;

use std::path::Path;

/// The module the page starts from.
const ENTRY: &str = "app.js";

fn main() {
    // Read when the script runs, not when it is compiled: a build script
    // compiled for one checkout may be run for another of the same source.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let page = Path::new(&manifest).join("page");
    println!("cargo:rerun-if-changed={}", page.display());
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut read = |name: &str| {
        let path = page.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let script = bundle::bundle(ENTRY, &mut read).unwrap_or_else(|e| fail(&e));
    let html = read("index.html").unwrap_or_else(|e| fail(&e));
    let html = bundle::bundled_html(&html, ENTRY).unwrap_or_else(|e| fail(&e));
    for (name, text) in [("bundle.js", script), ("index.html", html)] {
        let path = out.join(name);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
    }
}

/// Stops the build with the bundler's message.
fn fail(message: &str) -> ! {
    eprintln!("error: bundling web/page: {message}");
    std::process::exit(1);
}
