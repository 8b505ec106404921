//! The bodies a run sends: single leaves, framed batches of leaves, JSON audit events, or one
//! fixed body.
//!
//! Unique leaves are an 8-byte prefix drawn at random once per run, then a big-endian counter
//! shared by all connections, then filler (random bytes, also drawn once per run). Two runs
//! therefore never send the same leaf, and within a run every leaf differs, so a log that
//! deduplicates sequences each of them. Bodies that never change (duplicate leaves, `raw`) are
//! built once and shared, so the generator spends its time on the network, not on copying.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use rand::RngCore;
use serde::Serialize;

use super::config::{LeafKind, Workload, MIN_UNIQUE_LEAF_BYTES};
use super::framing::{put_framed_leaf, BATCH_CONTENT_TYPE, LENGTH_PREFIX_BYTES};

/// The body of one request and the number of leaves in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The request body.
    pub body: Bytes,
    /// Leaves the body carries (0 for `raw`, 1 for an event or a single leaf).
    pub leaves: u64,
}

/// Makes the body of every request of a run; shared by all connections.
#[derive(Debug)]
pub struct RequestSource {
    generator: Generator,
    content_type: String,
}

#[derive(Debug)]
enum Generator {
    /// The same body every time.
    Fixed { body: Bytes, leaves: u64 },
    /// New leaves every time; `framed` for batches.
    UniqueLeaves {
        template: Bytes,
        leaves_per_request: u64,
        framed: bool,
        next_leaf: AtomicU64,
    },
    /// A new audit event every time.
    Events {
        run_seed: u64,
        next_event: AtomicU64,
    },
}

impl RequestSource {
    /// Prepares the bodies of `workload`, drawing the run's prefix and filler from `rng`.
    /// The workload must have passed [`super::LoadConfig::validate`].
    pub fn new(workload: &Workload, rng: &mut impl RngCore) -> RequestSource {
        let (generator, content_type) = match workload {
            Workload::Add {
                leaf_size,
                leaf_kind,
            } => (
                leaf_generator(*leaf_size, 1, false, *leaf_kind, rng),
                BATCH_CONTENT_TYPE.to_owned(),
            ),
            Workload::AddBatch {
                leaf_size,
                leaves_per_batch,
                leaf_kind,
            } => (
                leaf_generator(*leaf_size, *leaves_per_batch, true, *leaf_kind, rng),
                BATCH_CONTENT_TYPE.to_owned(),
            ),
            Workload::Events => (
                Generator::Events {
                    run_seed: rng.next_u64(),
                    next_event: AtomicU64::new(0),
                },
                "application/json".to_owned(),
            ),
            Workload::Raw { body, content_type } => (
                Generator::Fixed {
                    body: body.clone(),
                    leaves: 0,
                },
                content_type.clone(),
            ),
        };
        RequestSource {
            generator,
            content_type,
        }
    }

    /// The `Content-Type` of every body.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The body of the next request.
    pub fn next_payload(&self) -> Payload {
        match &self.generator {
            Generator::Fixed { body, leaves } => Payload {
                body: body.clone(),
                leaves: *leaves,
            },
            Generator::UniqueLeaves {
                template,
                leaves_per_request,
                framed,
                next_leaf,
            } => {
                let first = next_leaf.fetch_add(*leaves_per_request, Ordering::Relaxed);
                let framing = if *framed { LENGTH_PREFIX_BYTES } else { 0 };
                let request_count =
                    usize::try_from(*leaves_per_request).expect("leaves per batch are bounded");
                let mut body = BytesMut::with_capacity((framing + template.len()) * request_count);
                let leaf_length =
                    u32::try_from(template.len()).expect("leaf sizes are bounded far below 4 GiB");
                for leaf_number in first..first + leaves_per_request {
                    if *framed {
                        body.put_u32(leaf_length);
                    }
                    put_unique_leaf(&mut body, template, leaf_number);
                }
                Payload {
                    body: body.freeze(),
                    leaves: *leaves_per_request,
                }
            }
            Generator::Events {
                run_seed,
                next_event,
            } => {
                let event_number = next_event.fetch_add(1, Ordering::Relaxed);
                Payload {
                    body: Bytes::from(audit_event(*run_seed, event_number, SystemTime::now())),
                    leaves: 1,
                }
            }
        }
    }
}

