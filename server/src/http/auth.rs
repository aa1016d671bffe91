//! Bearer tokens: who is calling, and what they may reach.
//!
//! Tokens come from the configuration. A presented token is compared with every configured
//! one, each comparison in constant time over a fixed-size buffer, and the loop never stops
//! early, so neither the time taken nor the path through the code says which token was
//! close. Tokens are never logged and never appear in an error.

use cardcore_core::ProfileId;
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;
use crate::config::{Role, TokenConfig};

/// The longest token compared; a longer presented or configured token never matches.
pub const TOKEN_BYTES_MAX: usize = 256;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Sees and manages one profile.
    Profile(ProfileId),
    /// Manages the spend controls of one client id.
    Application(String),
    /// Acts on every profile and the spend controls, and on the sandbox endpoints in sandbox
    /// mode.
    Operator,
}

impl Caller {
    /// Whether this caller may reach `profile`'s resources. Another profile's resources are
    /// answered as not found, so a token cannot probe which profiles exist.
    pub fn reach_profile(&self, profile: ProfileId) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Profile(own) if *own == profile => Ok(()),
            Caller::Profile(_) => Err(ApiError::not_found(
                "profileId",
                format!("profile {profile} not found"),
            )),
            Caller::Application(_) => Err(ApiError::forbidden(
                "an application token manages spend controls only, not profiles",
            )),
        }
    }

    /// Whether this caller may manage the spend controls of `client_id`.
    pub fn reach_application(&self, client_id: &str) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Application(own) if own == client_id => Ok(()),
            Caller::Application(_) => Err(ApiError::not_found(
                "clientId",
                "application not found".to_owned(),
            )),
            Caller::Profile(_) => Err(ApiError::forbidden(
                "spend controls need an application (client credentials) token",
            )),
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self, Caller::Operator)
    }
}

/// Reads `Authorization: Bearer <token>` and finds the caller. Anything else is a 401 that
/// does not say why beyond "missing" or "not valid".
pub fn authenticate(header: Option<&[u8]>, tokens: &[TokenConfig]) -> Result<Caller, ApiError> {
    let header = header.ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    let presented = bearer(header).ok_or_else(|| ApiError::unauthorized("not a bearer token"))?;
    match find_role(presented, tokens) {
        Some(Role::Profile(id)) => Ok(Caller::Profile(*id)),
        Some(Role::Application(client)) => Ok(Caller::Application(client.clone())),
        Some(Role::Operator) => Ok(Caller::Operator),
        None => Err(ApiError::unauthorized("the bearer token is not valid")),
    }
}

fn bearer(header: &[u8]) -> Option<&[u8]> {
    let scheme = b"Bearer ";
    if header.len() <= scheme.len() || !header[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return None;
    }
    let token = header[scheme.len()..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The role of the token equal to `presented`, checking every configured token in constant
/// time.
fn find_role<'a>(presented: &[u8], tokens: &'a [TokenConfig]) -> Option<&'a Role> {
    let presented_buf = padded(presented);
    let mut found: Option<&Role> = None;
    for token in tokens {
        let configured = token.token.expose().as_bytes();
        let same = equal_padded(&presented_buf, presented.len(), configured);
        // Record the match without branching on the secret comparison itself.
        if bool::from(same) {
            found = Some(&token.role);
        }
    }
    found
}

fn padded(bytes: &[u8]) -> [u8; TOKEN_BYTES_MAX] {
    let mut buf = [0u8; TOKEN_BYTES_MAX];
    let len = bytes.len().min(TOKEN_BYTES_MAX);
    buf[..len].copy_from_slice(&bytes[..len]);
    buf
}

fn equal_padded(
    presented: &[u8; TOKEN_BYTES_MAX],
    presented_len: usize,
    configured: &[u8],
) -> Choice {
    let configured_buf = padded(configured);
    let fits = Choice::from(u8::from(
        presented_len <= TOKEN_BYTES_MAX && configured.len() <= TOKEN_BYTES_MAX,
    ));
    let same_len = (presented_len as u64).ct_eq(&(configured.len() as u64));
    presented.ct_eq(&configured_buf) & same_len & fits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn tokens() -> Vec<TokenConfig> {
        vec![
            TokenConfig {
                token: Secret::new("profile-one-token"),
                role: Role::Profile(ProfileId(1)),
            },
            TokenConfig {
                token: Secret::new("app-token"),
                role: Role::Application("client-1".into()),
            },
            TokenConfig {
                token: Secret::new("operator-token"),
                role: Role::Operator,
            },
        ]
    }

    #[test]
    fn tokens_resolve_to_callers() {
        let cases: &[(Option<&str>, Option<Caller>)] = &[
            (
                Some("Bearer profile-one-token"),
                Some(Caller::Profile(ProfileId(1))),
            ),
            (
                Some("bearer app-token"),
                Some(Caller::Application("client-1".into())),
            ),
            (Some("Bearer operator-token "), Some(Caller::Operator)),
            (Some("Bearer operator-toke"), None),
            (Some("Bearer operator-tokenx"), None),
            (Some("Basic operator-token"), None),
            (Some("Bearer "), None),
            (Some("operator-token"), None),
            (None, None),
        ];
        let tokens = tokens();
        for (header, expected) in cases {
            let got = authenticate(header.map(str::as_bytes), &tokens).ok();
            assert_eq!(&got, expected, "{header:?}");
        }
        let long = format!("Bearer {}", "x".repeat(TOKEN_BYTES_MAX + 10));
        assert!(authenticate(Some(long.as_bytes()), &tokens).is_err());
    }

    #[test]
    fn reach_rules() {
        let p1 = Caller::Profile(ProfileId(1));
        assert!(p1.reach_profile(ProfileId(1)).is_ok());
        assert_eq!(
            p1.reach_profile(ProfileId(2)).unwrap_err().status.as_u16(),
            404
        );
        assert_eq!(
            p1.reach_application("client-1")
                .unwrap_err()
                .status
                .as_u16(),
            403
        );
        let app = Caller::Application("client-1".into());
        assert!(app.reach_application("client-1").is_ok());
        assert_eq!(
            app.reach_application("client-2")
                .unwrap_err()
                .status
                .as_u16(),
            404
        );
        assert_eq!(
            app.reach_profile(ProfileId(1)).unwrap_err().status.as_u16(),
            403
        );
        assert!(Caller::Operator.reach_profile(ProfileId(9)).is_ok());
        assert!(Caller::Operator.reach_application("anyone").is_ok());
    }
}
