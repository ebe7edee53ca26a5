//! Globs over paths: how the shell matches one component, and whether a
//! glob can name a path, lie within a directory, name all of it, or be in
//! a directory of a given name.

/// One piece of a glob component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `[…]`
    Class(CharClass),
    /// `*`
    Star,
    /// An extglob group, or anything else this reader does not follow: any
    /// name, hidden ones too.
    Anything,
}

/// A bracket expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CharClass {
    negated: bool,
    pub(super) ranges: Vec<(char, char)>,
}

impl CharClass {
    pub(super) fn has(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != self.negated
    }
}

/// The pieces of one path component; every character is literal when the
/// word is no glob.
pub(super) fn tokens(comp: &str, glob: bool) -> Vec<Tok> {
    let chars: Vec<char> = comp.chars().collect();
    if !glob {
        return chars.into_iter().map(Tok::Lit).collect();
    }
    // `@(a|b)`, `!(x)`, `+(…)`, `*(…)`, `?(…)` under extglob: read as any
    // name rather than guessed at.
    if chars
        .windows(2)
        .any(|w| matches!(w[0], '@' | '!' | '+' | '*' | '?') && w[1] == '(')
    {
        return vec![Tok::Anything];
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Tok::One);
                i += 1;
            }
            '[' => match bracket(&chars[i..]) {
                Some((class, len)) => {
                    out.push(Tok::Class(class));
                    i += len;
                }
                None => {
                    out.push(Tok::Lit('['));
                    i += 1;
                }
            },
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// A bracket expression at the start of `chars` (which begins with `[`),
/// with its length; `None` when no `]` closes it, so the `[` is literal.
pub(super) fn bracket(chars: &[char]) -> Option<(CharClass, usize)> {
    let mut i = 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((CharClass { negated, ranges }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let end = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == ':' && chars.get(j + 1) == Some(&']'));
            if let Some(end) = end {
                let name: String = chars[i + 2..end].iter().collect();
                ranges.extend(posix_class(&name));
                i = end + 2;
                continue;
            }
        }
        if chars.get(i + 1) == Some(&'-')
            && let Some(&hi) = chars.get(i + 2)
            && hi != ']'
        {
            if c <= hi {
                ranges.push((c, hi));
            }
            i += 3;
            continue;
        }
        ranges.push((c, c));
        i += 1;
    }
}

