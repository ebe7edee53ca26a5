//! Compiles the shipped policy (policies/*.toml, policies/knowledge/*.toml
//! and the option tables policies/options/*.toml) into the binary so it
//! judges the same way wherever it runs, and so a process pays only for
//! what it judges.
//!
//! The knowledge base is split here into units: one per program, one per
//! option table, the overrides by table, and the sensitive paths, each as
//! JSON that the spec types read at run time. Parsing 1.2 MB of TOML and
//! compiling every pattern on each start cost ~300 ms per process (the
//! guard is one process per request); a unit is parsed and compiled the
//! first time a line needs it. Files with rules or defaults are embedded
//! whole: their rules are parsed at run time, with file and line.
//!
//! The merge order is the run-time loader's: files in the order below, a
//! program or table named again replaces the earlier one (aliases
//! included), and override pins accumulate with the later file's word
//! winning. The test suite checks the units against a policy loaded from
//! the TOML itself (`tests/compiled.rs`).

use std::collections::BTreeMap;
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

#[derive(Default)]
struct Units {
    /// Name or alias → index into `programs`.
    names: BTreeMap<String, usize>,
    /// (canonical name, spec as JSON).
    programs: Vec<(String, String)>,
    tables: BTreeMap<String, String>,
    overrides: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    paths: Vec<serde_json::Value>,
    /// (shown path, absolute path) of files with rules or defaults.
    rule_files: Vec<(String, String)>,
}

fn json(v: &toml::Value) -> String {
    serde_json::to_string(v).expect("a TOML value is JSON")
}

impl Units {
    fn add(&mut self, shown: &str, file: &Path, text: &str) {
        let table: toml::Table =
            toml::from_str(text).unwrap_or_else(|e| panic!("{shown} is not valid TOML: {e}"));
        let mut has_rules = false;
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("rule" | "defaults", _) => has_rules = true,
                ("program", toml::Value::Table(programs)) => {
                    // Name order, as the loader's map iterates.
                    let mut programs: Vec<_> = programs.iter().collect();
                    programs.sort_by(|a, b| a.0.cmp(b.0));
                    for (name, spec) in programs {
                        let unit = self.programs.len();
                        self.programs.push((name.clone(), json(spec)));
                        // Aliases first, then the name, as the loader does.
                        let aliases = spec.get("aliases").and_then(toml::Value::as_array);
                        for alias in aliases.into_iter().flatten() {
                            let alias = alias.as_str().unwrap_or_else(|| {
                                panic!("{shown}: an alias of {name} is not a string")
                            });
                            self.names.insert(alias.to_owned(), unit);
                        }
                        self.names.insert(name.clone(), unit);
                    }
                }
                ("path", toml::Value::Array(paths)) => self.paths.extend(
                    paths
                        .iter()
                        .map(|p| serde_json::to_value(p).expect("a TOML value is JSON")),
                ),
                ("options", toml::Value::Table(tables)) => {
                    for (k, spec) in tables {
                        self.tables.insert(k.clone(), json(spec));
                    }
                }
                ("override", toml::Value::Table(overrides)) => {
                    for (k, pins) in overrides {
                        let toml::Value::Table(pins) = pins else {
                            panic!("{shown}: override.{k} is not a table");
                        };
                        let merged = self.overrides.entry(k.clone()).or_default();
                        for (name, pin) in pins {
                            merged.insert(
                                name.clone(),
                                serde_json::to_value(pin).expect("a TOML value is JSON"),
                            );
                        }
                    }
                }
                (other, _) => panic!("{shown}: unknown or malformed top-level key `{other}`"),
            }
        }
        if has_rules {
            self.rule_files
                .push((shown.to_owned(), file.display().to_string()));
        }
    }

    fn write(&self, files: &[String]) -> String {
        let mut code = String::new();
        let mut line = |s: String| {
            code.push_str(&s);
            code.push('\n');
        };
        line("/// Every shipped policy file, relative to the workspace.".into());
        line("pub(crate) static FILES: &[&str] = &[".into());
        for f in files {
            line(format!("    {f:?},"));
        }
        line("];".into());
        line("/// Files with rules or defaults: (shown path, text).".into());
        line("pub(crate) static RULE_FILES: &[(&str, &str)] = &[".into());
        for (shown, path) in &self.rule_files {
            line(format!("    ({shown:?}, include_str!({path:?})),"));
        }
        line("];".into());
        line("/// Program names and aliases, sorted, with their unit.".into());
        line("pub(crate) static PROGRAM_NAMES: &[(&str, u32)] = &[".into());
        for (name, unit) in &self.names {
            line(format!("    ({name:?}, {unit}),"));
        }
        line("];".into());
        line("/// (canonical name, program spec as JSON).".into());
        line("pub(crate) static PROGRAMS: &[(&str, &str)] = &[".into());
        for (name, spec) in &self.programs {
            line(format!("    ({name:?}, {spec:?}),"));
        }
        line("];".into());
        line("/// Option tables, sorted by key, as JSON.".into());
        line("pub(crate) static TABLES: &[(&str, &str)] = &[".into());
        for (key, spec) in &self.tables {
            line(format!("    ({key:?}, {spec:?}),"));
        }
        line("];".into());
        line("/// Override pins, sorted by key, as JSON.".into());
        line("pub(crate) static OVERRIDES: &[(&str, &str)] = &[".into());
        for (key, pins) in &self.overrides {
            let pins = serde_json::to_string(pins).expect("JSON");
            line(format!("    ({key:?}, {pins:?}),"));
        }
        line("];".into());
        let paths = serde_json::to_string(&self.paths).expect("JSON");
        line("/// The sensitive paths, in order, as JSON.".into());
        line(format!("pub(crate) static PATHS: &str = {paths:?};"));
        code
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let root = root
        .canonicalize()
        .expect("policies/ sits at the workspace root");
    let workspace = root.parent().expect("workspace root").to_owned();
    let mut units = Units::default();
    let mut files = Vec::new();
    for sub in [root.clone(), root.join("knowledge"), root.join("options")] {
        println!("cargo:rerun-if-changed={}", sub.display());
        for file in toml_files(&sub) {
            println!("cargo:rerun-if-changed={}", file.display());
            let shown = file
                .strip_prefix(&workspace)
                .expect("under root")
                .display()
                .to_string();
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            units.add(&shown, &file, &text);
            files.push(shown);
        }
    }
    let mut code = units.write(&files);
    writeln!(code).expect("write to string");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped.rs");
    std::fs::write(out, code).expect("write shipped.rs");
}
