//! Option tables: every option a tool accepts, as the tool's own help lists
//! it, with what each one can do.
//!
//! The tables under `policies/options/` are generated from the tools
//! themselves (`scripts/gen-option-tables`) and record the tool version they
//! came from; `policies/options/overrides.toml` pins the classes a person
//! decided. A node of the knowledge base whose table is complete is closed:
//! an option the table does not list, in any spelling the tool would
//! accept, is unknown and so never runs unattended. This module owns the
//! tables and how a written option word resolves against one (the tool's
//! abbreviation rule, clusters, attached values); it must never decide what
//! a command may do; the analysis turns classes into findings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

/// What an option can do, as one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptionClass {
    /// Formatting, selection, output shape: harmless for a reading tool.
    None,
    /// Its value is a path the tool reads (`grep -f FILE`).
    ReadsValue,
    /// Its value is a path the tool writes or truncates (`sort -o FILE`).
    WritesValue,
    /// It runs a program or code (`sort --compress-program`).
    Runs,
    /// It talks to other machines.
    Network,
    /// It prints secrets (`nmcli --show-secrets`).
    Secrets,
    /// It changes state (`journalctl --rotate`, `date -s`).
    Changes,
    /// Nobody has said what it does.
    Unknown,
}

impl OptionClass {
    /// The word used in tables and reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionClass::None => "none",
            OptionClass::ReadsValue => "reads-value",
            OptionClass::WritesValue => "writes-value",
            OptionClass::Runs => "runs",
            OptionClass::Network => "network",
            OptionClass::Secrets => "secrets",
            OptionClass::Changes => "changes",
            OptionClass::Unknown => "unknown",
        }
    }
}

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arity {
    /// A switch.
    #[default]
    None,
    /// `--file=F`, `--file F`, `-fF`, `-f F`.
    Required,
    /// Only attached: `--color=never`, `-i.bak`; never the next word.
    Optional,
}

/// How the tool reads a long option that is not spelt out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Abbreviations {
    /// GNU getopt_long and git's parse-options: a unique prefix of a long
    /// option is that option; an ambiguous one is an error.
    UniquePrefix,
    /// Only the spellings listed (cobra, find, ip's own parser).
    None,
}

/// One option as a table file writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// Every spelling: `-f`, `--file`.
    pub names: Vec<String>,
    /// Whether it takes a value.
    #[serde(default)]
    pub value: Arity,
    /// The value's name in the help (`FILE`).
    #[serde(default)]
    pub metavar: Option<String>,
    /// What it can do.
    pub class: OptionClass,
    /// The tool's one-line help for it.
    #[serde(default)]
    pub help: String,
}

/// One tool's (or subcommand's) table as a file writes it, under
/// `[options."git log"]`: the key is the program name as invoked and the
/// subcommand words.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The tool's own version line.
    pub version: String,
    /// The Debian package and version it came from, if any.
    #[serde(default)]
    pub package: Option<String>,
    /// The system it was generated on.
    #[serde(default)]
    pub os: Option<String>,
    /// The commands whose output it was read from.
    pub source: String,
    /// Whether it lists every option the tool accepts; only a complete
    /// table closes its node.
    pub complete: bool,
    /// The tool's abbreviation rule for long options.
    pub abbreviations: Abbreviations,
    /// `--no-X` is accepted for every long option `--X` (git).
    #[serde(default)]
    pub negation: bool,
    /// `-NUM` is accepted (`head -20`, `git log -5`).
    #[serde(default)]
    pub numeric: bool,
    /// `-abc` is `-a -b -c` (getopt, git, cobra); false where the tool
    /// reads a single-dash word as one option (`find -newer`, `ip -br`).
    #[serde(default = "clusters_by_default")]
    pub clusters: bool,
    /// The options.
    #[serde(default)]
    pub option: Vec<OptionSpec>,
}

/// A class (and, where the help does not show it, a value) a person pinned
/// for one option, by any of its spellings.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OverrideSpec {
    /// `"--file" = "reads-value"`
    Class(OptionClass),
    /// `"--sort" = { class = "none", value = "required" }`
    Full(OverrideFull),
}

/// The long form of an override.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideFull {
    /// The class.
    #[serde(default)]
    pub class: Option<OptionClass>,
    /// Whether it takes a value.
    #[serde(default)]
    pub value: Option<Arity>,
}

