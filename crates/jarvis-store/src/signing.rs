//! The operator's audit key: an ed25519 key in a file outside the database,
//! used to sign checkpoints of the chain's head.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("audit key {path}: {problem}")]
pub struct KeyError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

/// The signing key for checkpoints.
pub struct AuditKey {
    key: SigningKey,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        write!(f, "AuditKey({})", self.public_hex())
    }
}

impl AuditKey {
    /// Loads the key at `path`, or creates one there (mode 0600) if none
    /// exists yet.
    ///
    /// # Errors
    /// [`KeyError`] when the file cannot be read, written or parsed, or is
    /// readable by others than its owner.
    pub fn load_or_create(path: &Path) -> Result<AuditKey, KeyError> {
        let err = |problem: String| KeyError {
            path: path.to_owned(),
            problem,
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path)
                        .map_err(|e| err(e.to_string()))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(err(format!(
                            "is readable by others (mode {:o}); run chmod 600 on it",
                            mode & 0o777
                        )));
                    }
                }
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| err(format!("is not an ed25519 PKCS#8 PEM key: {e}")))?;
                Ok(AuditKey { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand_core::OsRng);
                let pem = key
                    .to_pkcs8_pem(Default::default())
                    .map_err(|e| err(format!("cannot encode a new key: {e}")))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| err(format!("cannot create its directory: {e}")))?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut f = options
                    .open(path)
                    .map_err(|e| err(format!("cannot be created: {e}")))?;
                f.write_all(pem.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(format!("cannot be written: {e}")))?;
                Ok(AuditKey { key })
            }
            Err(e) => Err(err(format!("cannot be read: {e}"))),
        }
    }

    /// A fresh key held only in memory (tests, benchmarks).
    pub fn ephemeral() -> AuditKey {
        AuditKey {
            key: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// The public half, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, message: &str) -> String {
        hex::encode(self.key.sign(message.as_bytes()).to_bytes())
    }
}

/// What a checkpoint signs.
pub(crate) fn checkpoint_message(seq: i64, hash: &str) -> String {
    format!("jarvis-audit-checkpoint:v1:{seq}:{hash}")
}

/// Whether `signature_hex` is `public_hex`'s signature over `message`.
pub(crate) fn verify_signature(public_hex: &str, message: &str, signature_hex: &str) -> bool {
    let Ok(pk) = hex::decode(public_hex) else {
        return false;
    };
    let Ok(pk) = <[u8; 32]>::try_from(pk.as_slice()) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    vk.verify(message.as_bytes(), &Signature::from_bytes(&sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let k = AuditKey::ephemeral();
        let sig = k.sign("m");
        assert!(verify_signature(&k.public_hex(), "m", &sig));
        assert!(!verify_signature(&k.public_hex(), "n", &sig));
        assert!(!verify_signature(
            &AuditKey::ephemeral().public_hex(),
            "m",
            &sig
        ));
        assert!(!verify_signature("zz", "m", &sig));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("jarvis-key-{}", std::process::id()));
        let path = dir.join("audit.key");
        let _ = std::fs::remove_dir_all(&dir);
        let a = AuditKey::load_or_create(&path).expect("create");
        let b = AuditKey::load_or_create(&path).expect("reload");
        assert_eq!(a.public_hex(), b.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = AuditKey::load_or_create(&path).expect_err("too open");
            assert!(e.to_string().contains("readable by others"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
