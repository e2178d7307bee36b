//! `[ui]`: the review workbench's switch, session lifetime and cookie policy. Read as written,
//! then bounds-checked by [`validate_ui`].

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::duration;

/// The review workbench's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// Serve `/ui` at all.
    pub enabled: bool,
    /// A session ends after this long without a request.
    #[serde(deserialize_with = "duration")]
    pub session_idle: Duration,
    /// When the session cookie is marked `Secure`.
    pub secure_cookie: SecureCookie,
}

/// When the workbench's session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    /// When the request came over HTTPS through a proxy (`X-Forwarded-Proto: https`).
    Auto,
    /// Always (riskhook is only reached over HTTPS).
    Always,
    /// Never (plain HTTP only).
    Never,
}

pub(super) fn validate_ui(ui: UiConfig) -> anyhow::Result<UiConfig> {
    if ui.session_idle < Duration::from_secs(60)
        || ui.session_idle > Duration::from_secs(86_400 * 7)
    {
        bail!("invalid configuration: ui.session_idle must be between 1m and 7days");
    }
    Ok(ui)
}
