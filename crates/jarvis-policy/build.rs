//! Embeds the shipped policy (policies/*.toml, policies/knowledge/*.toml and
//! the option tables policies/options/*.toml)
//! so the binary judges the same way wherever it runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let root = root
        .canonicalize()
        .expect("policies/ sits at the workspace root");
    println!("cargo:rerun-if-changed={}", root.display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("knowledge").display()
    );
    let mut code = String::from("&[\n");
    println!("cargo:rerun-if-changed={}", root.join("options").display());
    for sub in [root.clone(), root.join("knowledge"), root.join("options")] {
        for file in toml_files(&sub) {
            println!("cargo:rerun-if-changed={}", file.display());
            let shown = file
                .strip_prefix(root.parent().expect("workspace root"))
                .expect("under root");
            writeln!(
                code,
                "    ({:?}, include_str!({:?})),",
                shown.display().to_string(),
                file.display().to_string()
            )
            .expect("write to string");
        }
    }
    code.push_str("]\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped.rs");
    std::fs::write(out, code).expect("write shipped.rs");
}
