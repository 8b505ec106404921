//! Principals and roles: who may write events (producer), read and export them (reader), or
//! erase payloads and set holds (admin), how each is recognised, and how fast each may go.
//!
//! **Credentials.** A principal is known by the SHA-256 of its bearer token, so that the
//! configuration never holds a usable token, or by the SHA-256 fingerprint of a client
//! certificate that the TLS edge verified (mTLS, [`cairn_edge::client_certificate`]). A request
//! with an `Authorization` header is judged by that header alone; one without, by its
//! connection's certificate. The scheme name is case-insensitive (`Bearer`, `bearer`: RFC 7235
//! section 2.1).
//!
//! **Constant time.** A token is looked up by comparing the SHA-256 of the presented token with
//! every configured token digest, each whole, with `subtle`, and choosing the match without a
//! branch: the time taken depends on the presented token's length (SHA-256) and the number of
//! configured credentials, not on which one matched nor on how many leading bytes of a digest
//! agree. No hash map is keyed by the digest. Whether some credential matched is then known,
//! as the answer (401 or not) tells anyway. The number of credentials is bounded
//! ([`MAX_CREDENTIALS`]), and so is the scan.
//!
//! **Rate limits.** Each principal (by name: two tokens of one principal share it) may have a
//! limit in requests a second with a burst, enforced with the generic cell rate algorithm: one
//! atomic "theoretical arrival time" a principal, no lock, no timer. A request beyond the limit
//! is refused 429 with `Retry-After`. Limits belong to configured principals only, so their
//! memory is bounded by the configuration; unauthenticated requests are not limited here.
//!
//! **Reload.** [`Principals`] is the table in service. [`Principals::replace`] swaps in a new
//! table whole, so a revoked credential is refused from the next request on; the rate-limit
//! state of a principal whose limit did not change carries over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use cairn_edge::metrics::Exposition;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// The most credentials (tokens and client certificates) a log takes: each request compares
/// the presented token with all of them.
pub const MAX_CREDENTIALS: usize = 10_000;

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
    /// A known principal over its rate limit (HTTP 429).
    #[error(
        "principal `{principal}` is over its rate limit of {requests_per_second} requests a \
         second (burst {burst}); retry in {retry_after_seconds} s"
    )]
    RateLimited {
        /// The principal.
        principal: String,
        /// Its limit.
        requests_per_second: u32,
        /// Its burst.
        burst: u32,
        /// Whole seconds until a request would be let through (at least 1).
        retry_after_seconds: u64,
    },
}

/// A rate limit: a sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Requests a second, sustained (at least 1).
    pub requests_per_second: u32,
    /// Requests let through at once after a quiet spell [default: requests_per_second].
    pub burst: Option<u32>,
}

impl Rate {
    fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests_per_second).max(1)
    }
}

/// Rate limits: one for every principal, and some principals' own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// The limit of a principal without its own; none: unlimited.
    pub default: Option<Rate>,
    /// Limits by principal name.
    pub principals: BTreeMap<String, Rate>,
}

impl RateLimits {
    fn of(&self, name: &str) -> Option<Rate> {
        self.principals.get(name).copied().or(self.default)
    }
}

/// What the configuration says beyond bearer tokens: principals known by a client certificate,
/// and rate limits.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// SHA-256 of a client certificate's DER encoding → its principal.
    pub client_certificates: Vec<([u8; 32], Principal)>,
    /// Rate limits.
    pub rate_limits: RateLimits,
}

/// Everything that makes a table of principals.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// SHA-256 of a bearer token → its principal.
    pub tokens: Vec<([u8; 32], Principal)>,
    /// SHA-256 of a client certificate → its principal.
    pub client_certificates: Vec<([u8; 32], Principal)>,
    /// Rate limits.
    pub rate_limits: RateLimits,
}

/// One principal's rate limit: the generic cell rate algorithm. Each request moves the
/// theoretical arrival time (`tat`) one emission interval later (from now, if it was in the
/// past); a request that would move it more than the burst's worth of intervals past now is
/// refused and moves nothing.
#[derive(Debug)]
struct Limiter {
    rate: Rate,
    /// Nanoseconds between requests at the sustained rate.
    interval: u64,
    /// How far past now the theoretical arrival time may go: burst × interval.
    tolerance: u64,
    /// Theoretical arrival time, in nanoseconds since `epoch`.
    tat: AtomicU64,
    epoch: Instant,
    /// Requests refused.
    refused: AtomicU64,
}

