//! What the config's tests share: config text parsed as if read from
//! `/etc/jarvis/jarvis.toml`, so relative paths have a known base.

use std::path::Path;

use super::{Config, ConfigError};

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/jarvis/jarvis.toml"), text)
}
