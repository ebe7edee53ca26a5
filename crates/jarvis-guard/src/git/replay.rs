//! The line a git preview replays in its clone, written from the parsed
//! line rather than edited as text.
//!
//! Replacing the repository's path in the text misses every other spelling
//! of it (`/srv//app`, `/srv/./app`, `/srv/ap''p`), and what is missed
//! reaches the real repository before anyone approved anything. So the line
//! is parsed with the grammar the policy judged it with, each word is taken
//! as the program will receive it (unquoted, unescaped) and normalised
//! (`//`, `/./`, `..` folded), and a new line is written in which every word
//! naming a path inside the repository points into the clone, quoted again.
//!
//! Why write a new line instead of splicing replacements into the old one
//! at the words' offsets: a splice keeps everything it did not touch, so a
//! construct the walk did not know (a word in `[[ ]]`, a `case` pattern, an
//! arithmetic expression, a function body) would reach the host as
//! written. Written out, the line holds only what the walk understood:
//! lists, pipelines, subshells and groups of simple commands with literal
//! words, assignments, redirections and here-documents. Anything else
//! refuses the line, and the approver sees the static plan instead.
//!
//! What cannot be moved into the clone refuses the line too: an absolute
//! path outside the repository, a word only known at run time (`$X`,
//! `$(…)`, a glob, `~`), a path inside a larger word (`-o/tmp/x`,
//! `--list=a,/tmp/b`, a sed script's `w /tmp/x`), a relative path whose
//! `..` climbs out of the repository, and the programs that name files or
//! run code in ways no word shows (sed scripts that read, write or run,
//! symbolic links whose targets resolve where they land, `sh -c`, `eval`,
//! wrappers, `find -exec`, git options that run programs). Relative paths
//! otherwise stay as written: they resolve in the clone's working
//! directory.

use std::path::Path;

use crate::error::GuardError;
use brush_parser::ast;
use jarvis_policy::analyze::{basename, normalize_path};
use jarvis_policy::dryrun::quote;
use jarvis_policy::shell;

/// The line to run in the clone, and the directory to run it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Replay {
    pub line: String,
    pub cwd: String,
}

/// `line`, run in `cwd` (the clone's top level when `None`), as it would
/// run in the clone at `clone` of the repository whose top level the line
/// may spell as any of `names`.
pub(super) fn replay(
    line: &str,
    cwd: Option<&str>,
    names: &[String],
    clone: &str,
) -> Result<Replay, GuardError> {
    // The policy's parse first: it bounds nesting and refuses the inputs
    // brush-parser is known to mishandle before brush sees them here.
    let script = shell::parse(line, "the previewed line", 0)
        .map_err(|e| GuardError::Replay(format!("{e}, so it is not replayed")))?;
    let program = brush_parser::Parser::new(line.as_bytes(), &Default::default())
        .parse_program()
        .map_err(|e| {
            GuardError::Replay(format!(
                "the line does not parse ({e}), so it is not replayed"
            ))
        })?;
    let mut names: Vec<String> = names.iter().map(|n| normalize_path(n)).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names.dedup();
    let mut mapper = Mapper {
        names,
        clone,
        climb: 0,
    };
    let (cwd, depth) = mapper.cwd(cwd)?;
    // A relative path may climb as far as the working directory is below
    // the top level. Once the line changes directory, where relative paths
    // start is no longer known here, so none may climb at all.
    if !changes_directory(&script) {
        mapper.climb = depth;
    }
    let mut writer = Writer {
        mapper,
        out: String::new(),
        pending: Vec::new(),
        heredoc_last: false,
    };
    for list in &program.complete_commands {
        writer.list(list)?;
    }
    let mut line = writer.out;
    if line.ends_with('\n') && !writer.heredoc_last {
        line.pop();
    }
    if line.trim().is_empty() {
        return Err(GuardError::Replay(
            "the line runs nothing, so it is not replayed".into(),
        ));
    }
    Ok(Replay { line, cwd })
}

/// Whether a command of the line moves to another directory (`cd`, or an
/// option that makes a program work elsewhere), after which relative paths
/// start somewhere this module cannot follow.
fn changes_directory(script: &shell::Script) -> bool {
    script.invocations.iter().any(|inv| {
        let first = inv.words.first().map(|w| basename(&w.text));
        matches!(first, Some("cd" | "pushd" | "popd"))
            || inv.words.iter().any(|w| {
                let t = w.text.as_str();
                t == "-C"
                    || ["--git-dir", "--work-tree", "--directory", "--chdir"]
                        .iter()
                        .any(|o| t.starts_with(o))
            })
    })
}

/// Bash's reserved words: a program of that name must stay quoted, or the
/// line written out would mean something else.
const RESERVED: &[&str] = &[
    "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
    "select", "then", "time", "until", "while", "[[", "]]",
];