impl Limiter {
    fn new(rate: Rate) -> Limiter {
        let interval = (1_000_000_000 / u64::from(rate.requests_per_second.max(1))).max(1);
        Limiter {
            rate,
            interval,
            tolerance: interval.saturating_mul(u64::from(rate.burst())),
            tat: AtomicU64::new(0),
            epoch: Instant::now(),
            refused: AtomicU64::new(0),
        }
    }

    /// Lets one request through at `now`, or says how long until one would be.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let now =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval);
            if next - now > self.tolerance {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Duration::from_nanos(next - now - self.tolerance));
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// A credential digest as four words, for a constant-time comparison of four steps.
type Words = [u64; 4];

fn words(digest: &[u8; 32]) -> Words {
    let mut out = [0u64; 4];
    for (word, chunk) in out.iter_mut().zip(digest.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
    }
    out
}

/// The index paired with `digest` in `credentials`, found in constant time (see the module's
/// documentation): every digest is compared whole, and the index chosen without a branch.
fn find(credentials: &[(Words, u32)], digest: &[u8; 32]) -> Option<usize> {
    let digest = words(digest);
    let mut matched = Choice::from(0);
    let mut found = 0u32;
    for (candidate, index) in credentials {
        let equal = candidate[..].ct_eq(&digest[..]);
        found.conditional_assign(index, equal);
        matched |= equal;
    }
    bool::from(matched).then_some(found as usize)
}

/// One credential's principal and its rate limiter.
#[derive(Debug)]
struct Entry {
    principal: Principal,
    limiter: Option<Arc<Limiter>>,
}

/// The principals in service: their credentials and rate limits.
#[derive(Debug, Default)]
pub struct PrincipalTable {
    entries: Vec<Entry>,
    tokens: Vec<(Words, u32)>,
    certificates: Vec<(Words, u32)>,
    limiters: BTreeMap<String, Arc<Limiter>>,
}

impl PrincipalTable {
    /// The table of `credentials`, keeping the rate-limit state of `previous` for principals
    /// whose limit is unchanged.
    pub fn build(credentials: &Credentials, previous: Option<&PrincipalTable>) -> PrincipalTable {
        let mut table = PrincipalTable::default();
        let mut add = |digest: &[u8; 32], principal: &Principal, tokens: bool| {
            let limiter = credentials.rate_limits.of(&principal.name).map(|rate| {
                table
                    .limiters
                    .entry(principal.name.clone())
                    .or_insert_with(|| {
                        previous
                            .and_then(|previous| previous.limiters.get(&principal.name))
                            .filter(|kept| kept.rate == rate)
                            .cloned()
                            .unwrap_or_else(|| Arc::new(Limiter::new(rate)))
                    })
                    .clone()
            });
            let index = u32::try_from(table.entries.len()).expect("at most MAX_CREDENTIALS");
            table.entries.push(Entry {
                principal: principal.clone(),
                limiter,
            });
            let list = if tokens {
                &mut table.tokens
            } else {
                &mut table.certificates
            };
            list.push((words(digest), index));
        };
        for (digest, principal) in &credentials.tokens {
            add(digest, principal, true);
        }
        for (digest, principal) in &credentials.client_certificates {
            add(digest, principal, false);
        }
        table
    }

    /// How many credentials (tokens and certificates) the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no credential.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The table of principals in service, replaceable while requests are served, and what its
/// reloads and rate limits did, for `/metrics`.
#[derive(Debug)]
pub struct Principals {
    table: RwLock<Arc<PrincipalTable>>,
    reloads: AtomicU64,
    failed_reloads: AtomicU64,
    last_reload_failed: AtomicBool,
}

impl Principals {
    /// The table of `credentials` in service.
    pub fn new(credentials: &Credentials) -> Principals {
        Principals {
            table: RwLock::new(Arc::new(PrincipalTable::build(credentials, None))),
            reloads: AtomicU64::new(0),
            failed_reloads: AtomicU64::new(0),
            last_reload_failed: AtomicBool::new(false),
        }
    }

    /// The table in service now.
    pub fn table(&self) -> Arc<PrincipalTable> {
        self.table.read().clone()
    }

    /// Puts the table of `credentials` in service, from the next request on.
    pub fn replace(&self, credentials: &Credentials) {
        let mut table = self.table.write();
        let next = PrincipalTable::build(credentials, Some(&table));
        *table = Arc::new(next);
        drop(table);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.last_reload_failed.store(false, Ordering::Relaxed);
    }

    /// Notes a reload that failed (the table in service stays).
    pub fn reload_failed(&self) {
        self.failed_reloads.fetch_add(1, Ordering::Relaxed);
        self.last_reload_failed.store(true, Ordering::Relaxed);
    }

