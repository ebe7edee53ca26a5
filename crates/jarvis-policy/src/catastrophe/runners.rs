//! Commands other commands hand on: the positional parameters of
//! `sh -c STRING ARGS`, what `xargs` builds from its input, and what
//! `find -exec` runs on the files it finds.

// Named so, because `code` is what this module calls the code it reads.

use crate::analyze::basename;
use crate::shell::Word;

use super::lines::{quote, quoted_line};
use super::run_time::{escape_double, every_process};
use super::{Call, Input, Reading};

/// `sh -c 'rm -rf "$1"' _ /`: the string with its positional parameters
/// given the words after it.
pub(super) fn shell_positionals(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut command_mode = false;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !(t.starts_with('-') || t.starts_with('+')) || t.len() < 2 {
            break;
        }
        if matches!(t, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file") {
            i += 1;
        } else if !t.starts_with("--") && t[1..].contains('c') {
            command_mode = true;
        }
        i += 1;
    }
    if !command_mode {
        return;
    }
    let Some((script, params)) = args.get(i..).and_then(<[Word]>::split_first) else {
        return;
    };
    if !script.literal || params.is_empty() || !script.text.contains('$') {
        return;
    }
    let params: Vec<String> = params.iter().map(|p| p.text.clone()).collect();
    r.lines.push(give_positionals(&script.text, &params));
}

/// Replaces `$0`…`$9`, `$@` and `$*` in shell text by the given words,
/// quoted for where they stand.
fn give_positionals(script: &str, params: &[String]) -> String {
    let chars: Vec<char> = script.chars().collect();
    let mut out = String::new();
    let mut in_double = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' if !in_double => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '\'')
                    .map_or(chars.len(), |p| i + 2 + p);
                out.extend(&chars[i..close]);
                i = close;
            }
            '\\' => {
                let end = (i + 2).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            '"' => {
                in_double = !in_double;
                out.push('"');
                i += 1;
            }
            '$' => {
                let (name, len) = match (chars.get(i + 1), chars.get(i + 2), chars.get(i + 3)) {
                    (Some('{'), Some(n), Some('}')) => (*n, 4),
                    (Some(n), _, _) => (*n, 2),
                    _ => (' ', 1),
                };
                let values: Vec<&String> = match name {
                    '0'..='9' => {
                        let k = name as usize - '0' as usize;
                        params.get(k).into_iter().collect()
                    }
                    '@' | '*' => params.iter().skip(1).collect(),
                    _ => {
                        out.push('$');
                        i += 1;
                        continue;
                    }
                };
                let text: Vec<String> = values
                    .iter()
                    .map(|v| {
                        if in_double {
                            escape_double(v)
                        } else {
                            quote(v)
                        }
                    })
                    .collect();
                out.push_str(&text.join(" "));
                i += len;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

/// What an earlier command of a pipeline prints, as far as `xargs` cares:
/// the paths `find` starts from (it prints each first), and every process
/// for a listing of them (`-1`, to `kill`).
fn piped_items(up: &[Vec<Word>]) -> Vec<String> {
    let mut items = Vec::new();
    for words in up {
        let Some((first, args)) = words.split_first() else {
            continue;
        };
        let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
        match basename(&first.text) {
            "find" => items.extend(find_starts(args)),
            "ps" if every_process(&texts) => items.push("-1".into()),
            "pgrep" | "pidof" if texts.iter().any(|t| matches!(*t, "." | ".*" | "^")) => {
                items.push("-1".into())
            }
            _ => {}
        }
    }
    items
}

/// The paths `find` starts from (the working directory when none).
fn find_starts(args: &[Word]) -> Vec<String> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if matches!(t, "-H" | "-L" | "-P") || t.starts_with("-O") {
            i += 1;
            continue;
        }
        if t == "-D" {
            i += 2;
            continue;
        }
        if t.starts_with('-') || t == "(" || t == "!" {
            break;
        }
        starts.push(args[i].raw.clone());
        i += 1;
    }
    if starts.is_empty() {
        starts.push(".".into());
    }
    starts
}

