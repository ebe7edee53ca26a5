//! Globs against the knowledge base's regular expressions: whether a glob
//! can name a path a sensitive-path pattern matches, answered over the
//! pattern compiled to a bounded automaton (fail closed at the bounds).

use regex_syntax::hir::{Class as HirClass, Hir, HirKind, Look};

use super::glob::{Tok, in_set, pick, tokens};

/// How many states a compiled pattern may have; the knowledge base's have
/// a few dozen. A larger one is answered "could match" (fail closed).
const MAX_NFA_STATES: usize = 20_000;
/// How many steps one glob question may take before it is answered "could
/// match".
const MAX_STEPS: usize = 200_000;
/// How many literal characters of a pattern a glob's last component must
/// spell itself before its `*` may stand for more of them.
const SPELT: u8 = 3;
/// Repetition counts beyond this are read as unbounded (a wider pattern).
const MAX_REPEAT: u32 = 16;

#[derive(Debug, Clone)]
enum NState {
    /// One character of `set`; `literal` when the pattern spells it out
    /// (a literal or a class of at most two characters).
    Char {
        set: Vec<(char, char)>,
        literal: bool,
        next: usize,
    },
    Split(usize, usize),
    /// `^` (`start`) or `$`; other assertions always pass.
    Look {
        start: bool,
        end: bool,
        next: usize,
    },
    Match,
}

/// A sensitive-path regular expression, compiled to answer whether a glob
/// reading can name a path it matches.
///
/// In a directory component a glob character can stand for anything. In
/// the last component `?` and `[…]` still can, but `*` stands for the
/// pattern's own letters only after the component spelt at least three of
/// them (`sha*` for `shadow`, `id_*` for `id_rsa`, `secrets.*`), or where
/// the pattern leaves the name open (`*.pem` for `\.pem$`): `*.txt` is not
/// read as `secrets.txt`, which would make every `cat *.txt` a secret read.
#[derive(Debug, Clone)]
pub struct PathRegex {
    states: Vec<NState>,
    start: usize,
    /// For each state, the states that consume, assert or accept reachable
    /// from it through splits alone, so a search never walks a split twice.
    eps: Vec<Vec<u32>>,
}

impl PathRegex {
    /// Compiles a pattern; `None` when it does not parse or is too large,
    /// which callers must read as "could match anything".
    pub fn new(pattern: &str) -> Option<PathRegex> {
        PathRegex::any_of(&[pattern])
    }

    /// Compiles patterns into one that matches where any of them does: one
    /// glob question over many patterns walks the glob once. `None` as for
    /// [`PathRegex::new`].
    pub fn any_of(patterns: &[&str]) -> Option<PathRegex> {
        let mut b = NfaBuilder { states: Vec::new() };
        let accept = b.push(NState::Match);
        let mut entries = Vec::new();
        for p in patterns {
            let hir = regex_syntax::parse(p).ok()?;
            entries.push(b.compile(&hir, accept, 0)?);
        }
        let mut body = *entries.last()?;
        for e in entries.iter().rev().skip(1) {
            body = b.push(NState::Split(*e, body));
        }
        // Unanchored: the match may start anywhere.
        let any = b.push(NState::Split(0, body));
        let skip = b.push(NState::Char {
            set: vec![('\0', char::MAX)],
            literal: false,
            next: any,
        });
        if let Some(NState::Split(a, _)) = b.states.get_mut(any) {
            *a = skip;
        }
        if b.states.len() > MAX_NFA_STATES {
            return None;
        }
        let eps = split_closures(&b.states);
        Some(PathRegex {
            states: b.states,
            start: any,
            eps,
        })
    }

    /// Whether a glob reading (absolute, `~/…`, or a relative rest) can
    /// name a path the pattern matches, with `*` in the last component
    /// read as the type says.
    pub fn could_match(&self, reading: &str, glob: bool) -> bool {
        self.search(reading, glob, true)
    }