/// Paths outside the repository a line may still name: the shell's own
/// ends of nowhere and of its standard streams.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
];

/// What each word becomes in the clone.
struct Mapper<'a> {
    /// The repository's top level under each spelling, longest first.
    names: Vec<String>,
    clone: &'a str,
    /// How many levels `..` may climb from where the line starts.
    climb: usize,
}

impl Mapper<'_> {
    /// The path relative to the top level when `norm` (normalised) is in
    /// the repository.
    fn inside<'p>(&self, norm: &'p str) -> Option<&'p str> {
        self.names.iter().find_map(|n| {
            if norm == n {
                Some("")
            } else {
                norm.strip_prefix(n.as_str())?.strip_prefix('/')
            }
        })
    }

    fn in_clone(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.clone.to_owned()
        } else {
            format!("{}/{rel}", self.clone)
        }
    }

    /// The working directory in the clone, and how deep it is below the
    /// top level.
    fn cwd(&self, cwd: Option<&str>) -> Result<(String, usize), GuardError> {
        let Some(c) = cwd else {
            return Ok((self.clone.to_owned(), 0));
        };
        if !c.starts_with('/') {
            return Err(GuardError::Replay(format!(
                "the working directory `{c}` is not an absolute path, so the line is not replayed"
            )));
        }
        let norm = normalize_path(c);
        match self.inside(&norm) {
            Some(rel) => Ok((
                self.in_clone(rel),
                rel.split('/').filter(|p| !p.is_empty()).count(),
            )),
            None => Err(GuardError::Replay(format!(
                "the working directory {norm} is outside the repository, so the line is not replayed"
            ))),
        }
    }

    /// A word as the program gets it (`text`, written `raw`), moved into
    /// the clone where it names a path in the repository.
    fn word(&self, raw: &str, text: &str) -> Result<String, GuardError> {
        if text.starts_with('/') {
            return self.path(raw, text);
        }
        if text.starts_with('-') && !text.starts_with("--") && text.contains('/') {
            return Err(GuardError::Replay(format!(
                "`{raw}` holds a path inside an option, where it cannot be moved into the clone, so the line is not replayed"
            )));
        }
        // `--git-dir=/srv/app/.git`, `if=…`, `NAME=…` given to a program.
        if let Some((key, value)) = text.split_once('=')
            && !key.is_empty()
            && !key.contains('/')
        {
            self.loose(raw, key)?;
            return Ok(format!("{key}={}", self.value(raw, value)?));
        }
        self.loose(raw, text)?;
        Ok(text.to_owned())
    }

    /// The value of an assignment or option.
    fn value(&self, raw: &str, value: &str) -> Result<String, GuardError> {
        if value.starts_with('/') {
            self.path(raw, value)
        } else {
            self.loose(raw, value)?;
            Ok(value.to_owned())
        }
    }

    /// An absolute path: into the clone when it is in the repository.
    fn path(&self, raw: &str, text: &str) -> Result<String, GuardError> {
        // A program may split the word at a separator (`/srv/app/a:/tmp/b`
        // for a list of paths), so what follows one is checked on its own.
        let first = text.find(|c| !is_path_char(c)).unwrap_or(text.len());
        self.loose(raw, &text[first..])?;
        let norm = normalize_path(text);
        // Nothing is kept of what goes to these, and they are no file of
        // the host's to change.
        if DEVICES.contains(&norm.as_str()) {
            return Ok(norm);
        }
        let Some(rel) = self.inside(&norm) else {
            return Err(GuardError::Replay(format!(
                "`{raw}` names {norm}, outside the repository, so it is not replayed"
            )));
        };
        let mut mapped = self.in_clone(rel);
        if text.ends_with('/') && !mapped.ends_with('/') {
            mapped.push('/');
        }
        Ok(mapped)
    }

    /// A word that is not an absolute path. Relative paths in it stay as
    /// written unless `..` climbs out of the repository; an absolute path
    /// after a separator cannot be moved, since only the program knows
    /// where the word is split.
    fn loose(&self, raw: &str, text: &str) -> Result<(), GuardError> {
        for token in text.split(|c| !is_path_char(c)) {
            if token.starts_with('/') && !token.trim_start_matches('/').is_empty() {
                return Err(GuardError::Replay(format!(
                    "`{raw}` holds the path {token} inside a larger word, where it cannot be moved into the clone, so the line is not replayed"
                )));
            }
            if climbs(token) > self.climb {
                return Err(GuardError::Replay(format!(
                    "`{raw}` leads out of the repository with `..`, so it is not replayed"
                )));
            }
        }
        Ok(())
    }
}

/// Characters a path component is commonly made of. Anything else inside a
/// word may be where a program splits it (`:`, `,`, `=`, spaces, quotes).
fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '~' | '^' | '@')
}