fn leaf_generator(
    leaf_size: usize,
    leaves_per_request: usize,
    framed: bool,
    leaf_kind: LeafKind,
    rng: &mut impl RngCore,
) -> Generator {
    let mut template = vec![0u8; leaf_size];
    rng.fill_bytes(&mut template);
    let leaves_per_request = u64::try_from(leaves_per_request).expect("batch sizes fit in u64");
    match leaf_kind {
        LeafKind::Unique => {
            debug_assert!(leaf_size >= MIN_UNIQUE_LEAF_BYTES, "checked by validate");
            Generator::UniqueLeaves {
                template: Bytes::from(template),
                leaves_per_request,
                framed,
                next_leaf: AtomicU64::new(0),
            }
        }
        LeafKind::Duplicate => {
            let body = if framed {
                let mut batch = BytesMut::new();
                for _ in 0..leaves_per_request {
                    put_framed_leaf(&mut batch, &template);
                }
                batch.freeze()
            } else {
                Bytes::from(template)
            };
            Generator::Fixed {
                body,
                leaves: leaves_per_request,
            }
        }
    }
}

/// The run prefix (8 bytes), the leaf number (8 bytes, big-endian), then the filler.
fn put_unique_leaf(out: &mut BytesMut, template: &[u8], leaf_number: u64) {
    out.put_slice(&template[..8]);
    out.put_u64(leaf_number);
    out.put_slice(&template[MIN_UNIQUE_LEAF_BYTES..]);
}

/// A plausible audit event. Fields vary by a hash of the event number, so that the mix of
/// actors, actions and resources looks like traffic rather than a cycle; `request_id` makes
/// every event of every run unique.
#[derive(Debug, Serialize)]
struct AuditEvent<'a> {
    actor: String,
    action: &'a str,
    resource: String,
    outcome: &'a str,
    time: String,
    request_id: String,
}

const ACTIONS: [&str; 8] = [
    "document.read",
    "document.update",
    "document.delete",
    "user.login",
    "user.logout",
    "role.grant",
    "role.revoke",
    "export.create",
];
const RESOURCE_KINDS: [&str; 6] = ["documents", "users", "roles", "exports", "projects", "keys"];

fn audit_event(run_seed: u64, event_number: u64, now: SystemTime) -> Vec<u8> {
    let mix = splitmix64(run_seed ^ event_number);
    let event = AuditEvent {
        actor: format!("user-{:04}", mix % 1000),
        action: ACTIONS[((mix >> 10) % ACTIONS.len() as u64) as usize],
        resource: format!(
            "{}/{}",
            RESOURCE_KINDS[((mix >> 13) % RESOURCE_KINDS.len() as u64) as usize],
            (mix >> 16) % 100_000
        ),
        outcome: if (mix >> 40) % 20 == 0 {
            "denied"
        } else {
            "success"
        },
        time: rfc3339_utc(now),
        request_id: format!("{run_seed:016x}-{event_number}"),
    };
    serde_json::to_vec(&event).expect("an event of strings always serialises")
}

