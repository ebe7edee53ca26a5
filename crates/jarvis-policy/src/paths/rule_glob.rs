//! The `paths` patterns of policy rules: parsed, and asked whether a path
//! word could match one or surely lies within it.

use std::collections::{HashSet, VecDeque};

use super::glob::{Tok, bracket, components, pick, tokens};
use super::walker::{display, has_glob, push_unique};
use super::{HOME, resolve};

/// Why a rule's path pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathGlobError {
    /// An empty pattern.
    #[error("the pattern is empty")]
    Empty,
    /// Not absolute.
    #[error("`{0}` is not absolute: start it with `/` or `~/`")]
    Relative(String),
    /// `.` or `..` as a component.
    #[error("`{0}` holds `.` or `..`; write the path it names")]
    Dots(String),
    /// `**` inside a component.
    #[error("`{0}`: `**` stands alone as a whole component (`/var/log/**`)")]
    DoubleStar(String),
    /// A `[` no `]` closes.
    #[error("`{0}` has an unclosed `[`")]
    Bracket(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PComp {
    /// `**`: any number of components, none included.
    Any,
    One(Vec<Tok>),
}

/// A rule's path pattern (`/var/log/**`), read through the same link table
/// as the paths it is matched against, so `/bin/**` also covers
/// `/usr/bin/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    /// As written.
    pub text: String,
    readings: Vec<(bool, Vec<PComp>)>,
}

impl PathGlob {
    /// Parses a pattern: absolute or under `~/`, with `*`, `?`, `[…]` in a
    /// component and `**` as a whole component.
    ///
    /// # Errors
    /// A [`PathGlobError`] saying what is wrong.
    pub fn parse(text: &str) -> Result<PathGlob, PathGlobError> {
        if text.is_empty() {
            return Err(PathGlobError::Empty);
        }
        if !(text.starts_with('/') || text == HOME || text.starts_with("~/")) {
            return Err(PathGlobError::Relative(text.to_owned()));
        }
        let comps = components(text);
        for c in &comps {
            if matches!(*c, "." | "..") {
                return Err(PathGlobError::Dots(text.to_owned()));
            }
            if c.contains("**") && *c != "**" {
                return Err(PathGlobError::DoubleStar(text.to_owned()));
            }
            let chars: Vec<char> = c.chars().collect();
            if let Some(i) = chars.iter().position(|ch| *ch == '[')
                && bracket(&chars[i..]).is_none()
            {
                return Err(PathGlobError::Bracket(text.to_owned()));
            }
        }
        // The literal head is read through the link table; the rest is kept.
        let head_len = comps
            .iter()
            .position(|c| has_glob(c))
            .unwrap_or(comps.len());
        let head = display(comps[..head_len].iter().copied());
        let tail = &comps[head_len..];
        let mut heads = resolve(&head, None, false).paths;
        push_unique(&mut heads, head);
        let readings = heads
            .iter()
            .map(|h| {
                let all: Vec<PComp> = components(h)
                    .into_iter()
                    .map(|c| PComp::One(tokens(c, false)))
                    .chain(tail.iter().map(|c| {
                        if *c == "**" {
                            PComp::Any
                        } else {
                            PComp::One(tokens(c, true))
                        }
                    }))
                    .collect();
                (h.starts_with('/'), all)
            })
            .collect();
        Ok(PathGlob {
            text: text.to_owned(),
            readings,
        })
    }

    /// Whether a reading (a glob when `glob`) can name a path the pattern
    /// matches.
    pub fn could_match(&self, reading: &str, glob: bool) -> bool {
        let r: Vec<Vec<Tok>> = components(reading)
            .into_iter()
            .map(|c| tokens(c, glob))
            .collect();
        self.readings.iter().any(|(abs, p)| {
            *abs == reading.starts_with('/') && align(p, &r, &|a, b| comps_meet(a, b))
        })
    }

    /// Whether every path a reading (a glob when `glob`) can name is one
    /// the pattern matches.
    pub fn surely_contains(&self, reading: &str, glob: bool) -> bool {
        let r: Vec<Vec<Tok>> = components(reading)
            .into_iter()
            .map(|c| tokens(c, glob))
            .collect();
        self.readings.iter().any(|(abs, p)| {
            *abs == reading.starts_with('/') && align(p, &r, &|a, b| comp_covers(a, b))
        })
    }
}