/// How many levels above its start a relative path's `..` reach.
fn climbs(path: &str) -> usize {
    let (mut depth, mut lowest) = (0isize, 0isize);
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                lowest = lowest.min(depth);
            }
            _ => depth += 1,
        }
    }
    lowest.unsigned_abs()
}

/// The unquoted text of one word as written in the line, refused unless
/// the program receives exactly that text.
fn unquote(raw: &str) -> Result<String, GuardError> {
    // `~` expands to a home directory at the start of a word and after `=`
    // or `:` in assignment-like words; none of those is in the repository.
    if raw.starts_with('~') || raw.contains("=~") || raw.contains(":~") {
        return Err(GuardError::Replay(format!(
            "`{raw}` names a home directory (`~`), outside the repository, so the line is not replayed"
        )));
    }
    // Read as the argument of a no-op, the word goes through the same
    // unquoting the policy judged it by.
    let script = shell::parse(&format!(": {raw}"), "a word of the previewed line", 0)
        .map_err(|e| GuardError::Replay(format!("{e}, so the line is not replayed")))?;
    match script.invocations.as_slice() {
        [inv] if inv.words.len() == 2 && script.opaque.is_empty() => {
            let word = &inv.words[1];
            if word.literal {
                Ok(word.text.clone())
            } else {
                Err(GuardError::Replay(format!(
                    "`{raw}` is only known when the line runs (an expansion or a pattern), so the line is not replayed"
                )))
            }
        }
        _ => Err(GuardError::Replay(format!(
            "`{raw}` runs or expands something of its own, so the line is not replayed"
        ))),
    }
}

/// A here-document waiting for the end of the line it was opened on.
struct HereDoc {
    delimiter: String,
    body: String,
}

/// Writes the line out from its syntax tree.
struct Writer<'a> {
    mapper: Mapper<'a>,
    out: String,
    pending: Vec<HereDoc>,
    heredoc_last: bool,
}