    /// Whether a glob reading can name a path the pattern matches, every
    /// `*` standing for any name: for writes, where a wide glob is itself
    /// the danger.
    pub fn could_match_any(&self, reading: &str, glob: bool) -> bool {
        self.search(reading, glob, false)
    }

    fn search(&self, reading: &str, glob: bool, spelling: bool) -> bool {
        let g = glob_tokens(reading, glob);
        // rest_empty[i]: the tokens from i on can all match nothing.
        let mut rest_empty = vec![true; g.len() + 1];
        for i in (0..g.len()).rev() {
            rest_empty[i] = rest_empty[i + 1] && matches!(g[i].tok, Tok::Star | Tok::Anything);
        }
        // A state of the search: the glob position, the pattern state (never
        // a split), whether a `*` starting a component has consumed, how
        // many of the last component's letters the pattern spelt, and
        // whether anything was consumed. Reachability only: a stack and a
        // bitset of visited states.
        type State = (usize, usize, bool, u8, bool);
        let width = self.states.len() * 16;
        let mut seen = vec![0u64; ((g.len() + 1) * width).div_ceil(64)];
        let mut stack: Vec<State> = Vec::new();
        let mut push = |stack: &mut Vec<State>, (gi, ni, started, spelt, consumed): State| {
            for &t in self.eps.get(ni).map_or(&[][..], Vec::as_slice) {
                let t = t as usize;
                let key = gi * width
                    + t * 16
                    + (usize::from(started) << 3)
                    + (usize::from(spelt.min(3)) << 1)
                    + usize::from(consumed);
                if let Some(word) = seen.get_mut(key / 64) {
                    let bit = 1u64 << (key % 64);
                    if *word & bit == 0 {
                        *word |= bit;
                        stack.push((gi, t, started, spelt, consumed));
                    }
                }
            }
        };
        push(&mut stack, (0, self.start, false, 0, false));
        let mut steps = 0;
        while let Some(state) = stack.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return true;
            }
            let (gi, ni, started, spelt, consumed) = state;
            // The glob moves on past a `*` that matched what it will.
            if let Some(gt) = g.get(gi)
                && matches!(gt.tok, Tok::Star | Tok::Anything)
            {
                push(&mut stack, (gi + 1, ni, false, spelt, consumed));
            }
            match self.states.get(ni) {
                None | Some(NState::Split(..)) => {}
                Some(NState::Match) => return true,
                Some(NState::Look { start, end, next }) => {
                    let ok = (!*start || !consumed) && (!*end || rest_empty[gi]);
                    if ok {
                        push(&mut stack, (gi, *next, started, spelt, consumed));
                    }
                }
                Some(NState::Char { set, literal, next }) => {
                    let Some(gt) = g.get(gi) else { continue };
                    match &gt.tok {
                        Tok::Lit(c) => {
                            if in_set(set, *c) {
                                let spelt = if !gt.last {
                                    0
                                } else if *literal {
                                    (spelt + 1).min(SPELT)
                                } else {
                                    spelt
                                };
                                push(&mut stack, (gi + 1, *next, false, spelt, true));
                            }
                        }
                        Tok::One => {
                            if pick(set, None, gt.first) {
                                push(&mut stack, (gi + 1, *next, false, spelt, true));
                            }
                        }
                        Tok::Class(c) => {
                            if pick(set, Some(c), false) {
                                push(&mut stack, (gi + 1, *next, false, spelt, true));
                            }
                        }
                        Tok::Star => {
                            let stands_in = !(spelling && gt.last && *literal && spelt < SPELT);
                            if stands_in && pick(set, None, gt.first && !started) {
                                push(&mut stack, (gi, *next, true, spelt, true));
                            }
                        }
                        Tok::Anything => {
                            if pick(set, None, false) {
                                push(&mut stack, (gi, *next, true, spelt, true));
                            }
                        }
                    }
                }
            }
        }
        false
    }
}