    /// Adds the principals' metrics to a scrape of `GET /metrics`.
    pub fn expose_metrics(&self, exposition: &mut Exposition) {
        let table = self.table();
        exposition.gauge(
            "cairn_log_credentials",
            "Credentials in service (bearer tokens and client certificates).",
            table.len() as u64,
        );
        exposition.counters(
            "cairn_log_config_reloads_total",
            "Reloads of the principals from the configuration file (SIGHUP or a change), by \
             result.",
            vec![
                (
                    vec![("result", "ok".to_string())],
                    self.reloads.load(Ordering::Relaxed),
                ),
                (
                    vec![("result", "failed".to_string())],
                    self.failed_reloads.load(Ordering::Relaxed),
                ),
            ],
        );
        exposition.gauge(
            "cairn_log_config_reload_failing",
            "1 while the configuration file does not load (the principals loaded before stay \
             in service; the log says why).",
            i64::from(self.last_reload_failed.load(Ordering::Relaxed)),
        );
        if table.limiters.is_empty() {
            return;
        }
        exposition.counters(
            "cairn_log_rate_limited_total",
            "Requests refused 429 by a principal's rate limit.",
            table
                .limiters
                .iter()
                .map(|(name, limiter)| {
                    let labels = vec![("principal", name.clone())];
                    (labels, limiter.refused.load(Ordering::Relaxed))
                })
                .collect(),
        );
    }
}

/// The token of an `Authorization: Bearer <token>` header, the scheme matched without regard
/// to case.
fn bearer_token(value: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    (!token.is_empty()).then_some(token)
}

/// The principal named by the `Authorization: Bearer` header, or else by the connection's
/// client certificate, if its role is one of `roles` and it is within its rate limit.
pub fn authorize(
    principals: &Principals,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Principal, AuthError> {
    let table = principals.table.read();
    let index = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let token = bearer_token(value.as_bytes()).ok_or(AuthError::Unauthenticated(
                "the Authorization header is not `Bearer <token>`",
            ))?;
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            find(&table.tokens, &digest).ok_or(AuthError::Unauthenticated(
                "the token is not one of a principal",
            ))?
        }
        None => {
            let client = cairn_edge::client_certificate().ok_or(AuthError::Unauthenticated(
                "an Authorization: Bearer <token> header (or a client certificate of a \
                 principal) is required",
            ))?;
            find(&table.certificates, &client.sha256).ok_or(AuthError::Unauthenticated(
                "the client certificate is not one of a principal; send an Authorization: \
                 Bearer <token> header",
            ))?
        }
    };
    let entry = &table.entries[index];
    let principal = &entry.principal;
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
    if let Some(limiter) = &entry.limiter {
        limiter
            .take(Instant::now())
            .map_err(|wait| AuthError::RateLimited {
                principal: principal.name.clone(),
                requests_per_second: limiter.rate.requests_per_second,
                burst: limiter.rate.burst(),
                retry_after_seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            })?;
    }
    Ok(principal.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, role: Role) -> Principal {
        Principal {
            name: name.into(),
            role,
        }
    }

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    fn credentials(rate_limits: RateLimits) -> Credentials {
        Credentials {
            tokens: vec![
                (digest("reader-token"), principal("auditor", Role::Reader)),
                (
                    digest("producer-token"),
                    principal("billing", Role::Producer),
                ),
                (digest("second-token"), principal("billing", Role::Producer)),
            ],
            client_certificates: vec![([9; 32], principal("shipping", Role::Producer))],
            rate_limits,
        }
    }

    fn principals() -> Principals {
        Principals::new(&credentials(RateLimits::default()))
    }

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header value"));
        headers
    }