/// The ASCII members of a POSIX class; a class this reader does not know
/// is read as every character.
fn posix_class(name: &str) -> Vec<(char, char)> {
    match name {
        "alpha" => vec![('A', 'Z'), ('a', 'z')],
        "digit" => vec![('0', '9')],
        "alnum" => vec![('0', '9'), ('A', 'Z'), ('a', 'z')],
        "word" => vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
        "upper" => vec![('A', 'Z')],
        "lower" => vec![('a', 'z')],
        "xdigit" => vec![('0', '9'), ('A', 'F'), ('a', 'f')],
        "space" => vec![('\t', '\r'), (' ', ' ')],
        "blank" => vec![('\t', '\t'), (' ', ' ')],
        "punct" => vec![('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        _ => vec![('\0', char::MAX)],
    }
}

/// Whether a glob component matches a name, as the shell matches file
/// names: `*` and `?` never match a leading `.` (no `dotglob`).
pub(super) fn comp_matches(toks: &[Tok], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    // reach[j]: the first i tokens can match the first j characters.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for (i, t) in toks.iter().enumerate() {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            if !reach[j] {
                continue;
            }
            let leading = i == 0 && j == 0;
            match t {
                Tok::Star | Tok::Anything => {
                    next[j] = true;
                    let mut k = j;
                    while k < name.len() {
                        if k == 0 && name[0] == '.' && *t == Tok::Star {
                            break;
                        }
                        k += 1;
                        next[k] = true;
                    }
                }
                Tok::One => {
                    if j < name.len() && !(leading && name[j] == '.') {
                        next[j + 1] = true;
                    }
                }
                Tok::Class(c) => {
                    if j < name.len() && c.has(name[j]) {
                        next[j + 1] = true;
                    }
                }
                Tok::Lit(c) => {
                    if j < name.len() && name[j] == *c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[name.len()]
}

/// Whether a glob component can match some string of digits.
pub(super) fn could_be_number(toks: &[Tok]) -> bool {
    !toks.is_empty()
        && toks.iter().all(|t| match t {
            Tok::Lit(c) => c.is_ascii_digit(),
            Tok::Class(c) => ('0'..='9').any(|d| c.has(d)),
            Tok::One | Tok::Star | Tok::Anything => true,
        })
}

pub(super) fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// Whether `reading` (a glob when `glob`) can be exactly the literal `path`.
pub fn could_name(reading: &str, glob: bool, path: &str) -> bool {
    let (r, p) = (components(reading), components(path));
    r.len() == p.len()
        && reading.starts_with('/') == path.starts_with('/')
        && r.iter()
            .zip(&p)
            .all(|(rc, pc)| comp_matches(&tokens(rc, glob), pc))
}

/// Whether `reading` can be `dir` or a path beneath it.
pub fn could_lie_within(reading: &str, glob: bool, dir: &str) -> bool {
    let (r, d) = (components(reading), components(dir));
    r.len() >= d.len()
        && reading.starts_with('/') == dir.starts_with('/')
        && r.iter()
            .zip(&d)
            .all(|(rc, dc)| comp_matches(&tokens(rc, glob), dc))
}

/// Whether `reading` can be `dir` itself or every entry of it, at any depth
/// (`/etc`, `/etc/*`, `/e?c/.*`, `/usr/*/*`): what deleting or
/// re-permissioning it recursively reaches is all of `dir`.
pub fn could_be_whole(reading: &str, glob: bool, dir: &str) -> bool {
    let (r, d) = (components(reading), components(dir));
    r.len() >= d.len()
        && reading.starts_with('/') == dir.starts_with('/')
        && r.iter()
            .zip(&d)
            .all(|(rc, dc)| comp_matches(&tokens(rc, glob), dc))
        && r[d.len()..].iter().all(|c| glob && lists_everything(c))
}

/// Whether a component matches every name of a directory, or every hidden
/// one: `*`, `?*`, `.*`, `.[!.]*`, `[!.]*`.
pub fn lists_everything(comp: &str) -> bool {
    let toks = tokens(comp, true);
    let body = match toks.first() {
        Some(Tok::Lit('.')) => &toks[1..],
        Some(Tok::Lit(_) | Tok::One | Tok::Class(_) | Tok::Star | Tok::Anything) | None => {
            &toks[..]
        }
    };
    !body.is_empty()
        && body.iter().any(|t| matches!(t, Tok::Star | Tok::Anything))
        && body
            .iter()
            .all(|t| matches!(t, Tok::Star | Tok::Anything | Tok::One | Tok::Class(_)))
}

/// Whether a rest of components only climbs (`..`, `../..`).
pub fn only_climbs(rest: &str) -> bool {
    !rest.is_empty() && rest.split('/').all(|c| c == "..")
}

/// Whether any directory component of `reading` (all but the last) can be
/// named `name`: `/h?me/*/.s?h/x` can be in a `.ssh` directory.
pub fn could_be_in_dir_named(reading: &str, glob: bool, name: &str) -> bool {
    let comps = components(reading);
    comps.len() > 1
        && comps[..comps.len() - 1]
            .iter()
            .any(|c| comp_matches(&tokens(c, glob), name))
}

pub(super) fn in_set(set: &[(char, char)], c: char) -> bool {
    set.iter().any(|(lo, hi)| *lo <= c && c <= *hi)
}

/// Whether some character is in `set`, in `class` if given, is no `/`, and
/// is no `.` when `no_dot`. The answer, if any, lies at a range's low end
/// or just past a range's high end or an excluded character.
pub(super) fn pick(set: &[(char, char)], class: Option<&CharClass>, no_dot: bool) -> bool {
    let after = |c: char| char::from_u32(c as u32 + 1);
    let fits = |c: &char| {
        in_set(set, *c) && class.is_none_or(|cl| cl.has(*c)) && *c != '/' && !(no_dot && *c == '.')
    };
    let ranges = set.iter().chain(class.map_or(&[][..], |cl| &cl.ranges[..]));
    ranges
        .flat_map(|(lo, hi)| [Some(*lo), after(*hi)])
        .chain([after('/'), after('.'), Some('a')])
        .flatten()
        .any(|c| fits(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_globs_follow_the_shell() {
        let m = |g: &str, n: &str| comp_matches(&tokens(g, true), n);
        assert!(m("e?c", "etc"));
        assert!(m("[e]tc", "etc"));
        assert!(m("[a-f]tc", "etc"));
        assert!(!m("[!e]tc", "etc"));
        assert!(m("[^a-d]tc", "etc"));
        assert!(m("[[:alpha:]]tc", "etc"));
        assert!(m("*", "x"));
        assert!(!m("*", ".env"));
        assert!(!m("?env", ".env"));
        assert!(m(".*", ".env"));
        assert!(m("[.]env", ".env"));
        assert!(m("sysrq-trig*", "sysrq-trigger"));
        assert!(m("[]]", "]"));
        assert!(m("x[", "x["));
        assert!(m("@(etc|usr)", "etc"));
        assert!(could_be_number(&tokens("[0-9]*", true)));
        assert!(!could_be_number(&tokens("self", true)));
        assert!(!could_be_number(&tokens("[a-z]*", true)));
    }

    #[test]
    fn paths_that_globs_can_name() {
        assert!(could_name("/e?c", true, "/etc"));
        assert!(could_name("/u*/l*", true, "/usr/lib"));
        assert!(!could_name("/*", true, "/usr/bin"));
        assert!(!could_name("/e?c", false, "/etc"));
        assert!(could_name("/etc", false, "/etc"));
        assert!(could_be_whole("/e?c/*", true, "/etc"));
        assert!(could_be_whole("/*", true, "/"));
        assert!(could_be_whole("/.*", true, "/"));
        assert!(could_be_whole("/usr/*/*", true, "/usr"));
        assert!(could_be_whole("/etc", false, "/etc"));
        assert!(!could_be_whole("/etc/*", false, "/etc"));
        assert!(!could_be_whole("/srv/*", true, "/etc"));
        assert!(!could_be_whole("/etc/x*", true, "/etc"));
        assert!(could_lie_within("/proc/*/environ", true, "/proc"));
        assert!(could_be_in_dir_named("/h?me/*/.s?h/x", true, ".ssh"));
        assert!(!could_be_in_dir_named("/home/x/.ssh", false, ".ssh"));
        assert!(lists_everything(".[!.]*"));
        assert!(!lists_everything("x*"));
        assert!(only_climbs("../.."));
        assert!(!only_climbs(""));
    }
}