impl Writer<'_> {
    fn list(&mut self, list: &ast::CompoundList) -> Result<(), GuardError> {
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            self.pipeline(&and_or.first)?;
            for next in &and_or.additional {
                let (op, p) = match next {
                    ast::AndOr::And(p) => (" && ", p),
                    ast::AndOr::Or(p) => (" || ", p),
                };
                self.out.push_str(op);
                self.pipeline(p)?;
            }
            if matches!(separator, ast::SeparatorOperator::Async) {
                self.out.push_str(" &");
            }
            self.end_line();
        }
        Ok(())
    }

    /// Ends a line, and with it the bodies of the here-documents opened on it.
    fn end_line(&mut self) {
        self.out.push('\n');
        self.heredoc_last = !self.pending.is_empty();
        for doc in std::mem::take(&mut self.pending) {
            self.out.push_str(&doc.body);
            if !doc.body.is_empty() && !doc.body.ends_with('\n') {
                self.out.push('\n');
            }
            self.out.push_str(&doc.delimiter);
            self.out.push('\n');
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline) -> Result<(), GuardError> {
        if p.timed.is_some() {
            return Err(refused("`time`"));
        }
        if p.bang {
            self.out.push_str("! ");
        }
        for (i, command) in p.seq.iter().enumerate() {
            if i > 0 {
                self.out.push_str(" | ");
            }
            self.command(command)?;
        }
        Ok(())
    }

    fn command(&mut self, c: &ast::Command) -> Result<(), GuardError> {
        let (open, list, close, redirects) = match c {
            ast::Command::Simple(s) => return self.simple(s),
            ast::Command::Compound(ast::CompoundCommand::Subshell(s), r) => ("(", &s.list, ")", r),
            ast::Command::Compound(ast::CompoundCommand::BraceGroup(b), r) => {
                ("{", &b.list, "}", r)
            }
            ast::Command::Compound(other, _) => {
                let what = match other {
                    ast::CompoundCommand::ForClause(_)
                    | ast::CompoundCommand::ArithmeticForClause(_) => "a `for` loop",
                    ast::CompoundCommand::WhileClause(_) | ast::CompoundCommand::UntilClause(_) => {
                        "a `while` or `until` loop"
                    }
                    ast::CompoundCommand::IfClause(_) => "an `if`",
                    ast::CompoundCommand::CaseClause(_) => "a `case`",
                    ast::CompoundCommand::Arithmetic(_) => "arithmetic",
                    _ => "a compound command",
                };
                return Err(refused(what));
            }
            ast::Command::Function(_) => return Err(refused("a function definition")),
            ast::Command::ExtendedTest(..) => return Err(refused("`[[ … ]]`")),
        };
        self.out.push_str(open);
        self.end_line();
        self.list(list)?;
        self.out.push_str(close);
        for r in redirects.iter().flat_map(|r| &r.0) {
            let written = self.redirect(r)?;
            self.out.push(' ');
            self.out.push_str(&written);
        }
        Ok(())
    }

    fn simple(&mut self, s: &ast::SimpleCommand) -> Result<(), GuardError> {
        let mut parts = Vec::new();
        let mut words = Vec::new();
        for item in s.prefix.iter().flat_map(|p| &p.0) {
            match item {
                ast::CommandPrefixOrSuffixItem::AssignmentWord(a, _) => {
                    parts.push(self.assignment(a)?);
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => parts.push(self.redirect(r)?),
                ast::CommandPrefixOrSuffixItem::Word(w) => {
                    parts.push(self.argument(&w.value, &mut words)?);
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                    return Err(refused("a process substitution"));
                }
            }
        }
        if let Some(name) = &s.word_or_name {
            let written = self.argument(&name.value, &mut words)?;
            // Written plainly, `A=b` would become an assignment and `if` a
            // keyword: a program of such a name keeps its quotes.
            let plain = !written.starts_with('\'');
            if plain && (written.contains('=') || RESERVED.contains(&written.as_str())) {
                parts.push(format!("'{written}'"));
            } else {
                parts.push(written);
            }
        }
        for item in s.suffix.iter().flat_map(|p| &p.0) {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(w)
                | ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                    parts.push(self.argument(&w.value, &mut words)?);
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => parts.push(self.redirect(r)?),
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                    return Err(refused("a process substitution"));
                }
            }
        }
        program_names_files(&words)?;
        self.out.push_str(&parts.join(" "));
        Ok(())
    }

    /// One word of a command, quoted for the new line; `words` collects
    /// what the program receives, as written in the original.
    fn argument(&self, raw: &str, words: &mut Vec<String>) -> Result<String, GuardError> {
        let text = unquote(raw)?;
        let mapped = self.mapper.word(raw, &text)?;
        words.push(text);
        Ok(quote(&mapped))
    }

    fn assignment(&self, a: &ast::Assignment) -> Result<String, GuardError> {
        let ast::AssignmentName::VariableName(name) = &a.name else {
            return Err(refused("an assignment to an array element"));
        };
        let ast::AssignmentValue::Scalar(value) = &a.value else {
            return Err(refused("an array assignment"));
        };
        let text = if value.value.is_empty() {
            String::new()
        } else {
            unquote(&value.value)?
        };
        let mapped = self.mapper.value(&value.value, &text)?;
        let op = if a.append { "+=" } else { "=" };
        Ok(format!("{name}{op}{}", quote(&mapped)))
    }

    fn redirect(&mut self, r: &ast::IoRedirect) -> Result<String, GuardError> {
        let fd = |n: &Option<ast::IoFd>| n.map(|n| n.to_string()).unwrap_or_default();
        match r {
            ast::IoRedirect::File(n, kind, target) => match target {
                ast::IoFileRedirectTarget::Filename(w) => {
                    let text = unquote(&w.value)?;
                    let mapped = self.mapper.word(&w.value, &text)?;
                    Ok(format!("{}{kind} {}", fd(n), quote(&mapped)))
                }
                ast::IoFileRedirectTarget::Fd(to) => Ok(format!("{}{kind}{to}", fd(n))),
                ast::IoFileRedirectTarget::Duplicate(w) => {
                    let text = unquote(&w.value)?;
                    if text == "-" || (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                    {
                        Ok(format!("{}{kind}{text}", fd(n)))
                    } else {
                        // `>&file` writes the file; spelled that way it is
                        // easy to miss, so it is not replayed.
                        Err(refused(&format!("the redirection `{kind}{}`", w.value)))
                    }
                }
                ast::IoFileRedirectTarget::ProcessSubstitution(..) => {
                    Err(refused("a process substitution"))
                }
            },
            // Written out portably: `&>` means something else to a POSIX sh.
            ast::IoRedirect::OutputAndError(w, append) => {
                let text = unquote(&w.value)?;
                let mapped = self.mapper.word(&w.value, &text)?;
                let op = if *append { ">>" } else { ">" };
                Ok(format!("{op} {} 2>&1", quote(&mapped)))
            }
            ast::IoRedirect::HereString(n, w) => {
                let text = unquote(&w.value)?;
                let mapped = self.mapper.word(&w.value, &text)?;
                Ok(format!("{}<<< {}", fd(n), quote(&mapped)))
            }
            ast::IoRedirect::HereDocument(n, doc) => {
                let body = doc.doc.value.clone();
                // An unquoted delimiter makes the body expand like a word;
                // one with nothing to expand reads the same quoted.
                if doc.requires_expansion && body.contains(['$', '`', '\\']) {
                    return Err(refused(
                        "a here-document that expands variables or commands",
                    ));
                }
                let mut delimiter = "JARVIS_EOF".to_owned();
                while body.lines().any(|l| l == delimiter) {
                    delimiter.push('_');
                }
                let written = format!("{}<<'{delimiter}'", fd(n));
                // `<<-` has had its tabs removed by the parser already.
                self.pending.push(HereDoc { delimiter, body });
                Ok(written)
            }
        }
    }
}