/// One option, compiled.
#[derive(Clone, Debug)]
pub struct TableOption {
    /// Every spelling.
    pub names: Vec<String>,
    /// Whether it takes a value.
    pub value: Arity,
    /// What it can do.
    pub class: OptionClass,
}

/// A compiled table.
#[derive(Clone, Debug)]
pub struct OptionTable {
    /// `grep`, `git log`.
    pub key: String,
    /// The tool's version line.
    pub version: String,
    /// Whether it lists every option.
    pub complete: bool,
    abbreviations: Abbreviations,
    negation: bool,
    clusters: bool,
    /// The option `-NUM` stands for, when the tool takes counts so.
    numeric: Option<usize>,
    options: Vec<TableOption>,
    by_name: HashMap<String, usize>,
}

/// A mistake in a table, named by where it sits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct TableError {
    /// `options."git log".option[--output]`
    pub place: String,
    /// What is wrong.
    pub problem: String,
    /// Text to find it by in the file.
    pub needle: String,
}

/// Every table, by key, with the overrides of every file.
///
/// Tables from run-time files are compiled when added; shipped tables
/// ([`OptionTables::shipped`]) when first asked for, with every file's
/// overrides.
#[derive(Debug, Default)]
pub struct OptionTables {
    specs: BTreeMap<String, TableSpec>,
    overrides: BTreeMap<String, BTreeMap<String, OverrideSpec>>,
    compiled: HashMap<String, Arc<OptionTable>>,
    /// The shipped tables under those above, by index, compiled on first
    /// use; `None` for tables of run-time files only.
    shipped: Option<crate::shipped::Cells<OptionTable>>,
}

impl OptionTables {
    /// The shipped tables, each compiled when first asked for.
    pub fn shipped() -> OptionTables {
        OptionTables {
            shipped: Some(fresh_cells()),
            ..OptionTables::default()
        }
    }

