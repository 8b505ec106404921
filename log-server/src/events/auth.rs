//! Principals and roles: who may write events (producer), read and export them (reader), or
//! erase payloads and set holds (admin). A principal is known by the SHA-256 of its bearer
//! token, so that the configuration never holds a usable token.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Writes leaves and events.
    Producer,
    /// Reads, queries, verifies and exports events.
    Reader,
    /// Erases payloads, sets and lifts legal holds; may also read.
    Admin,
}

impl Role {
    /// The role's name in configuration and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Its name, bound into every event it submits as `submitted_by`.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials (HTTP 401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A known principal whose role does not allow this (HTTP 403).
    #[error("principal `{principal}` has role {role}; this needs {needed}")]
    Forbidden {
        /// The principal.
        principal: String,
        /// Its role.
        role: &'static str,
        /// The roles that would do.
        needed: String,
    },
}

/// The principal named by the `Authorization: Bearer` header, if its role is one of `roles`.
pub fn authorize(
    principals: &HashMap<[u8; 32], Principal>,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Principal, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Unauthenticated(
            "an Authorization: Bearer <token> header is required",
        ))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer "))
        .ok_or(AuthError::Unauthenticated(
            "the Authorization header is not `Bearer <token>`",
        ))?;
    let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    let principal = principals.get(&digest).ok_or(AuthError::Unauthenticated(
        "the token is not one of a principal",
    ))?;
    if !roles.contains(&principal.role) {
        return Err(AuthError::Forbidden {
            principal: principal.name.clone(),
            role: principal.role.as_str(),
            needed: roles
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
        });
    }
    Ok(principal.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principals() -> HashMap<[u8; 32], Principal> {
        let mut map = HashMap::new();
        map.insert(
            Sha256::digest(b"reader-token").into(),
            Principal {
                name: "auditor".into(),
                role: Role::Reader,
            },
        );
        map
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header value"),
        );
        headers
    }

    #[test]
    fn refuses_missing_and_unknown_tokens_as_unauthenticated() {
        let map = principals();
        assert!(matches!(
            authorize(&map, &HeaderMap::new(), &[Role::Reader]),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            authorize(&map, &bearer("nope"), &[Role::Reader]),
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn refuses_a_known_principal_with_the_wrong_role_as_forbidden() {
        let map = principals();
        assert!(matches!(
            authorize(&map, &bearer("reader-token"), &[Role::Admin]),
            Err(AuthError::Forbidden { .. })
        ));
        let principal =
            authorize(&map, &bearer("reader-token"), &[Role::Reader, Role::Admin]).expect("ok");
        assert_eq!(principal.name, "auditor");
    }
}