/// A glob token with where it sits in the path.
struct GTok {
    tok: Tok,
    /// It starts a component (a leading `.` must be spelt there).
    first: bool,
    /// It is in the last component.
    last: bool,
}

fn glob_tokens(reading: &str, glob: bool) -> Vec<GTok> {
    let mut out = Vec::new();
    let comps: Vec<&str> = reading.split('/').collect();
    let n = comps.len();
    for (i, comp) in comps.iter().enumerate() {
        if i > 0 {
            out.push(GTok {
                tok: Tok::Lit('/'),
                first: false,
                last: false,
            });
        }
        for (j, t) in tokens(comp, glob).into_iter().enumerate() {
            out.push(GTok {
                tok: t,
                first: j == 0,
                last: i + 1 == n,
            });
        }
    }
    out
}

/// For every state, the states that consume, assert or accept reachable
/// from it through splits alone.
fn split_closures(states: &[NState]) -> Vec<Vec<u32>> {
    // One visited stamp per state, reused across the walks.
    let mut stamp = vec![usize::MAX; states.len()];
    let mut stack = Vec::new();
    (0..states.len())
        .map(|from| {
            if !matches!(states.get(from), Some(NState::Split(..))) {
                return u32::try_from(from).ok().into_iter().collect();
            }
            let mut out = Vec::new();
            stack.clear();
            stack.push(from);
            while let Some(i) = stack.pop() {
                match stamp.get_mut(i) {
                    Some(seen) if *seen != from => *seen = from,
                    _ => continue,
                }
                match states.get(i) {
                    Some(NState::Split(a, b)) => {
                        stack.push(*b);
                        stack.push(*a);
                    }
                    Some(NState::Char { .. } | NState::Look { .. } | NState::Match) => {
                        out.extend(u32::try_from(i).ok());
                    }
                    None => {}
                }
            }
            out
        })
        .collect()
}

struct NfaBuilder {
    states: Vec<NState>,
}

impl NfaBuilder {
    fn push(&mut self, s: NState) -> usize {
        self.states.push(s);
        self.states.len() - 1
    }

