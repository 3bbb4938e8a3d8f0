//! Token files at rest: sealed with ChaCha20-Poly1305 under a 32-byte key from
//! `SHOPLAKE_TOKEN_KEY` (base64) or the key file beside the token directory
//! (`secrets/token.key`, mode 0600, made on first use). A sealed file is JSON
//! `{"sealed": "chacha20poly1305", "nonce": "…", "data": "…"}`; reading a file that a
//! copied or stolen data dir holds tells nothing without the key.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The environment variable that supplies the key instead of the key file.
pub const KEY_ENV: &str = "SHOPLAKE_TOKEN_KEY";

/// A sealing key. Never printed.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    sealed: String,
    nonce: String,
    data: String,
}

/// Writes `bytes` to `path` atomically with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

impl SealKey {
    /// A fresh random key.
    pub fn generate() -> SealKey {
        SealKey(rand::random())
    }

    /// From base64 text (the env variable or key file).
    pub fn from_base64(text: &str, what: &str) -> Result<SealKey, String> {
        let b = B64
            .decode(text.trim())
            .map_err(|e| format!("{what} is not base64: {e}"))?;
        let k: [u8; 32] = b
            .try_into()
            .map_err(|_| format!("{what} must be 32 bytes (44 base64 characters)"))?;
        Ok(SealKey(k))
    }

    /// The key as base64 text.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// `SHOPLAKE_TOKEN_KEY` if set, else the key file at `path`, created when missing.
    /// Returns the key and whether it came from the environment.
    pub fn load_or_create(path: &Path) -> Result<(SealKey, bool), String> {
        if let Ok(v) = std::env::var(KEY_ENV) {
            return Ok((SealKey::from_base64(&v, KEY_ENV)?, true));
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((
                SealKey::from_base64(&text, &path.display().to_string())?,
                false,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = SealKey::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                }
                write_private(path, k.to_base64().as_bytes())
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                Ok((k, false))
            }
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Seals `plain`.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let data = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("sealing in memory cannot fail");
        serde_json::to_vec_pretty(&Sealed {
            sealed: "chacha20poly1305".into(),
            nonce: B64.encode(nonce),
            data: B64.encode(data),
        })
        .expect("sealed file serializes")
    }

    /// Opens a sealed file's bytes: `Ok(None)` when they are not sealed (a plaintext file
    /// from before sealing), an error when the key does not open them.
    pub fn open(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let Ok(s) = serde_json::from_slice::<Sealed>(bytes) else {
            return Ok(None);
        };
        if s.sealed != "chacha20poly1305" {
            return Err(format!("unknown sealing {:?}", s.sealed));
        }
        let nonce = B64.decode(&s.nonce).map_err(|e| format!("nonce: {e}"))?;
        let data = B64.decode(&s.data).map_err(|e| format!("data: {e}"))?;
        if nonce.len() != 12 {
            return Err("nonce must be 12 bytes".into());
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        cipher
            .decrypt(Nonce::from_slice(&nonce), data.as_ref())
            .map(Some)
            .map_err(|_| "the key does not open it (wrong SHOPLAKE_TOKEN_KEY or token.key?)".into())
    }
}

/// Where the key file of a token directory lives: beside it.
pub fn key_path(token_dir: &Path) -> PathBuf {
    token_dir.parent().unwrap_or(token_dir).join("token.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_another_key() {
        let k = SealKey::generate();
        let sealed = k.seal(b"refresh-token-123");
        assert!(!String::from_utf8_lossy(&sealed).contains("refresh-token-123"));
        assert_eq!(k.open(&sealed).unwrap().unwrap(), b"refresh-token-123");
        assert!(SealKey::generate().open(&sealed).is_err());
        assert_eq!(k.open(b"{\"access_token\": \"x\"}").unwrap(), None);
        assert!(format!("{k:?}").contains("***"));
        let back = SealKey::from_base64(&k.to_base64(), "k").unwrap();
        assert_eq!(back.open(&sealed).unwrap().unwrap(), b"refresh-token-123");
        assert!(
            SealKey::from_base64("c2hvcnQ=", "k")
                .unwrap_err()
                .contains("32 bytes")
        );
    }
}