/// Mixes the bits of a counter (Steele, Lea and Flood's SplitMix64 finaliser).
fn splitmix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`; times before 1970 are written as 1970.
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::load::framing::{decode_batch, BatchLimits};

    fn source(workload: Workload) -> RequestSource {
        RequestSource::new(&workload, &mut StdRng::seed_from_u64(7))
    }

    const LIMITS: BatchLimits = BatchLimits {
        max_leaves: 1000,
        max_leaf_bytes: 1 << 20,
    };

    #[test]
    fn unique_leaves_have_the_size_asked_and_never_repeat() {
        let source = source(Workload::Add {
            leaf_size: 64,
            leaf_kind: LeafKind::Unique,
        });
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let payload = source.next_payload();
            assert_eq!(payload.body.len(), 64);
            assert_eq!(payload.leaves, 1);
            assert!(seen.insert(payload.body), "a leaf repeated");
        }
    }

    #[test]
    fn unique_leaves_of_two_runs_differ() {
        let workload = Workload::Add {
            leaf_size: 16,
            leaf_kind: LeafKind::Unique,
        };
        let first = RequestSource::new(&workload, &mut StdRng::seed_from_u64(1)).next_payload();
        let second = RequestSource::new(&workload, &mut StdRng::seed_from_u64(2)).next_payload();
        assert_ne!(first.body, second.body);
    }

    #[test]
    fn duplicate_leaves_are_always_the_same_bytes() {
        let source = source(Workload::Add {
            leaf_size: 3,
            leaf_kind: LeafKind::Duplicate,
        });
        let first = source.next_payload();
        assert_eq!(first.body.len(), 3);
        assert_eq!(source.next_payload(), first);
    }

    #[test]
    fn batches_are_framed_and_hold_unique_leaves() {
        let source = source(Workload::AddBatch {
            leaf_size: 32,
            leaves_per_batch: 10,
            leaf_kind: LeafKind::Unique,
        });
        assert_eq!(source.content_type(), "application/octet-stream");
        let mut seen = HashSet::new();
        for _ in 0..5 {
            let payload = source.next_payload();
            assert_eq!(payload.leaves, 10);
            assert_eq!(payload.body.len(), 10 * (4 + 32));
            let leaves = decode_batch(&payload.body, LIMITS).expect("well-framed batch");
            assert_eq!(leaves.len(), 10);
            for leaf in leaves {
                assert_eq!(leaf.len(), 32);
                assert!(seen.insert(leaf.to_vec()), "a leaf repeated");
            }
        }
    }

    #[test]
    fn duplicate_batches_repeat_one_leaf() {
        let source = source(Workload::AddBatch {
            leaf_size: 5,
            leaves_per_batch: 3,
            leaf_kind: LeafKind::Duplicate,
        });
        let payload = source.next_payload();
        let leaves = decode_batch(&payload.body, LIMITS).expect("well-framed batch");
        assert_eq!(leaves.len(), 3);
        assert!(leaves.iter().all(|leaf| *leaf == leaves[0]));
    }

    #[test]
    fn events_are_json_objects_with_varied_fields() {
        let source = source(Workload::Events);
        assert_eq!(source.content_type(), "application/json");
        let mut actors = HashSet::new();
        let mut actions = HashSet::new();
        let mut request_ids = HashSet::new();
        for _ in 0..200 {
            let payload = source.next_payload();
            assert_eq!(payload.leaves, 1);
            let event: serde_json::Value =
                serde_json::from_slice(&payload.body).expect("events are JSON");
            for field in ["actor", "action", "resource", "outcome", "time"] {
                assert!(event[field].is_string(), "{field} missing in {event}");
            }
            actors.insert(event["actor"].to_string());
            actions.insert(event["action"].to_string());
            request_ids.insert(event["request_id"].to_string());
        }
        assert!(actors.len() > 50, "only {} actors", actors.len());
        assert_eq!(actions.len(), ACTIONS.len());
        assert_eq!(request_ids.len(), 200);
    }

    #[test]
    fn raw_bodies_are_sent_as_given() {
        let source = source(Workload::Raw {
            body: Bytes::from_static(b"hello"),
            content_type: "text/plain".into(),
        });
        assert_eq!(source.content_type(), "text/plain");
        assert_eq!(
            source.next_payload(),
            Payload {
                body: Bytes::from_static(b"hello"),
                leaves: 0
            }
        );
    }

    #[test]
    fn writes_utc_times_in_rfc3339() {
        let at = |seconds: u64, millis: u64| {
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }
}