/// Aligns pattern components with reading components, `**` taking any
/// number of them, each pair judged by `pair`.
fn align(p: &[PComp], r: &[Vec<Tok>], pair: &dyn Fn(&[Tok], &[Tok]) -> bool) -> bool {
    // reach[j]: the first i pattern components can take the first j ones.
    let mut reach = vec![false; r.len() + 1];
    reach[0] = true;
    for pc in p {
        let mut next = vec![false; r.len() + 1];
        for j in 0..=r.len() {
            if !reach[j] {
                continue;
            }
            match pc {
                PComp::Any => {
                    for n in next.iter_mut().skip(j) {
                        *n = true;
                    }
                }
                PComp::One(toks) => {
                    if j < r.len() && pair(toks, &r[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[r.len()]
}

/// Whether two glob components can match a common name (the second is a
/// command's, so its wildcards do not match a leading `.`).
fn comps_meet(p: &[Tok], r: &[Tok]) -> bool {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(0usize, 0usize, false)]);
    while let Some(s) = queue.pop_front() {
        if !seen.insert(s) {
            continue;
        }
        let (i, j, consumed) = s;
        if i == p.len() && j == r.len() {
            return true;
        }
        let (pt, rt) = (p.get(i), r.get(j));
        if matches!(pt, Some(Tok::Star | Tok::Anything)) {
            queue.push_back((i + 1, j, consumed));
        }
        if matches!(rt, Some(Tok::Star | Tok::Anything)) {
            queue.push_back((i, j + 1, consumed));
        }
        let (Some(pt), Some(rt)) = (pt, rt) else {
            continue;
        };
        // The command's wildcards do not match a leading `.`.
        let no_dot = !consumed && matches!(rt, Tok::Star | Tok::One);
        if chars_meet(pt, rt, no_dot) {
            let ni = if matches!(pt, Tok::Star | Tok::Anything) {
                i
            } else {
                i + 1
            };
            let nj = if matches!(rt, Tok::Star | Tok::Anything) {
                j
            } else {
                j + 1
            };
            queue.push_back((ni, nj, true));
        }
    }
    false
}

/// Whether one character can satisfy both tokens.
fn chars_meet(a: &Tok, b: &Tok, no_dot: bool) -> bool {
    let full = [('\0', char::MAX)];
    let set_of = |t: &Tok| -> Option<Vec<(char, char)>> {
        match t {
            Tok::Lit(c) => Some(vec![(*c, *c)]),
            Tok::One | Tok::Star | Tok::Anything => Some(full.to_vec()),
            Tok::Class(_) => None,
        }
    };
    match (a, b) {
        (Tok::Class(x), Tok::Class(y)) => {
            // Try the members and edges of both.
            let mut cands: Vec<char> = Vec::new();
            for (lo, hi) in x.ranges.iter().chain(&y.ranges) {
                cands.push(*lo);
                cands.extend(char::from_u32(*hi as u32 + 1));
            }
            cands.push('a');
            cands
                .into_iter()
                .any(|c| x.has(c) && y.has(c) && c != '/' && !(no_dot && c == '.'))
        }
        (Tok::Class(x), other) | (other, Tok::Class(x)) => {
            set_of(other).is_some_and(|s| pick(&s, Some(x), no_dot))
        }
        _ => match (set_of(a), set_of(b)) {
            (Some(x), Some(y)) => {
                let both: Vec<(char, char)> = x
                    .iter()
                    .flat_map(|(a1, a2)| {
                        y.iter().filter_map(move |(b1, b2)| {
                            let (lo, hi) = ((*a1).max(*b1), (*a2).min(*b2));
                            (lo <= hi).then_some((lo, hi))
                        })
                    })
                    .collect();
                pick(&both, None, no_dot)
            }
            _ => false,
        },
    }
}

/// Whether pattern component `p` matches every name glob component `r`
/// can match: `r`'s wildcards can only be taken by `p`'s `*`.
fn comp_covers(p: &[Tok], r: &[Tok]) -> bool {
    let mut reach = vec![false; r.len() + 1];
    reach[0] = true;
    for pt in p {
        let mut next = vec![false; r.len() + 1];
        for j in 0..=r.len() {
            if !reach[j] {
                continue;
            }
            match pt {
                Tok::Star | Tok::Anything => {
                    for n in next.iter_mut().skip(j) {
                        *n = true;
                    }
                }
                Tok::One => {
                    if matches!(r.get(j), Some(Tok::Lit(_) | Tok::One | Tok::Class(_))) {
                        next[j + 1] = true;
                    }
                }
                Tok::Class(c) => {
                    if let Some(Tok::Lit(x)) = r.get(j)
                        && c.has(*x)
                    {
                        next[j + 1] = true;
                    }
                }
                Tok::Lit(c) => {
                    if r.get(j) == Some(&Tok::Lit(*c)) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[r.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_patterns() {
        let g = |p: &str| PathGlob::parse(p).expect("parses");
        let logs = g("/var/log/x/**");
        assert!(logs.could_match("/var/log/x/y", false));
        assert!(logs.could_match("/var/log/x", false));
        assert!(logs.could_match("/var/log/x*/y", true));
        assert!(logs.could_match("/var/l?g/[x]/y", true));
        assert!(logs.could_match("/var/log/*", true));
        assert!(!logs.could_match("/var/log/xy", false));
        assert!(!logs.could_match("/var/log/x*/y", false));
        assert!(!logs.could_match("~/var/log/x", false));
        assert!(logs.surely_contains("/var/log/x/y", false));
        assert!(logs.surely_contains("/var/log/x/*.log", true));
        assert!(!logs.surely_contains("/var/log/x*/y", true));
        assert!(!logs.surely_contains("/var/log/*", true));
        let bin = g("/bin/**");
        assert!(bin.could_match("/usr/bin/ls", false));
        assert!(bin.surely_contains("/usr/bin/ls", false));
        let conf = g("/etc/*.conf");
        assert!(conf.could_match("/etc/x.conf", false));
        assert!(conf.could_match("/etc/x*", true));
        assert!(!conf.could_match("/etc/x/y.conf", false));
        assert!(conf.could_match("/etc/*", true));
        assert!(!conf.surely_contains("/etc/*", true));
        assert!(g("~/.ssh/**").could_match("~/.ssh/id_rsa", false));
        for (bad, e) in [
            ("", PathGlobError::Empty),
            ("var/log", PathGlobError::Relative("var/log".into())),
            ("/var/../etc", PathGlobError::Dots("/var/../etc".into())),
            ("/var/lo**g", PathGlobError::DoubleStar("/var/lo**g".into())),
            ("/var/log/[x", PathGlobError::Bracket("/var/log/[x".into())),
        ] {
            assert_eq!(PathGlob::parse(bad), Err(e));
        }
    }
}
