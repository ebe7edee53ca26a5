//! What a script in a tool's own mini-language does beyond its text work:
//! the one shape every reader returns ([`crate::sed`], [`crate::awk`],
//! [`crate::jq`]), so the analysis judges a sed `w`, an awk `print >` and a
//! yq `-i` by the same rules as any other write.
//!
//! A reader reports what it saw; it never decides. Whatever it cannot follow
//! is `unreadable`, and the analysis never lets an unreadable script run
//! unattended.

/// What one invocation's scripts do besides transforming the text that
/// streams through them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptEffects {
    /// Shell commands the script runs: `Some(text)` where the command is a
    /// literal (`e id`, `system("id")`, `"date" | getline`), `None` where it
    /// is only known at run time (the pattern space, a variable).
    pub runs: Vec<Option<String>>,
    /// Files the script writes (sed `w`, awk `print > "f"`, `yq -i` on its
    /// operands).
    pub writes: Vec<String>,
    /// The script writes somewhere only known at run time (`print > $1`).
    pub writes_unknown: bool,
    /// Files the script reads beyond its operands (sed `r`, awk `getline <
    /// "f"`, jq `--rawfile v f`).
    pub reads: Vec<String>,
    /// The script reads a file only known at run time (`getline < $2`).
    pub reads_unknown: bool,
    /// The script reads environment variables (awk `ENVIRON`, jq `env`,
    /// `$ENV`), which can hold secrets.
    pub environment: bool,
    /// The script, or code it pulls in, comes from a file that is not read
    /// here (`sed -f`, `awk -f`, `@include`, jq `import`, `-L`).
    pub from_file: bool,
    /// A script this reader cannot follow.
    pub unreadable: bool,
    /// The words (by position in the arguments) that are script text or
    /// values the tool never opens as files (jq's filter, its `--arg`
    /// values), so the analysis does not read them as paths: `jq .env f`
    /// touches no `.env`. Only meaningful when the script is readable.
    pub not_paths: Vec<usize>,
}

impl ScriptEffects {
    /// Whether the scripts only transform the text.
    pub fn only_transforms(&self) -> bool {
        *self
            == ScriptEffects {
                not_paths: self.not_paths.clone(),
                ..ScriptEffects::default()
            }
    }
}
