//! Code behind a decoder: a shell, `eval`, `source` or an interpreter fed
//! from `base64 -d`, `xxd -r`, `rev` and the like.

use std::sync::LazyLock;

// Named so, because `code` is what this module calls the code it reads.
use jarvis_core::text::code as code_span;
use regex::Regex;

use crate::analyze::basename;
use crate::shell::{self, Context, Invocation, Script, Word};

use super::languages::{DECODER_CALL, is_interpreter, is_runner, is_shell};
use super::{Call, Input};

/// Whether the words of a command decode or unscramble text, and how it is
/// written for a reason.
pub(super) fn decoder(words: &[Word]) -> Option<String> {
    let (first, args) = words.split_first()?;
    let name = basename(&first.text);
    let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    let short = |c: char| {
        texts
            .iter()
            .any(|t| t.starts_with('-') && !t.starts_with("--") && t[1..].contains(c))
    };
    let has = |s: &str| texts.contains(&s);
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let decodes = match name {
        "base64" | "base32" | "basenc" | "b64" | "base58" => {
            short('d') || short('D') || has("--decode")
        }
        "xxd" => short('r') || has("--revert"),
        "openssl" => texts
            .iter()
            .any(|t| matches!(*t, "-d" | "-decrypt" | "--decrypt")),
        "gzip" | "bzip2" | "xz" | "lzma" | "zstd" | "lz4" | "brotli" | "pigz" | "pbzip2"
        | "lzip" | "lzop" | "compress" => short('d') || has("--decompress") || has("--uncompress"),
        "gunzip" | "zcat" | "gzcat" | "bzcat" | "bunzip2" | "xzcat" | "unxz" | "unlzma"
        | "lzcat" | "zstdcat" | "unzstd" | "lz4cat" | "unlz4" | "uncompress" | "unpigz"
        | "uudecode" | "rev" | "tac" | "iconv" | "recode" => true,
        "tr" => texts.iter().filter(|t| !t.starts_with('-')).count() >= 2,
        "printf" => texts.iter().any(|t| ESCAPED.is_match(t)),
        "echo" => short('e') && texts.iter().any(|t| ESCAPED.is_match(t)),
        "gpg" | "gpg2" | "age" | "rage" => short('d') || has("--decrypt"),
        "sed" => texts
            .iter()
            .any(|t| t.starts_with("y/") || t.contains(";y/")),
        _ if is_interpreter(stem) => texts.iter().any(|t| DECODER_CALL.is_match(t)),
        _ => false,
    };
    decodes.then(|| {
        let shown: Vec<&str> = std::iter::once(name)
            .chain(texts.iter().copied().take(3))
            .collect();
        shell::truncate(&shown.join(" "), 40)
    })
}

static ESCAPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(x[0-9a-fA-F]|[0-7]{2,3}|u[0-9a-fA-F]{2}|U[0-9a-fA-F]{4})")
        .expect("the escape pattern is valid")
});

/// Whether a runner reads the code it runs from standard input: no inline
/// code and no script file, or a script named `-` or `/dev/stdin`; under
/// `xargs`, what it reads becomes its arguments.
fn code_on_stdin(name: &str, call: &Call) -> bool {
    if call.via.last().is_some_and(|v| v.starts_with("xargs")) {
        return true;
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let mut i = 0;
    let args = call.args;
    while i < args.len() {
        let t = args[i].text.as_str();
        if matches!(t, "-" | "/dev/stdin" | "/proc/self/fd/0" | "/dev/fd/0") {
            return true;
        }
        if t == "--" || !(t.starts_with('-') || (t.starts_with('+') && is_shell(name))) {
            // A script file, or what `eval` and `source` are given.
            return false;
        }
        let inline = if is_shell(name) {
            !t.starts_with("--") && t[1..].contains('c')
        } else {
            matches!(
                t,
                "-c" | "-e" | "-E" | "-r" | "-R" | "-B" | "-F" | "-m" | "-p" | "--eval" | "--print"
            ) || (stem == "perl" && t.starts_with('-') && t.contains(['e', 'E']))
        };
        if inline {
            return false;
        }
        if is_shell(name) && t.contains('s') && !t.starts_with("--") {
            return true;
        }
        if matches!(
            t,
            "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file" | "-W" | "-X" | "-I" | "-M"
        ) {
            i += 1;
        }
        i += 1;
    }
    // Without words, `eval` and `source` run nothing.
    !matches!(name, "eval" | "source" | ".")
}

/// `echo … | base64 -d | sh`: a runner that reads its code from a decoder.
pub(super) fn decoded_stdin(name: &str, call: &Call) -> Option<String> {
    if !is_runner(name) || !code_on_stdin(name, call) {
        return None;
    }
    let Input::Pipe(up) = call.stdin else {
        return None;
    };
    let d = up.iter().find_map(|w| decoder(w))?;
    Some(format!(
        "{} runs what {} decodes, so what it runs is hidden from review",
        code_span(name),
        code_span(&d)
    ))
}

/// `sh -c "$(echo … | base64 -d)"`, `bash <(xxd -r -p <<< …)`, `eval
/// $(rev <<< …)`, `$(… | base64 -d)`: an invocation that runs code and
/// takes a word from a substitution that decodes.
pub(crate) fn decoded_substitution(inv: &Invocation, script: &Script) -> Option<String> {
    let k = script
        .invocations
        .iter()
        .position(|x| std::ptr::eq(x, inv))?;
    let depth = inv.context.len();
    let mut d = None;
    for j in (0..k).rev() {
        let s = &script.invocations[j];
        let inside = s.context.len() > depth
            && s.context[..depth] == inv.context[..]
            && matches!(
                s.context[depth],
                Context::CommandSubstitution | Context::ProcessSubstitution
            );
        if !inside {
            break;
        }
        if d.is_none() {
            d = decoder(&s.words);
        }
    }
    let d = d?;
    let dynamic = inv.words.first().is_some_and(|w| !w.literal);
    let runner = inv
        .words
        .iter()
        .filter(|w| w.literal)
        .map(|w| basename(&w.text))
        .find(|n| is_runner(n));
    match (dynamic, runner) {
        (true, _) => Some(format!(
            "the program is whatever {} decodes, hidden from review",
            code_span(&d)
        )),
        (false, Some(r)) => Some(format!(
            "{} runs what {} decodes, so what it runs is hidden from review",
            code_span(r),
            code_span(&d)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catastrophe::tests::w;

    #[test]
    fn decoders() {
        let d = |s: &str| decoder(&s.split(' ').map(w).collect::<Vec<_>>());
        assert!(d("base64 -d").is_some());
        assert!(d("base64 --decode").is_some());
        assert!(d("base64").is_none());
        assert!(d("xxd -r -p").is_some());
        assert!(d("xxd /bin/ls").is_none());
        assert!(d("tr a-z n-za-m").is_some());
        assert!(d("tr -d \\r").is_none());
        assert!(d("gzip -dc").is_some());
        assert!(d("gzip -c").is_none());
        assert!(d("rev").is_some());
        assert!(d("printf \\x72").is_some());
        assert!(d("printf %s\\n").is_none());
    }
}
