//! Named volumes: their fingerprint, archive and restore, each done by a
//! short-lived helper container.

use std::path::{Path, PathBuf};

use jarvis_core::ActionId;
use jarvis_exec::snapshot::VolumeState;

use super::fingerprint::sha256_hex;
use super::{check_name, checked, short};
use crate::cmd::Cmd;
use crate::engine::{DEFAULT_TIMEOUT, Engine, enc};
use crate::error::GuardError;

/// Captures a named volume; with `keep` (the action to keep it for),
/// archived under `state_dir`.
pub fn capture_volume(
    name: &str,
    keep: Option<ActionId>,
    image: Option<&str>,
    state_dir: &Path,
) -> Result<VolumeState, GuardError> {
    check_name("volume", name)?;
    let engine = Engine::connect()?;
    let found = engine.call(
        "GET",
        &format!("/volumes/{}", enc(name)),
        None,
        DEFAULT_TIMEOUT,
    )?;
    let mut state = VolumeState {
        name: name.to_owned(),
        exists: found.status != 404,
        fingerprint: String::new(),
        archive: None,
        bytes: 0,
    };
    if !state.exists {
        return Ok(state);
    }
    checked(found, &format!("cannot inspect volume {name}"))?;
    let image = image.ok_or_else(|| {
        GuardError::Volume(format!(
            "volume {name} cannot be captured: no helper image (volume_image) is configured"
        ))
    })?;
    state.fingerprint = volume_fingerprint(name, image)?;
    if let Some(action_id) = keep {
        // An `ActionId` displays as hex digits and dashes only: one path
        // component, never `..` or a `/`.
        let dir = state_dir.join("volumes").join(action_id.to_string());
        let archive = archive_volume(name, image, &dir)?;
        state.bytes = std::fs::metadata(&archive)
            .map_err(|e| {
                GuardError::Volume(format!(
                    "archive {} of volume {name}: {e}",
                    archive.display()
                ))
            })?
            .len();
        state.archive = Some(archive.display().to_string());
    }
    Ok(state)
}

/// Restores a volume from its archive and verifies it. A volume the
/// snapshot did not find is removed.
pub fn restore_volume(target: &VolumeState, image: &str) -> Result<String, GuardError> {
    let name = &target.name;
    check_name("volume", name)?;
    if !target.exists {
        let engine = Engine::connect()?;
        let reply = engine.call(
            "DELETE",
            &format!("/volumes/{}", enc(name)),
            None,
            DEFAULT_TIMEOUT,
        )?;
        return match reply.status {
            404 => Ok(format!(
                "volume {name} does not exist, as when the snapshot was taken"
            )),
            _ if reply.ok() => Ok(format!(
                "removed volume {name}, which did not exist when the snapshot was taken"
            )),
            _ => Err(GuardError::Volume(format!(
                "cannot remove volume {name}: {}",
                reply.message()
            ))),
        };
    }
    let archive = Path::new(target.archive.as_deref().unwrap_or(""));
    let (Some(dir), Some(file)) = (
        archive.parent(),
        archive.file_name().and_then(|f| f.to_str()),
    ) else {
        return Err(GuardError::Volume(format!(
            "the snapshot of volume {name} kept no archive"
        )));
    };
    if !archive.is_file() {
        return Err(GuardError::Volume(format!(
            "archive {} of volume {name} is missing",
            archive.display()
        )));
    }
    // The globs catch dot files; one that matches nothing stays literal,
    // which `rm -f` ignores.
    let script = r#"cd /v && rm -rf -- * .[!.]* ..?* && tar -xf "/in/$1" -C /v"#;
    helper(
        image,
        &[
            format!("{name}:/v"),
            format!("{}:/in:ro", mount_source(dir)?),
        ],
        script,
        &[file],
    )
    .ok()
    .map_err(|e| {
        GuardError::Volume(format!(
            "cannot restore volume {name} from {}: {e}",
            archive.display()
        ))
    })?;
    let now = volume_fingerprint(name, image)?;
    if now != target.fingerprint {
        return Err(GuardError::Volume(format!(
            "restored volume {name} from {}, but its files do not match the snapshot (fingerprint {} → {})",
            archive.display(),
            short(&target.fingerprint),
            short(&now)
        )));
    }
    Ok(format!(
        "restored volume {name} from {} ({} bytes); its files match the snapshot (fingerprint {}…)",
        archive.display(),
        target.bytes,
        short(&now)
    ))
}