fn refused(what: &str) -> GuardError {
    GuardError::Replay(format!(
        "the line uses {what}, which a preview does not replay"
    ))
}

/// Programs that run a string as shell code, or run another program with
/// words this walk would read as plain arguments (`nice sh -c '…'`), or
/// take their arguments from elsewhere (`xargs`). The gateway's scope never
/// offers a live preview for them; this keeps them out on the host as well.
const RUNNERS: &[&str] = &[
    "eval", "source", ".", "exec", "command", "builtin", "sh", "bash", "dash", "zsh", "ksh",
    "mksh", "ash", "busybox", "env", "xargs", "sudo", "su", "doas", "runuser", "nice", "nohup",
    "timeout", "setsid", "stdbuf", "watch", "flock", "chroot", "unshare", "nsenter",
];

/// Refuses the programs whose arguments name files in ways the words do
/// not show, or whose files resolve somewhere other than their words say.
fn program_names_files(words: &[String]) -> Result<(), GuardError> {
    let Some((program, args)) = words.split_first() else {
        return Ok(());
    };
    let options = || args.iter().take_while(|a| *a != "--");
    let short_has = |a: &str, c: char| a.starts_with('-') && !a.starts_with("--") && a.contains(c);
    match basename(program) {
        name if RUNNERS.contains(&name) => Err(GuardError::Replay(format!(
            "`{name}` runs what its words only describe, which a preview does not replay"
        ))),
        "find"
            if args.iter().any(|a| {
                matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")
                    || a.starts_with("-fprint")
                    || a == "-fls"
            }) =>
        {
            Err(GuardError::Replay("`find` runs or writes what its words only describe (`-exec`, `-fprint`), which a preview does not replay".into()))
        }
        "git"
            if options().any(|a| {
                a == "-c"
                    || ["--config-env", "--exec-path", "--exec", "--upload-pack", "--receive-pack"]
                        .iter()
                        .any(|o| a.starts_with(o))
            }) || (args.iter().any(|a| a == "rebase") && options().any(|a| a == "-x")) =>
        {
            Err(GuardError::Replay("the line sets a program for git to run (`-c`, `--exec`, …), which a preview does not replay".into()))
        }
        "sed" | "gsed" => sed::check(args),
        "ln" if options().any(|a| a == "--symbolic" || short_has(a, 's')) => Err(GuardError::Replay(

            "`ln -s` makes a link whose target is read from where the link lands, which a preview cannot keep inside the clone; the line is not replayed"
                .into()),
        ),
        "cp" if options().any(|a| a == "--symbolic-link" || short_has(a, 's')) => Err(GuardError::Replay(

            "`cp -s` makes links whose targets are read from where they land, which a preview cannot keep inside the clone; the line is not replayed"
                .into()),
        ),
        "cd" => match args {
            [] => Err(GuardError::Replay("`cd` alone goes to the home directory, outside the repository, so the line is not replayed".into())),
            [dir] if dir == "-" => Err(GuardError::Replay("`cd -` goes to a directory the line does not name, so it is not replayed".into())),
            _ => Ok(()),
        },
        "pushd" | "popd" => Err(GuardError::Replay(

            "the directory stack (`pushd`, `popd`) leads to directories the line does not name, so it is not replayed"
                .into()),
        ),
        _ => Ok(()),
    }
}

/// The links in a clone's working tree must lead nowhere but further down
/// from where they are: a relative target without `..`, at least one name
/// deep. An absolute target (even one into the real repository) or one
/// that climbs would take a write through the link out of the clone, and a
/// link to `.` would make a later `..` climb further than its words say.
pub(super) fn check_links(clone: &Path) -> Result<(), GuardError> {
    fn walk(root: &Path, dir: &Path) -> Result<(), GuardError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            GuardError::Replay(format!(
                "cannot read {} in the preview's clone: {e}",
                dir.display()
            ))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                GuardError::Replay(format!(
                    "cannot read {} in the preview's clone: {e}",
                    dir.display()
                ))
            })?;
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            if dir == root && entry.file_name() == ".git" {
                continue;
            }
            let kind = entry
                .file_type()
                .map_err(|e| GuardError::Replay(format!("cannot read {}: {e}", path.display())))?;
            if kind.is_dir() {
                walk(root, &path)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| {
                    GuardError::Replay(format!("cannot read the link {}: {e}", path.display()))
                })?;
                let t = target.to_string_lossy();
                let down = !t.starts_with('/')
                    && t.split('/').all(|p| p != "..")
                    && t.split('/').any(|p| !p.is_empty() && p != ".");
                if !down {
                    return Err(GuardError::Replay(format!(
                        "the repository holds the link {} → {t}, which a command could follow out of the preview's clone, so the line is not replayed",
                        rel.display()
                    )));
                }
            }
        }
        Ok(())
    }
    walk(clone, clone)
}