    /// Adds the tables and overrides of one file; a table named again
    /// replaces the earlier one, and overrides accumulate (a later file's
    /// word for an option wins).
    ///
    /// # Errors
    /// Every spelling that is no option and every spelling listed twice.
    pub fn add(
        &mut self,
        tables: BTreeMap<String, TableSpec>,
        overrides: BTreeMap<String, BTreeMap<String, OverrideSpec>>,
    ) -> Result<(), Vec<TableError>> {
        let mut errors = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for (key, spec) in tables {
            check_table(&key, &spec, &mut errors);
            touched.push(key.clone());
            self.specs.insert(key, spec);
        }
        for (key, pins) in &overrides {
            for name in pins.keys() {
                if !is_option_word(name) {
                    errors.push(TableError {
                        place: format!("override.{key}"),
                        problem: format!("`{name}` is not an option (it must start with `-`)"),
                        needle: name.clone(),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for (key, pins) in overrides {
            match key.strip_suffix(" *") {
                Some(program) => touched.extend(
                    self.specs
                        .keys()
                        .filter(|k| *k == program || k.starts_with(&format!("{program} ")))
                        .cloned(),
                ),
                None => touched.push(key.clone()),
            }
            self.overrides.entry(key).or_default().extend(pins);
            // A shipped table compiled before now lacks these pins.
            if let Some(cells) = &mut self.shipped {
                *cells = fresh_cells();
            }
        }
        touched.sort();
        touched.dedup();
        for key in touched {
            if let Some(spec) = self.specs.get(&key) {
                let table = compile(&key, spec, &self.pins_for(&key));
                self.compiled.insert(key, Arc::new(table));
            }
        }
        Ok(())
    }

    /// The pins for a table: those for every node of its program
    /// (`[override."systemctl *"]`, for options all its subcommands share),
    /// then its own, which win; for each, the shipped pins with the
    /// run-time files' on top.
    fn pins_for(&self, key: &str) -> Vec<(String, OverrideSpec)> {
        let program = key.split(' ').next().unwrap_or(key);
        let mut out = Vec::new();
        for k in [format!("{program} *"), key.to_owned()] {
            let mut pins: BTreeMap<String, OverrideSpec> = self
                .shipped
                .as_ref()
                .and_then(|_| crate::shipped::overrides(&k))
                .and_then(|json| crate::shipped::read(json).ok())
                .unwrap_or_default();
            if let Some(own) = self.overrides.get(&k) {
                pins.extend(own.iter().map(|(n, p)| (n.clone(), p.clone())));
            }
            out.extend(pins);
        }
        out
    }

    /// The table for a node: the program name as invoked and its
    /// subcommand words, space-joined (`git log`).
    pub fn get(&self, key: &str) -> Option<&Arc<OptionTable>> {
        if let Some(t) = self.compiled.get(key) {
            return Some(t);
        }
        let cells = self.shipped.as_ref()?;
        let i = crate::shipped::table(key)?;
        cells[i]
            .get_or_init(|| {
                let (key, json) = crate::shipped::TABLES.get(i)?;
                let spec: TableSpec = crate::shipped::read(json).ok()?;
                Some(Arc::new(compile(key, &spec, &self.pins_for(key))))
            })
            .as_ref()
    }

    /// Every table, by key (the shipped ones compiled now).
    pub fn all(&self) -> Vec<(&str, &Arc<OptionTable>)> {
        let shipped = self
            .shipped
            .as_ref()
            .map(|_| crate::shipped::TABLES.iter().map(|(k, _)| *k))
            .into_iter()
            .flatten()
            .filter(|k| !self.compiled.contains_key(*k));
        let mut keys: Vec<&str> = self.compiled.keys().map(String::as_str).collect();
        keys.extend(shipped);
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|k| self.get(k).map(|t| (k, t)))
            .collect()
    }

    /// Reads and checks every shipped table and override as a run-time
    /// file's would be.
    pub fn check_shipped(&self) -> Vec<TableError> {
        let mut errors = Vec::new();
        if self.shipped.is_none() {
            return errors;
        }
        for (key, json) in crate::shipped::TABLES {
            match crate::shipped::read::<TableSpec>(json) {
                Ok(spec) => check_table(key, &spec, &mut errors),
                Err(e) => errors.push(TableError {
                    place: format!("options.{key:?}"),
                    problem: format!("does not read: {e}"),
                    needle: (*key).to_owned(),
                }),
            }
        }
        for (key, json) in crate::shipped::OVERRIDES {
            match crate::shipped::read::<BTreeMap<String, OverrideSpec>>(json) {
                Ok(pins) => errors.extend(pins.keys().filter(|n| !is_option_word(n)).map(|name| {
                    TableError {
                        place: format!("override.{key}"),
                        problem: format!("`{name}` is not an option (it must start with `-`)"),
                        needle: name.clone(),
                    }
                })),
                Err(e) => errors.push(TableError {
                    place: format!("override.{key}"),
                    problem: format!("does not read: {e}"),
                    needle: (*key).to_owned(),
                }),
            }
        }
        errors
    }
}

fn fresh_cells() -> crate::shipped::Cells<OptionTable> {
    crate::shipped::cells(crate::shipped::TABLES.len())
}

fn clusters_by_default() -> bool {
    true
}

fn is_option_word(name: &str) -> bool {
    name.len() >= 2 && name.starts_with('-') && !name.contains(char::is_whitespace)
}

fn check_table(key: &str, spec: &TableSpec, errors: &mut Vec<TableError>) {
    if key.trim().is_empty() || key != key.trim() {
        errors.push(TableError {
            place: format!("options.{key:?}"),
            problem: "a table is named by a program and its subcommand words".into(),
            needle: key.to_owned(),
        });
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, o) in spec.option.iter().enumerate() {
        let first = o.names.first().map_or("", String::as_str);
        if o.names.is_empty() {
            errors.push(TableError {
                place: format!("options.{key}.option[{i}]"),
                problem: "an option needs at least one name".into(),
                needle: "names = []".into(),
            });
        }
        for n in &o.names {
            if !is_option_word(n) {
                errors.push(TableError {
                    place: format!("options.{key}.option[{first}]"),
                    problem: format!("`{n}` is not an option (it must start with `-`)"),
                    needle: format!("{n:?}"),
                });
            }
            if let Some(j) = seen.insert(n, i)
                && j != i
            {
                errors.push(TableError {
                    place: format!("options.{key}.option[{first}]"),
                    problem: format!("`{n}` is listed for two options"),
                    needle: format!("{n:?}"),
                });
            }
        }
    }
}

fn compile(key: &str, spec: &TableSpec, pins: &[(String, OverrideSpec)]) -> OptionTable {
    let mut options: Vec<TableOption> = spec
        .option
        .iter()
        .map(|o| TableOption {
            names: o.names.clone(),
            value: o.value,
            class: o.class,
        })
        .collect();
    for (name, pin) in pins {
        let Some(o) = options.iter_mut().find(|o| o.names.contains(name)) else {
            // An option the tool no longer lists: the table is the tool's
            // word, so the pin has nothing to apply to.
            continue;
        };
        match pin {
            OverrideSpec::Class(c) => o.class = *c,
            OverrideSpec::Full(f) => {
                if let Some(c) = f.class {
                    o.class = c;
                }
                if let Some(v) = f.value {
                    o.value = v;
                }
            }
        }
    }
    let numeric = spec.numeric.then(|| {
        options.push(TableOption {
            names: vec!["-NUM".to_owned()],
            value: Arity::None,
            class: OptionClass::None,
        });
        options.len() - 1
    });
    let mut by_name = HashMap::new();
    for (i, o) in options
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != numeric)
    {
        for n in &o.names {
            by_name.entry(n.clone()).or_insert(i);
        }
    }
    OptionTable {
        key: key.to_owned(),
        version: spec.version.clone(),
        complete: spec.complete,
        abbreviations: spec.abbreviations,
        negation: spec.negation,
        clusters: spec.clusters,
        numeric,
        options,
        by_name,
    }
}

/// Where an option's value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueAt {
    /// In the same word: `--file=F`, `-fF`.
    Attached(String),
    /// The next word: `--file F`, `-f F`.
    Next,
}

/// One option a word names, as the tool would read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// As resolved: `--compress-program` for `--comp`, `-k` in `-k2`.
    pub spelling: String,
    /// The table's option, or why there is none.
    pub option: Result<usize, Unlisted>,
    /// Its value, if it takes one.
    pub value: Option<ValueAt>,
}

/// Why a word names no option of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlisted {
    /// No spelling, nor unique prefix of one.
    Unknown,
    /// A prefix of several options; the tool refuses it.
    Ambiguous(Vec<String>),
}