/// `echo / | xargs rm -rf`, `find / | xargs -0 rm -rf`,
/// `xargs -I{} sh -c 'rm -rf {}' <<< /etc`: the command with the items it
/// would be handed.
pub(super) fn xargs(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut replace: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        match t {
            "-I" => {
                replace = args.get(i + 1).map(|a| a.text.clone());
                i += 2;
                continue;
            }
            "-i" | "--replace" => replace = Some("{}".into()),
            "-a" | "--arg-file" | "-d" | "--delimiter" | "-E" | "-L" | "--max-lines" | "-n"
            | "--max-args" | "-P" | "--max-procs" | "-s" | "--max-chars" => {
                i += 2;
                continue;
            }
            _ => {
                if let Some(v) = t.strip_prefix("--replace=") {
                    replace = Some(v.to_owned());
                } else if let Some(v) = t.strip_prefix("-I") {
                    replace = Some(v.to_owned());
                } else if let Some(v) = t.strip_prefix("-i") {
                    replace = Some(if v.is_empty() {
                        "{}".into()
                    } else {
                        v.to_owned()
                    });
                }
            }
        }
        i += 1;
    }
    let rest = args.get(i..).unwrap_or(&[]);
    let items: Vec<String> = match call.stdin {
        Input::Text(w) if w.literal => w.text.split_whitespace().map(str::to_owned).collect(),
        Input::Pipe(up) => piped_items(up)
            .into_iter()
            .map(|s| s.trim_matches(['\'', '"']).to_owned())
            .collect(),
        Input::Nothing | Input::Text(_) => Vec::new(),
    };
    if items.is_empty() {
        return;
    }
    let command: Vec<String> = if rest.is_empty() {
        vec!["echo".into()]
    } else {
        rest.iter().map(|w| w.text.clone()).collect()
    };
    match replace {
        Some(pattern) if !pattern.is_empty() => {
            for item in items.iter().take(8) {
                let words: Vec<String> =
                    command.iter().map(|w| w.replace(&pattern, item)).collect();
                r.lines.push(quoted_line(&words));
            }
        }
        _ => {
            let mut words = command;
            words.extend(items.into_iter().take(64));
            r.lines.push(quoted_line(&words));
        }
    }
}

/// `find / -exec sh -c '…' _ {} \;`: each command `-exec` runs, with `{}`
/// given each path `find` starts from (the first it finds).
pub(super) fn find_exec(call: &Call, r: &mut Reading) {
    let args = call.args;
    let starts = find_starts(args);
    let mut i = 0;
    while i < args.len() {
        if matches!(
            args[i].text.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir"
        ) {
            let end = args[i + 1..]
                .iter()
                .position(|w| matches!(w.text.as_str(), ";" | "+"))
                .map_or(args.len(), |p| i + 1 + p);
            let argv = &args[i + 1..end];
            if argv.iter().any(|w| w.text.contains("{}")) {
                for start in starts.iter().take(8) {
                    let start = start.trim_matches(['\'', '"']);
                    let words: Vec<String> =
                        argv.iter().map(|w| w.text.replace("{}", start)).collect();
                    r.lines.push(quoted_line(&words));
                }
            }
            i = end;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catastrophe::tests::read_line;

    #[test]
    fn positional_parameters_of_a_shell_string() {
        assert_eq!(
            give_positionals(r#"rm -rf "$1" $0 '$1'"#, &["_".into(), "/".into()]),
            r#"rm -rf "/" '_' '$1'"#
        );
        let r = read_line("sh", &["-c", "rm -rf \"$@\"", "_", "/etc", "/usr"]);
        assert_eq!(r.lines, vec![r#"rm -rf "/etc /usr""#.to_owned()]);
    }
}