/// Reading sed scripts for the commands that name files, with the
/// policy's reader ([`jarvis_policy::sed`]), so that what a preview replays
/// and what the policy judged are the same reading of the script.
mod sed {
    use crate::error::GuardError;

    /// Refuses a sed invocation whose script may read, write or run
    /// anything besides the files it edits: `r`, `R`, `w`, `W`, `e`, the `w`
    /// and `e` flags of `s`, or a script from a file. A script the reader
    /// cannot follow is refused too.
    pub(super) fn check(args: &[String]) -> Result<(), GuardError> {
        let e = jarvis_policy::sed::effects(args);
        let why = if e.from_file {
            "comes from a file"
        } else if !e.runs.is_empty() {
            "runs a command (`e`)"
        } else if !e.writes.is_empty() {
            "writes a file (`w`)"
        } else if !e.reads.is_empty() {
            "reads a file (`r`)"
        } else if e.unreadable {
            "cannot be read here"
        } else {
            return Ok(());
        };
        Err(GuardError::Replay(format!(
            "its sed script {why}, which a preview cannot keep inside the clone; the line is not replayed"
        )))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn args(words: &[&str]) -> Vec<String> {
            words.iter().map(|w| (*w).to_owned()).collect()
        }

        #[test]
        fn scripts_that_touch_other_files_are_refused() {
            for bad in [
                &["-i", "s/a/b/w /tmp/x", "f"][..],
                &["-i", "s/a/b/w/tmp/x", "f"],
                &["-i", "s|a|b|gw out", "f"],
                &["s/a/b/e", "f"],
                &["-n", "-e", "p", "-e", "w out", "f"],
                &["--expression=1r /etc/passwd", "f"],
                &["-ne", "/x/W log", "f"],
                &["-f", "script.sed", "f"],
                &["--file=script.sed", "f"],
                &["-i", "$!{N};e date", "f"],
                &["-i", "s/a/b/;1 R other", "f"],
                &["-i", "y/abc/xyz/;w x", "f"],
                &["-i", "s/[/]/x/w out", "f"],
                &["-i", "s/a/b", "f"],
            ] {
                assert!(check(&args(bad)).is_err(), "{bad:?}");
            }
        }

        #[test]
        fn scripts_that_only_edit_are_replayed() {
            for good in [
                &["-i", "s/a/b/", "f"][..],
                &["-i.bak", "-E", "s/port = [0-9]+/port = 8080/g", "f"],
                &["-i", "-e", "s#x#y#2", "-e", "/^#/d", "f"],
                &["-i", "1,/end/{s/a/b/;p}", "f"],
                &["-i", "$a\\\nlast line", "f"],
                &["-n", "/start/,+2p", "f"],
                &["-i", "s/x/w/", "f"],
                &["-i", ":a;N;$!ba;s/\\n/ /g", "f"],
                &["--in-place", "--expression", "2~3d", "f"],
            ] {
                assert_eq!(check(&args(good)), Ok(()), "{good:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLONE: &str = "/tmp/jarvis-preview-x";

    fn names() -> Vec<String> {
        vec!["/srv/app".to_owned(), "/data/app-real".to_owned()]
    }

    fn line(command: &str) -> Result<String, GuardError> {
        line_in(command, None)
    }

    fn line_in(command: &str, cwd: Option<&str>) -> Result<String, GuardError> {
        replay(command, cwd, &names(), CLONE).map(|r| r.line)
    }

    #[test]
    fn every_spelling_of_the_repository_lands_in_the_clone() {
        for spelled in [
            "/srv/app/f",
            "/srv//app/f",
            "/srv/./app/f",
            "/srv/ap''p/f",
            "\"/srv/app\"/f",
            "/srv/a\\pp/f",
            "$'/srv/\\x61pp/f'",
            "/srv/other/../app/f",
            "/srv/app/sub/../f",
            "/data/app-real/f",
            "/data/./app-real//f",
        ] {
            assert_eq!(
                line(&format!("rm {spelled}")),
                Ok(format!("rm {CLONE}/f")),
                "{spelled}"
            );
        }
        assert_eq!(line("rm -r /srv/app"), Ok(format!("rm -r {CLONE}")));
        assert_eq!(line("ls /srv/app/sub/"), Ok(format!("ls {CLONE}/sub/")));
    }

    #[test]
    fn quoted_pieces_are_unquoted_and_quoted_again() {
        assert_eq!(
            line("echo 'a b' \"it's\" > '/srv/app/my file'"),
            Ok(format!("echo 'a b' 'it'\\''s' > '{CLONE}/my file'"))
        );
        assert_eq!(
            line("git -C /srv/a''pp commit -qm 'fix: port = 8080'"),
            Ok(format!("git -C {CLONE} commit -qm 'fix: port = 8080'"))
        );
        assert_eq!(
            line("git --git-dir=/srv/app/.git --work-tree=\"/srv//app\" status"),
            Ok(format!(
                "git --git-dir={CLONE}/.git --work-tree={CLONE} status"
            ))
        );
        // A program whose name reads as an assignment or a keyword keeps
        // its quotes.
        assert_eq!(line("'A=b' x"), Ok("'A=b' x".into()));
        assert_eq!(line("'if' x"), Ok("'if' x".into()));
    }

    #[test]
    fn redirect_targets_are_mapped_or_refused() {
        assert_eq!(
            line("echo hacked > /srv//app/grafana.ini 2>&1"),
            Ok(format!("echo hacked > {CLONE}/grafana.ini 2>&1"))
        );
        assert_eq!(
            line("echo x >> /srv/./app/log &> /srv/app/all"),
            Ok(format!("echo x >> {CLONE}/log > {CLONE}/all 2>&1"))
        );
        assert_eq!(
            line("cat < /srv/app/in | tee /srv/app/out >/dev/null 2>/dev//stderr"),
            Ok(format!(
                "cat < {CLONE}/in | tee {CLONE}/out > /dev/null 2> /dev/stderr"
            ))
        );
        let err = line("echo x > /tmp/outside")
            .expect_err("outside")
            .to_string();
        assert_eq!(
            err,
            "`/tmp/outside` names /tmp/outside, outside the repository, so it is not replayed"
        );
        let err = line("echo x >& /tmp/outside")
            .expect_err("a file by duplication")
            .to_string();
        assert!(err.contains("which a preview does not replay"), "{err}");
        let err = line("echo x > /srv/app/../outside")
            .expect_err("folded out")
            .to_string();
        assert!(err.contains("names /srv/outside, outside"), "{err}");
    }

    #[test]
    fn paths_outside_the_repository_refuse_the_line() {
        for (command, named) in [
            ("sed -i s/a/b/ /srv/app/f /etc/hosts", "/etc/hosts"),
            ("cp /srv/app/f /tmp/outside-x", "/tmp/outside-x"),
            ("rm /srv/app-other/f", "/srv/app-other/f"),
            ("rm /srv/apple", "/srv/apple"),
            ("cat /srv/app/../../etc/shadow", "/etc/shadow"),
            ("git --git-dir=/tmp/evil/.git status", "/tmp/evil/.git"),
            ("GIT_DIR=/tmp/evil git status", "/tmp/evil"),
        ] {
            let err = line(command).expect_err(command).to_string();
            assert!(
                err.contains(&format!("names {named}, outside the repository")),
                "{command}: {err}"
            );
        }
        for command in [
            "cp /srv/app/f -t/tmp",
            "git diff --output=x,/tmp/y",
            "sed -i 's/a/b/w /tmp/outside' /srv/app/f",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES=/srv/app/o:/tmp/o git status",
            "git commit -m 'see /etc/passwd'",
        ] {
            let err = line(command).expect_err(command).to_string();
            assert!(
                err.contains("cannot be moved into the clone"),
                "{command}: {err}"
            );
        }
    }

    #[test]
    fn dot_dot_may_not_climb_out_of_the_repository() {
        let err = line("echo x > ../outside")
            .expect_err("above the top level")
            .to_string();
        assert_eq!(
            err,
            "`../outside` leads out of the repository with `..`, so it is not replayed"
        );
        assert!(line("rm sub/../../x").is_err());
        assert!(line("sed -i 's/a/b/w ../../x' f").is_err());
        assert!(line("cp f x:../y").is_err());
        // From a directory below the top level, as far as the top.
        let sub = Some("/srv/app/a/b");
        assert_eq!(line_in("rm ../../x", sub), Ok("rm ../../x".into()));
        assert!(line_in("rm ../../../x", sub).is_err());
        // Once the line changes directory, relative paths may not climb.
        assert!(line_in("cd /srv/app && rm ../x", sub).is_err());
        assert!(line_in("git -C .. status", sub).is_err());
        assert_eq!(
            line_in("cd /srv/app/a && rm x", sub),
            Ok(format!("cd {CLONE}/a && rm x"))
        );
        // `..` inside a name is no climb.
        assert_eq!(
            line("git log HEAD~1..main"),
            Ok("git log 'HEAD~1..main'".into())
        );
    }

    #[test]
    fn the_working_directory_is_mapped_or_refuses_the_line() {
        let r = replay("rm x", Some("/srv//app/./sub"), &names(), CLONE).expect("inside");
        assert_eq!(r.cwd, format!("{CLONE}/sub"));
        let r = replay("rm x", None, &names(), CLONE).expect("none");
        assert_eq!(r.cwd, CLONE);
        let err = replay("rm x", Some("/srv/app/../etc"), &names(), CLONE)
            .expect_err("outside")
            .to_string();
        assert_eq!(
            err,
            "the working directory /srv/etc is outside the repository, so the line is not replayed"
        );
    }

    #[test]
    fn words_known_only_at_run_time_refuse_the_line() {
        for command in [
            "rm $F",
            "rm \"$HOME/x\"",
            "rm /srv/app/*.conf",
            "rm /srv/app/{a,b}",
            "rm ~/x",
            "rm ~root/x",
            "A=~/x git status",
            "echo $(touch /tmp/x) > /srv/app/f",
            "echo `id` > /srv/app/f",
            "cat <(ls) > /srv/app/f",
            "echo $((1+2))",
        ] {
            assert!(line(command).is_err(), "{command}");
        }
    }

    #[test]
    fn only_understood_constructs_are_written_out() {
        assert_eq!(
            line(
                "git -C /srv/app add -A && git -C /srv/app commit -qm x || echo failed; ls /srv/app &"
            ),
            Ok(format!(
                "git -C {CLONE} add -A && git -C {CLONE} commit -qm x || echo failed\nls {CLONE} &"
            ))
        );
        assert_eq!(
            line("( cd /srv/app && rm f ) > /srv/app/log; { echo a; } | tee /srv/app/b"),
            Ok(format!(
                "(\ncd {CLONE} && rm f\n) > {CLONE}/log\n{{\necho a\n}} | tee {CLONE}/b"
            ))
        );
        assert_eq!(
            line("cat > /srv/app/f <<EOF\nport = 80\nEOF\necho done"),
            Ok(format!(
                "cat > {CLONE}/f <<'JARVIS_EOF'\nport = 80\nJARVIS_EOF\necho done"
            ))
        );
        assert_eq!(
            line("cat > /srv/app/f <<'E'\nJARVIS_EOF\n$x\nE"),
            Ok(format!(
                "cat > {CLONE}/f <<'JARVIS_EOF_'\nJARVIS_EOF\n$x\nJARVIS_EOF_\n"
            ))
        );
        assert!(line("cat > /srv/app/f <<EOF\n$HOME\nEOF").is_err());
        assert_eq!(
            line("echo a |& tee /srv/app/x"),
            Ok(format!("echo a 2>&1 | tee {CLONE}/x"))
        );
        for command in [
            "for f in a b; do rm /srv/app/$f; done",
            "if true; then rm /srv/app/f; fi",
            "while false; do :; done",
            "case x in x) rm /srv/app/f;; esac",
            "f() { rm /srv/app/f; }; f",
            "[[ -e /srv/app/f ]] && rm /srv/app/f",
            "time rm /srv/app/f",
        ] {
            let err = line(command).expect_err(command).to_string();
            assert!(
                err.contains("a preview does not replay"),
                "{command}: {err}"
            );
        }
    }

    #[test]
    fn links_and_directory_stacks_are_not_replayed() {
        for command in [
            "ln -s ../../../etc/passwd /srv/app/x",
            "ln -sf x /srv/app/y",
            "ln --symbolic x /srv/app/y",
            "cp -s /srv/app/x /srv/app/y",
            "cd",
            "cd -",
            "pushd /srv/app",
            "eval 'cd; rm x'",
            "sh -c 'cd; rm x'",
            "nice sh -c 'cd; rm x'",
            "xargs rm < /srv/app/list",
            "find . -exec sh -c 'cd; rm x' ';'",
            "find . -fprint x",
            "git -c core.fsmonitor=./x -C /srv/app commit -qam x",
            "git -C /srv/app rebase -x 'make' main",
            "git -C /srv/app rebase --exec=make main",
        ] {
            assert!(line(command).is_err(), "{command}");
        }
        assert_eq!(
            line("ln /srv/app/x /srv/app/y"),
            Ok(format!("ln {CLONE}/x {CLONE}/y"))
        );
    }

    #[test]
    fn links_in_the_clone_must_lead_further_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git/x")).expect("git dir");
        std::os::unix::fs::symlink("/etc", root.join(".git/x/ignored")).expect("link");
        std::fs::create_dir_all(root.join("sub")).expect("sub");
        std::os::unix::fs::symlink("sub/file", root.join("down")).expect("link");
        std::os::unix::fs::symlink("./other", root.join("sub/next")).expect("link");
        assert_eq!(check_links(root), Ok(()));
        for (name, target) in [
            ("sub/abs", "/srv/app/f"),
            ("sub/up", "../sub/file"),
            ("here", "."),
        ] {
            let link = root.join(name);
            std::os::unix::fs::symlink(target, &link).expect("link");
            let err = check_links(root).expect_err(name).to_string();
            assert!(
                err.contains(&format!("the link {name} → {target}")),
                "{err}"
            );
            std::fs::remove_file(&link).expect("remove");
        }
    }
}