/// What one option word means to the tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The options it names, in order; reading stops at the first unlisted
    /// one, since what follows it cannot be known.
    pub items: Vec<Item>,
    /// Words used, the option word included.
    pub used: usize,
}

impl OptionTable {
    /// The option at `index` of [`Item::option`].
    pub fn option(&self, index: usize) -> Option<&TableOption> {
        self.options.get(index)
    }

    /// Every option.
    pub fn options(&self) -> &[TableOption] {
        &self.options
    }

    /// Reads one option word (`--comp=sh`, `-k2`, `-rn`, `-maxdepth`) as
    /// the tool would: clusters of short options where its parser reads
    /// them, otherwise a single-dash word is one option (`find -newer`).
    /// `has_next`: a word follows, which a value may take.
    pub fn parse(&self, word: &str, has_next: bool) -> Parsed {
        let mut items = Vec::new();
        if word.starts_with("--") {
            let (name, attached) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (word, None),
            };
            let item = match self.long(name) {
                Ok((index, spelling, negated)) => {
                    let arity = self.options[index].value;
                    let value = match (arity, attached) {
                        _ if negated => None,
                        (Arity::None, _) => None,
                        (Arity::Required | Arity::Optional, Some(v)) => {
                            Some(ValueAt::Attached(v.to_owned()))
                        }
                        (Arity::Required, None) => Some(ValueAt::Next),
                        (Arity::Optional, None) => None,
                    };
                    Item {
                        spelling,
                        option: Ok(index),
                        value,
                    }
                }
                Err(why) => Item {
                    spelling: name.to_owned(),
                    option: Err(why),
                    value: None,
                },
            };
            items.push(item);
        } else if let Some(&index) = self.by_name.get(word) {
            // A listed single-dash word: `-maxdepth`, `-br`, `-4`.
            let value = (self.options[index].value == Arity::Required).then_some(ValueAt::Next);
            items.push(Item {
                spelling: word.to_owned(),
                option: Ok(index),
                value,
            });
        } else if let Some(index) = self
            .numeric
            .filter(|_| word.len() > 1 && word[1..].chars().all(|c| c.is_ascii_digit()))
        {
            items.push(Item {
                spelling: "-NUM".to_owned(),
                option: Ok(index),
                value: None,
            });
        } else if self.clusters {
            let chars: Vec<char> = word.chars().skip(1).collect();
            for (k, c) in chars.iter().enumerate() {
                let spelling = format!("-{c}");
                let Some(&index) = self.by_name.get(&spelling) else {
                    items.push(Item {
                        spelling,
                        option: Err(Unlisted::Unknown),
                        value: None,
                    });
                    break;
                };
                let rest: String = chars[k + 1..].iter().collect();
                match self.options[index].value {
                    Arity::None => items.push(Item {
                        spelling,
                        option: Ok(index),
                        value: None,
                    }),
                    arity @ (Arity::Required | Arity::Optional) => {
                        let value = if !rest.is_empty() {
                            Some(ValueAt::Attached(rest))
                        } else if arity == Arity::Required {
                            Some(ValueAt::Next)
                        } else {
                            None
                        };
                        items.push(Item {
                            spelling,
                            option: Ok(index),
                            value,
                        });
                        break;
                    }
                }
            }
        } else {
            items.push(Item {
                spelling: word.to_owned(),
                option: Err(Unlisted::Unknown),
                value: None,
            });
        }
        let takes_next = items.iter().any(|i| i.value == Some(ValueAt::Next));
        Parsed {
            items,
            used: 1 + usize::from(takes_next && has_next),
        }
    }

    /// The class of an item's option.
    pub fn class_of(&self, item: &Item) -> Option<OptionClass> {
        item.option
            .as_ref()
            .ok()
            .and_then(|i| self.options.get(*i))
            .map(|o| o.class)
    }

    /// A long option name (no `=value`) resolved by the tool's rule: the
    /// option's index, its full spelling, and whether it was negated.
    fn long(&self, name: &str) -> Result<(usize, String, bool), Unlisted> {
        match self.long_plain(name) {
            Err(Unlisted::Unknown) if self.negation => {
                let Some(rest) = name.strip_prefix("--no-") else {
                    return Err(Unlisted::Unknown);
                };
                let (i, spelling, _) = self.long_plain(&format!("--{rest}"))?;
                let full = format!("--no-{}", spelling.trim_start_matches('-'));
                Ok((i, full, true))
            }
            found @ (Ok(_) | Err(Unlisted::Unknown | Unlisted::Ambiguous(_))) => found,
        }
    }

    fn long_plain(&self, name: &str) -> Result<(usize, String, bool), Unlisted> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok((i, name.to_owned(), false));
        }
        if self.abbreviations == Abbreviations::None || name.len() < 3 {
            return Err(Unlisted::Unknown);
        }
        let mut hits: Vec<(usize, &String)> = self
            .by_name
            .iter()
            .filter(|(n, _)| n.starts_with("--") && n.starts_with(name))
            .map(|(n, i)| (*i, n))
            .collect();
        hits.sort();
        let mut indices: Vec<usize> = hits.iter().map(|(i, _)| *i).collect();
        indices.dedup();
        match indices.as_slice() {
            [] => Err(Unlisted::Unknown),
            [only] => {
                let spelling = hits
                    .iter()
                    .map(|(_, n)| (*n).clone())
                    .min()
                    .unwrap_or_default();
                Ok((*only, spelling, false))
            }
            _ => Err(Unlisted::Ambiguous(
                hits.iter().map(|(_, n)| (*n).clone()).collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Result<OptionTables, Vec<TableError>> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            options: BTreeMap<String, TableSpec>,
            #[serde(default, rename = "override")]
            overrides: BTreeMap<String, BTreeMap<String, OverrideSpec>>,
        }
        let f: File = toml::from_str(text).expect("table TOML");
        let mut t = OptionTables::default();
        t.add(f.options, f.overrides)?;
        Ok(t)
    }

    const SORT: &str = r#"
[options.sort]
version = "sort (GNU coreutils) 9.1"
source = "sort --help"
complete = true
abbreviations = "unique-prefix"
option = [
  { names = ["-k", "--key"], value = "required", metavar = "KEYDEF", class = "none" },
  { names = ["-n", "--numeric-sort"], class = "none" },
  { names = ["-r", "--reverse"], class = "none" },
  { names = ["-o", "--output"], value = "required", metavar = "FILE", class = "unknown" },
  { names = ["--compress-program"], value = "required", metavar = "PROG", class = "unknown" },
  { names = ["--color"], value = "optional", metavar = "WHEN", class = "none" },
  { names = ["--colour"], class = "none" },
]

[override.sort]
"--output" = "writes-value"
"--compress-program" = { class = "runs" }
"#;

    fn sort() -> Arc<OptionTable> {
        let t = tables(SORT).expect("loads");
        Arc::clone(t.get("sort").expect("sort table"))
    }

    #[test]
    fn overrides_pin_classes() {
        let t = sort();
        let p = t.parse("--output=x", false);
        assert_eq!(t.class_of(&p.items[0]), Some(OptionClass::WritesValue));
        let p = t.parse("--compress-program", true);
        assert_eq!(t.class_of(&p.items[0]), Some(OptionClass::Runs));
        assert_eq!(p.used, 2);
    }

    #[test]
    fn long_options_resolve_by_unique_prefix() {
        let t = sort();
        let p = t.parse("--comp=sh", false);
        assert_eq!(p.items[0].spelling, "--compress-program");
        assert_eq!(p.items[0].value, Some(ValueAt::Attached("sh".into())));
        assert_eq!(p.used, 1);
        // `--col` is a prefix of two options: the tool refuses it.
        let p = t.parse("--col", true);
        assert!(matches!(p.items[0].option, Err(Unlisted::Ambiguous(_))));
        // An exact spelling wins over being a prefix of another.
        let p = t.parse("--color", true);
        assert_eq!(p.items[0].spelling, "--color");
        assert_eq!(p.used, 1, "an optional value is never the next word");
        let p = t.parse("--frobnicate", true);
        assert_eq!(p.items[0].option, Err(Unlisted::Unknown));
    }

    #[test]
    fn clusters_take_attached_and_next_values() {
        let t = sort();
        let p = t.parse("-k2", true);
        assert_eq!(p.items[0].value, Some(ValueAt::Attached("2".into())));
        assert_eq!(p.used, 1);
        let p = t.parse("-nrk", true);
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.items[2].value, Some(ValueAt::Next));
        assert_eq!(p.used, 2);
        let p = t.parse("-no/tmp/x", false);
        assert_eq!(p.items[1].spelling, "-o");
        assert_eq!(p.items[1].value, Some(ValueAt::Attached("/tmp/x".into())));
        // Reading stops at the first letter the table does not list.
        let p = t.parse("-nZo", true);
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.items[1].option, Err(Unlisted::Unknown));
        assert_eq!(p.used, 1);
    }

    #[test]
    fn single_dash_words_and_counts() {
        let text = r#"
[options.find]
version = "find (GNU findutils) 4.9.0"
source = "find --help"
complete = true
abbreviations = "none"
clusters = false
numeric = true
option = [
  { names = ["-maxdepth"], value = "required", class = "none" },
  { names = ["-fprint"], value = "required", class = "writes-value" },
]
"#;
        let t = tables(text).expect("loads");
        let t = t.get("find").expect("find");
        let p = t.parse("-maxdepth", true);
        assert_eq!(p.used, 2);
        let p = t.parse("-maxdept", true);
        assert_eq!(p.items[0].option, Err(Unlisted::Unknown));
        let p = t.parse("-12", false);
        assert_eq!(t.class_of(&p.items[0]), Some(OptionClass::None));
    }

    #[test]
    fn git_negates_every_long_option() {
        let text = r#"
[options."git log"]
version = "git version 2.47.3"
source = "git log -h"
complete = true
abbreviations = "unique-prefix"
negation = true
option = [
  { names = ["--output"], value = "required", class = "writes-value" },
  { names = ["--color"], value = "optional", class = "none" },
]
"#;
        let t = tables(text).expect("loads");
        let t = t.get("git log").expect("git log");
        let p = t.parse("--no-color", true);
        assert_eq!(p.items[0].spelling, "--no-color");
        let p = t.parse("--outp=/tmp/x", false);
        assert_eq!(t.class_of(&p.items[0]), Some(OptionClass::WritesValue));
        let p = t.parse("--no-output", true);
        assert_eq!(p.items[0].value, None, "a negated option takes no value");
    }

    #[test]
    fn spellings_of_one_option_are_no_ambiguity() {
        let text = r#"
[options.grep]
version = "grep (GNU grep) 3.8"
source = "grep --help"
complete = true
abbreviations = "unique-prefix"
option = [
  { names = ["--color", "--colour"], value = "optional", class = "none" },
  { names = ["--context", "-C"], value = "required", class = "none" },
]
"#;
        let t = tables(text).expect("loads");
        let t = t.get("grep").expect("grep");
        // `--col` begins both spellings of one option: getopt_long takes it.
        let p = t.parse("--col=never", false);
        assert!(p.items[0].option.is_ok(), "{p:?}");
        assert_eq!(p.items[0].value, Some(ValueAt::Attached("never".into())));
        // `--co` begins two options: refused, so unknown.
        let p = t.parse("--co", true);
        assert!(matches!(p.items[0].option, Err(Unlisted::Ambiguous(_))));
        assert_eq!(p.used, 1, "an unknown option takes no value");
    }

    #[test]
    fn git_abbreviates_negated_options_and_refuses_ambiguous_ones() {
        let text = r#"
[options."git log"]
version = "git version 2.47.3"
source = "git log -h, man git-log"
complete = true
abbreviations = "unique-prefix"
negation = true
option = [
  { names = ["--output"], value = "required", class = "writes-value" },
  { names = ["--output-indicator-new"], value = "required", class = "none" },
  { names = ["--color"], value = "optional", class = "none" },
  { names = ["--no-walk"], value = "optional", class = "none" },
]
"#;
        let t = tables(text).expect("loads");
        let t = t.get("git log").expect("git log");
        // parse-options reads `--no-` and then a unique prefix of the rest.
        let p = t.parse("--no-col", true);
        assert_eq!(p.items[0].spelling, "--no-color");
        assert_eq!(p.used, 1);
        // An option whose own name starts with no- is itself.
        let p = t.parse("--no-walk", true);
        assert_eq!(p.items[0].spelling, "--no-walk");
        // `--outp` begins --output and --output-indicator-new.
        let p = t.parse("--outp=/tmp/x", false);
        assert!(matches!(p.items[0].option, Err(Unlisted::Ambiguous(_))));
        let p = t.parse("--output=/tmp/x", false);
        assert_eq!(t.class_of(&p.items[0]), Some(OptionClass::WritesValue));
        let p = t.parse("--no-such", true);
        assert_eq!(p.items[0].option, Err(Unlisted::Unknown));
    }

    #[test]
    fn cobra_takes_exact_spellings_only() {
        let text = r#"
[options."docker ps"]
version = "Docker version 28.2.2"
source = "docker ps --help"
complete = true
abbreviations = "none"
option = [
  { names = ["--format"], value = "required", class = "none" },
  { names = ["-a", "--all"], class = "none" },
  { names = ["-n", "--last"], value = "required", class = "none" },
]
"#;
        let t = tables(text).expect("loads");
        let t = t.get("docker ps").expect("docker ps");
        let p = t.parse("--format", true);
        assert_eq!(p.used, 2);
        // pflag has no abbreviations: a prefix is an unknown option.
        for word in ["--form", "--al", "--las=3"] {
            let p = t.parse(word, true);
            assert_eq!(p.items[0].option, Err(Unlisted::Unknown), "{word}");
        }
        // Shorts still cluster, and a value may be attached.
        let p = t.parse("-an3", false);
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.items[1].value, Some(ValueAt::Attached("3".into())));
    }

    #[test]
    fn a_tool_that_reads_single_dash_words_whole_never_clusters() {
        let text = r#"
[options.ip]
version = "ip utility, iproute2-6.1.0"
source = "ip -h"
complete = true
abbreviations = "none"
clusters = false
option = [
  { names = ["-s", "-st", "-stats"], class = "none" },
  { names = ["-d", "-details"], class = "none" },
  { names = ["-b", "-batch"], value = "required", class = "runs" },
]
"#;
        let t = tables(text).expect("loads");
        let t = t.get("ip").expect("ip");
        assert!(t.parse("-st", false).items[0].option.is_ok());
        // ip refuses `-sd`; read as -s -d it would look harmless.
        let p = t.parse("-sd", false);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].option, Err(Unlisted::Unknown));
        let p = t.parse("-batch", true);
        assert_eq!(t.class_of(&p.items[0]), Some(OptionClass::Runs));
        assert_eq!(p.used, 2);
    }

    #[test]
    fn mistakes_name_the_option() {
        let text = r#"
[options.x]
version = "x 1"
source = "x --help"
complete = true
abbreviations = "none"
option = [
  { names = ["-a"], class = "none" },
  { names = ["-a", "all"], class = "none" },
]
"#;
        let errors = tables(text).expect_err("refused");
        assert!(errors.iter().any(|e| e.problem.contains("listed for two")));
        assert!(
            errors
                .iter()
                .any(|e| e.problem.contains("`all` is not an option"))
        );
    }
}