/// Removes a kept volume archive.
pub fn drop_volume(state: &VolumeState) -> Result<Vec<String>, GuardError> {
    let Some(archive) = &state.archive else {
        return Ok(Vec::new());
    };
    let path = Path::new(archive);
    let removed = match std::fs::remove_file(path) {
        Ok(()) => format!("archive {archive}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("archive {archive} (already gone)")
        }
        Err(e) => {
            return Err(GuardError::Volume(format!(
                "cannot remove archive {archive} of volume {}: {e}",
                state.name
            )));
        }
    };
    // The per-action directory goes with its last archive; while others
    // remain, removing it fails, as it should.
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(vec![removed])
}

/// Archives a volume as `dir/NAME.tar` with a helper container.
fn archive_volume(name: &str, image: &str, dir: &Path) -> Result<PathBuf, GuardError> {
    let dir = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::canonicalize(dir))
        .map_err(|e| {
            GuardError::Volume(format!(
                "cannot prepare {} for volume {name}: {e}",
                dir.display()
            ))
        })?;
    let owner = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
    // The helper runs as root: the archive is handed to the guard's user,
    // and appears under its name only once complete.
    let script = r#"tar -cf "/out/.$1.part" -C /v . && chown "$2" "/out/.$1.part" && mv "/out/.$1.part" "/out/$1.tar""#;
    helper(
        image,
        &[
            format!("{name}:/v:ro"),
            format!("{}:/out", mount_source(&dir)?),
        ],
        script,
        &[name, &owner],
    )
    .ok()
    .map_err(|e| GuardError::Volume(format!("cannot archive volume {name}: {e}")))?;
    Ok(dir.join(format!("{name}.tar")))
}

/// Lists the files of a volume, as a helper container sees them: path,
/// type, mode, owner, size and content hash; SHA-256 over the list.
fn volume_fingerprint(name: &str, image: &str) -> Result<String, GuardError> {
    const LISTING: &str = r#"set -o pipefail
cd /v && find . | LC_ALL=C sort | while IFS= read -r p; do
  if [ -L "$p" ]; then echo "l $(stat -c %u:%g "$p") $p -> $(readlink "$p")"
  elif [ -f "$p" ]; then echo "f $(stat -c '%a %u:%g %s' "$p") $(sha256sum < "$p" | cut -d' ' -f1) $p"
  elif [ -d "$p" ]; then echo "d $(stat -c '%a %u:%g' "$p") $p"
  else echo "o $(stat -c '%a %u:%g %F' "$p") $p"
  fi
done"#;
    let listing = helper(image, &[format!("{name}:/v:ro")], LISTING, &[])
        .ok()
        .map_err(|e| GuardError::Volume(format!("cannot list the files of volume {name}: {e}")))?;
    Ok(sha256_hex(listing.as_bytes()))
}

/// `docker run` of a short-lived helper container: root (it must read and
/// restore every file and owner), no network, nothing pulled.
fn helper(image: &str, volumes: &[String], script: &str, args: &[&str]) -> Cmd {
    let mut cmd = Cmd::new("docker").args([
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--user",
        "0:0",
        "--label",
        "jarvis.helper=1",
        "--entrypoint",
        "sh",
    ]);
    for v in volumes {
        cmd = cmd.args(["-v", v]);
    }
    cmd.arg(image).args(["-c", script, "sh"]).args(args)
}

/// A host directory as the source of `-v SOURCE:TARGET`, where a colon
/// would end it early.
fn mount_source(dir: &Path) -> Result<&str, GuardError> {
    dir.to_str()
        .filter(|d| d.starts_with('/') && !d.contains(':'))
        .ok_or_else(|| {
            GuardError::Volume(format!(
                "{} cannot be mounted into a helper container",
                dir.display()
            ))
        })
}
