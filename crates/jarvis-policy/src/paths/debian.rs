//! What a Debian host has, as a fixed table: the homes of its accounts
//! and the links every such host carries. Never this machine's.

/// The homes of Debian's fixed system accounts (base-passwd and apt), for
/// `~user`.
pub(super) const FIXED_HOMES: &[(&str, &[&str])] = &[
    ("root", &["/root"]),
    ("daemon", &["/usr/sbin"]),
    ("bin", &["/bin"]),
    ("sys", &["/dev"]),
    ("sync", &["/bin"]),
    ("games", &["/usr/games"]),
    ("man", &["/var/cache/man"]),
    ("lp", &["/var/spool/lpd"]),
    ("mail", &["/var/mail"]),
    ("news", &["/var/spool/news"]),
    ("uucp", &["/var/spool/uucp"]),
    ("proxy", &["/bin"]),
    ("www-data", &["/var/www"]),
    ("backup", &["/var/backups"]),
    ("list", &["/var/list"]),
    ("irc", &["/run/ircd", "/var/run/ircd"]),
    ("gnats", &["/var/lib/gnats"]),
    ("nobody", &["/nonexistent"]),
    ("_apt", &["/nonexistent"]),
];

/// Accounts that packages create with a home that differs between Debian
/// releases: the homes they have had, and somewhere unknown besides.
pub(super) const PACKAGE_HOMES: &[(&str, &[&str])] = &[
    ("messagebus", &["/nonexistent", "/var/run/dbus"]),
    ("sshd", &["/run/sshd", "/var/run/sshd"]),
    ("systemd-network", &["/", "/run/systemd"]),
    ("systemd-resolve", &["/", "/run/systemd"]),
    ("systemd-timesync", &["/", "/run/systemd"]),
];

/// Links every Debian host has: usrmerge, the `/var` compatibility links,
/// and the kernel's `/dev/fd` family. A path through one is a path through
/// its target.
pub(super) const LINKS: &[(&str, &str)] = &[
    ("/bin", "/usr/bin"),
    ("/sbin", "/usr/sbin"),
    ("/lib", "/usr/lib"),
    ("/lib32", "/usr/lib32"),
    ("/lib64", "/usr/lib64"),
    ("/libx32", "/usr/libx32"),
    ("/var/run", "/run"),
    ("/var/lock", "/run/lock"),
    ("/var/spool/mail", "/var/mail"),
    ("/etc/mtab", "/proc/self/mounts"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/core", "/proc/kcore"),
    ("/proc/mounts", "/proc/self/mounts"),
    ("/proc/net", "/proc/self/net"),
];

/// Entries of sysfs that are links into `/sys/devices` (`*` is any name):
/// a `..` after one climbs a device tree the line does not show.
pub(super) const SYSFS_LINKS: &[&[&str]] = &[
    &["sys", "class", "*", "*"],
    &["sys", "block", "*"],
    &["sys", "bus", "*", "devices", "*"],
    &["sys", "dev", "*", "*"],
];
