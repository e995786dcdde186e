//! Short-lived client secrets (`POST /v1/realtime/client_secrets`): a server
//! holding an API key mints one for a browser, which can then open one or
//! more live sessions until it expires, and nothing else. Secrets are kept as
//! SHA-256 digests with their session configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::protocol::SessionConfig;

/// Default lifetime of a secret (OpenAI's).
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Accepted lifetimes, seconds (OpenAI's range).
pub const TTL_SECONDS: std::ops::RangeInclusive<u64> = 10..=7200;
/// Most secrets alive at once; minting beyond answers 429.
pub const MAX_SECRETS: usize = 10_000;

/// A minted secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Minted {
    /// The secret (`ek_…`), shown once.
    pub value: String,
    /// Unix time it expires at.
    pub expires_at: u64,
}

/// The secrets alive.
#[derive(Default)]
pub struct ClientSecrets {
    alive: Mutex<HashMap<[u8; 32], (Instant, SessionConfig)>>,
}

impl std::fmt::Debug for ClientSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientSecrets")
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl ClientSecrets {
    /// Mints a secret valid for `ttl` whose sessions start with `config`;
    /// `None` when [`MAX_SECRETS`] are alive.
    pub fn mint(&self, ttl: Duration, config: SessionConfig) -> Option<Minted> {
        let now = Instant::now();
        let mut alive = self.alive.lock().unwrap_or_else(|e| e.into_inner());
        alive.retain(|_, (expires, _)| *expires > now);
        if alive.len() >= MAX_SECRETS {
            return None;
        }
        let value = format!(
            "ek_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        alive.insert(digest(&value), (now + ttl, config));
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some(Minted {
            value,
            expires_at: (unix_now + ttl).as_secs(),
        })
    }

    /// The session configuration of `secret` if it is alive.
    pub fn session_of(&self, secret: &str) -> Option<SessionConfig> {
        let alive = self.alive.lock().unwrap_or_else(|e| e.into_inner());
        alive
            .get(&digest(secret))
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, config)| config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::protocol::AudioFormat;

    fn config() -> SessionConfig {
        SessionConfig {
            format: AudioFormat::Pcmu,
            model: "whisper-1".into(),
            language: Some("en".into()),
            prompt: String::new(),
            keywords: vec![],
            turn_detection: None,
            noise_reduction: serde_json::Value::Null,
            logprobs: false,
        }
    }

    #[test]
    fn a_secret_opens_its_session_until_it_expires() {
        let secrets = ClientSecrets::default();
        let minted = secrets.mint(Duration::from_secs(60), config()).unwrap();
        assert!(minted.value.starts_with("ek_") && minted.value.len() > 60);
        assert_eq!(secrets.session_of(&minted.value), Some(config()));
        assert_eq!(secrets.session_of("ek_guess"), None);
        let short = secrets.mint(Duration::ZERO, config()).unwrap();
        assert_eq!(secrets.session_of(&short.value), None);
    }
}