    /// Compiles `hir` so that it continues to `next`; returns its entry.
    fn compile(&mut self, hir: &Hir, next: usize, depth: usize) -> Option<usize> {
        if depth > 200 || self.states.len() > MAX_NFA_STATES {
            return None;
        }
        Some(match hir.kind() {
            HirKind::Empty => next,
            HirKind::Literal(lit) => {
                let text = String::from_utf8_lossy(&lit.0).into_owned();
                let mut at = next;
                for c in text.chars().rev() {
                    at = self.push(NState::Char {
                        set: vec![(c, c)],
                        literal: true,
                        next: at,
                    });
                }
                at
            }
            HirKind::Class(class) => {
                let set: Vec<(char, char)> = match class {
                    HirClass::Unicode(u) => {
                        u.ranges().iter().map(|r| (r.start(), r.end())).collect()
                    }
                    HirClass::Bytes(b) => b
                        .ranges()
                        .iter()
                        .map(|r| {
                            if r.end() >= 0x80 {
                                (char::from(r.start()), char::MAX)
                            } else {
                                (char::from(r.start()), char::from(r.end()))
                            }
                        })
                        .collect(),
                };
                let size: u64 = set
                    .iter()
                    .map(|(lo, hi)| u64::from(*hi as u32 - *lo as u32) + 1)
                    .sum();
                self.push(NState::Char {
                    set,
                    literal: size <= 2,
                    next,
                })
            }
            HirKind::Look(look) => {
                let (start, end) = match look {
                    Look::Start | Look::StartLF | Look::StartCRLF => (true, false),
                    Look::End | Look::EndLF | Look::EndCRLF => (false, true),
                    _ => (false, false),
                };
                self.push(NState::Look { start, end, next })
            }
            HirKind::Capture(c) => self.compile(&c.sub, next, depth + 1)?,
            HirKind::Concat(subs) => {
                let mut at = next;
                for s in subs.iter().rev() {
                    at = self.compile(s, at, depth + 1)?;
                }
                at
            }
            HirKind::Alternation(subs) => {
                let mut entries = Vec::new();
                for s in subs {
                    entries.push(self.compile(s, next, depth + 1)?);
                }
                let mut at = *entries.last()?;
                for e in entries.iter().rev().skip(1) {
                    at = self.push(NState::Split(*e, at));
                }
                at
            }
            HirKind::Repetition(rep) => {
                let min = rep.min.min(MAX_REPEAT);
                let max = rep.max.filter(|m| *m <= MAX_REPEAT);
                // The optional or endless tail first, then the required copies.
                let mut at = match max {
                    None => {
                        let split = self.push(NState::Split(0, next));
                        let body = self.compile(&rep.sub, split, depth + 1)?;
                        if let Some(NState::Split(a, _)) = self.states.get_mut(split) {
                            *a = body;
                        }
                        split
                    }
                    Some(max) => {
                        let mut at = next;
                        for _ in min..max {
                            let body = self.compile(&rep.sub, at, depth + 1)?;
                            at = self.push(NState::Split(body, next));
                        }
                        at
                    }
                };
                for _ in 0..min {
                    at = self.compile(&rep.sub, at, depth + 1)?;
                }
                at
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_against_sensitive_patterns() {
        let re = |p: &str| PathRegex::new(p).expect("compiles");
        let shadow = re(r"(^|/)g?shadow([-.~][^/]*)?$");
        assert!(shadow.could_match("/e?c/sh?dow", true));
        assert!(shadow.could_match("/etc/sha*", true));
        assert!(shadow.could_match("/etc/[s]hadow", true));
        assert!(shadow.could_match("/etc/shadow", false));
        assert!(!shadow.could_match("/etc/sha*", false));
        assert!(!shadow.could_match("/srv/*.txt", true));
        let pem = re(r"\.pem$");
        assert!(pem.could_match("/srv/app/*.pem", true));
        assert!(!pem.could_match("/srv/app/*", true));
        assert!(!pem.could_match("/var/log/syslog*", true));
        let secrets = re(r"(^|/)secrets?(\.[a-z]+)?\.(ya?ml|json|toml|env|ini|txt)$");
        assert!(!secrets.could_match("/srv/*.txt", true));
        assert!(!secrets.could_match("/srv/app/*.yml", true));
        assert!(secrets.could_match("/srv/secrets.*", true));
        assert!(secrets.could_match("/*/secrets.yaml", true));
        let environ = re(r"^/proc/[^/]+/environ$");
        assert!(environ.could_match("/proc/*/environ", true));
        assert!(environ.could_match("/pr?c/1/environ", true));
        assert!(!environ.could_match("/proc/1/status", false));
        let ssh = re(r"(^|/)\.ssh/(id_[A-Za-z0-9_]+|[^/]*_key|[^/]*\.pem|[^/]*\.ppk)$");
        assert!(ssh.could_match("/h?me/*/.s?h/id_*", true));
        assert!(
            !ssh.could_match("/h?me/*/*/id_rsa", true),
            "`*` is no `.ssh`"
        );
        let etc = re(r"^/+etc(/|$)");
        assert!(etc.could_match("/e?c/x", true));
        assert!(etc.could_match("/[e]tc", true));
        assert!(!etc.could_match("/srv/*", true));
        let id = re(r"(^|/)id_(rsa|dsa|ecdsa|ed25519)(_sk)?$");
        assert!(id.could_match("/srv/backup/id_*", true));
        assert!(!id.could_match("/srv/backup/*", true));
        let key = re(r"\.key$");
        assert!(key.could_match("x/*.key", true));
        assert!(!key.could_match("*.log", true));
    }
}