    fn bearer(token: &str) -> HeaderMap {
        authorization(&format!("Bearer {token}"))
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
        for malformed in [
            "Bearer",
            "Bearer ",
            "Basic cmVhZGVyLXRva2Vu",
            "Bearerreader-token",
        ] {
            assert!(
                matches!(
                    authorize(&map, &authorization(malformed), &[Role::Reader]),
                    Err(AuthError::Unauthenticated(_))
                ),
                "{malformed:?} was let through"
            );
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let map = principals();
        for value in [
            "Bearer reader-token",
            "bearer reader-token",
            "BEARER reader-token",
            "bEaReR   reader-token",
        ] {
            let principal = authorize(&map, &authorization(value), &[Role::Reader])
                .unwrap_or_else(|error| panic!("{value:?} refused: {error}"));
            assert_eq!(principal.name, "auditor");
        }
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

    #[test]
    fn finds_every_credential_and_only_those() {
        let table: Vec<(Words, u32)> = (0..50u8)
            .map(|i| (words(&[i; 32]), u32::from(i) * 3))
            .collect();
        for i in 0..50u8 {
            assert_eq!(find(&table, &[i; 32]), Some(usize::from(i) * 3));
        }
        // Differing in the last byte only, or in the first only: no match.
        let mut almost = [7u8; 32];
        almost[31] = 8;
        assert_eq!(find(&table, &almost), None);
        almost = [7u8; 32];
        almost[0] = 8;
        assert_eq!(find(&table, &almost), None);
        assert_eq!(find(&[], &[0; 32]), None);
    }

    #[tokio::test]
    async fn a_client_certificate_names_a_principal_without_a_token() {
        let map = principals();
        let known = cairn_edge::ClientCertificate { sha256: [9; 32] };
        let unknown = cairn_edge::ClientCertificate { sha256: [8; 32] };
        let with = |client| {
            let map = &map;
            cairn_edge::tls::with_client_certificate(client, async move {
                authorize(map, &HeaderMap::new(), &[Role::Producer])
            })
        };
        assert_eq!(with(Some(known)).await.expect("known").name, "shipping");
        assert!(matches!(
            with(Some(unknown)).await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            with(None).await,
            Err(AuthError::Unauthenticated(_))
        ));
        // A bearer header decides when present, certificate or not.
        let answer = cairn_edge::tls::with_client_certificate(Some(known), async {
            authorize(&map, &bearer("nope"), &[Role::Producer])
        })
        .await;
        assert!(matches!(answer, Err(AuthError::Unauthenticated(_))));
    }

    #[test]
    fn a_replaced_table_refuses_a_revoked_token_and_keeps_rate_state() {
        let limits = RateLimits {
            default: Some(Rate {
                requests_per_second: 1,
                burst: Some(2),
            }),
            principals: BTreeMap::new(),
        };
        let map = Principals::new(&credentials(limits.clone()));
        for _ in 0..2 {
            authorize(&map, &bearer("producer-token"), &[Role::Producer]).expect("within burst");
        }
        let mut revoked = credentials(limits);
        revoked
            .tokens
            .retain(|(token, _)| *token != digest("second-token"));
        map.replace(&revoked);
        assert!(matches!(
            authorize(&map, &bearer("second-token"), &[Role::Producer]),
            Err(AuthError::Unauthenticated(_))
        ));
        // The burst spent before the reload stays spent.
        assert!(matches!(
            authorize(&map, &bearer("producer-token"), &[Role::Producer]),
            Err(AuthError::RateLimited { .. })
        ));
    }

    #[test]
    fn a_principal_over_its_limit_is_told_when_to_retry_and_tokens_share_it() {
        let mut principals_limits = BTreeMap::new();
        principals_limits.insert(
            "billing".to_string(),
            Rate {
                requests_per_second: 1,
                burst: Some(3),
            },
        );
        let map = Principals::new(&credentials(RateLimits {
            default: None,
            principals: principals_limits,
        }));
        // Two tokens of one principal draw on one bucket.
        for token in ["producer-token", "second-token", "producer-token"] {
            authorize(&map, &bearer(token), &[Role::Producer]).expect("within burst");
        }
        match authorize(&map, &bearer("second-token"), &[Role::Producer]) {
            Err(AuthError::RateLimited {
                principal,
                retry_after_seconds,
                ..
            }) => {
                assert_eq!(principal, "billing");
                assert_eq!(retry_after_seconds, 1);
            }
            other => panic!("expected 429, got {other:?}"),
        }
        // No default: the reader is unlimited.
        for _ in 0..100 {
            authorize(&map, &bearer("reader-token"), &[Role::Reader]).expect("unlimited");
        }
        let mut exposition = Exposition::new();
        map.expose_metrics(&mut exposition);
        let metrics = exposition.encode();
        assert!(
            metrics.contains("cairn_log_rate_limited_total{principal=\"billing\"} 1"),
            "{metrics}"
        );
    }

    #[test]
    fn the_limiter_lets_the_sustained_rate_through_after_the_burst() {
        let limiter = Limiter::new(Rate {
            requests_per_second: 10,
            burst: Some(5),
        });
        let start = limiter.epoch + Duration::from_secs(1);
        for _ in 0..5 {
            limiter.take(start).expect("burst");
        }
        let wait = limiter.take(start).expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(100));
        // 100 ms later one more, not two.
        let later = start + Duration::from_millis(100);
        limiter.take(later).expect("one emission interval later");
        assert!(limiter.take(later).is_err());
        // After a quiet second, the whole burst again.
        let quiet = later + Duration::from_secs(1);
        for _ in 0..5 {
            limiter.take(quiet).expect("burst after a quiet spell");
        }
        assert!(limiter.take(quiet).is_err());
        assert_eq!(limiter.refused.load(Ordering::Relaxed), 3);
    }
}
