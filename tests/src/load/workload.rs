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
    /// New audit events every time: one object, or an array of `per_request` (`batch`).
    Events {
        run_seed: u64,
        next_event: AtomicU64,
        per_request: u64,
        batch: bool,
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
                    per_request: 1,
                    batch: false,
                },
                "application/json".to_owned(),
            ),
            Workload::EventsBatch { events_per_batch } => (
                Generator::Events {
                    run_seed: rng.next_u64(),
                    next_event: AtomicU64::new(0),
                    per_request: u64::try_from(*events_per_batch).expect("batch sizes fit in u64"),
                    batch: true,
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
                per_request,
                batch,
            } => {
                let first = next_event.fetch_add(*per_request, Ordering::Relaxed);
                let now = SystemTime::now();
                if !*batch {
                    return Payload {
                        body: Bytes::from(audit_event(*run_seed, first, now)),
                        leaves: 1,
                    };
                }
                let mut body = Vec::with_capacity(512 * *per_request as usize + 2);
                body.push(b'[');
                for event_number in first..first + per_request {
                    if event_number > first {
                        body.push(b',');
                    }
                    body.extend_from_slice(&audit_event(*run_seed, event_number, now));
                }
                body.push(b']');
                Payload {
                    body: Bytes::from(body),
                    leaves: *per_request,
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

/// An audit event in the `cairn.event` schema, version 1 (`spec/docs/event.md`): what a
/// producer sends to `POST /v1/events`. Fields vary by a hash of the event number, so that the
/// mix of actors, actions, resources and outcomes looks like traffic rather than a cycle; one
/// event in four carries a payload (which the log hashes); `event_id` makes every event of every
/// run unique, and so idempotency never turns a new event into a repeat.
#[derive(Debug, Serialize)]
struct AuditEvent<'a> {
    event_id: String,
    timestamp: String,
    actor: Party<'a>,
    action: &'a str,
    resource: Party<'a>,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<EventPayload>,
    context: EventContext,
    schema_version: u8,
}

/// `actor` and `resource`: a typed identifier.
#[derive(Debug, Serialize)]
struct Party<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: String,
}

#[derive(Debug, Serialize)]
struct EventPayload {
    bytes_changed: u64,
    reason: &'static str,
}

#[derive(Debug, Serialize)]
struct EventContext {
    request_id: String,
    session: String,
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
const RESOURCE_TYPES: [&str; 6] = ["document", "invoice", "user", "role", "export", "key"];
const REASONS: [&str; 4] = ["edit", "policy", "migration", "request"];

fn audit_event(run_seed: u64, event_number: u64, now: SystemTime) -> Vec<u8> {
    let mix = splitmix64(run_seed ^ event_number);
    let pick = |shift: u32, choices: u64| (mix >> shift) % choices;
    let actor = if pick(0, 5) == 0 {
        Party {
            kind: "service",
            id: format!("svc-{:02}", pick(3, 20)),
        }
    } else {
        Party {
            kind: "user",
            id: format!("user-{:04}", pick(8, 1000)),
        }
    };
    let outcome = match pick(18, 20) {
        0 => "denied",
        1 => "failure",
        _ => "success",
    };
    let payload = (pick(23, 4) == 0).then(|| EventPayload {
        bytes_changed: pick(25, 65_536),
        reason: REASONS[pick(41, REASONS.len() as u64) as usize],
    });
    let event = AuditEvent {
        event_id: event_uuid(run_seed, event_number),
        timestamp: rfc3339_utc(now),
        actor,
        action: ACTIONS[pick(13, ACTIONS.len() as u64) as usize],
        resource: Party {
            kind: RESOURCE_TYPES[pick(43, RESOURCE_TYPES.len() as u64) as usize],
            id: format!("{}", pick(46, 100_000)),
        },
        outcome,
        payload,
        context: EventContext {
            request_id: format!("r-{event_number}"),
            session: format!("s-{:x}", pick(32, 4096)),
        },
        schema_version: 1,
    };
    serde_json::to_vec(&event).expect("an event of strings and integers always serialises")
}

/// A version 4 UUID (RFC 9562 §5.4) made of the run seed and the event number, so that it is
/// unique within a run (the variant bits only take the top two bits of the event number) and
/// across runs (the seed is random).
fn event_uuid(run_seed: u64, event_number: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&run_seed.to_be_bytes());
    bytes[8..].copy_from_slice(&event_number.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Mixes the bits of a counter (Steele, Lea and Flood's SplitMix64 finaliser).
fn splitmix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`; times before 1970 are written as 1970. The calendar is
/// cairn-spec's; only the always-present milliseconds are this tool's.
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let whole_seconds = cairn_spec::time::Instant::from_unix(seconds, 0).to_rfc3339();
    let without_zone = whole_seconds.trim_end_matches('Z');
    format!("{without_zone}.{:03}Z", since_epoch.subsec_millis())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use cairn_spec::event::EventInput;
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
    fn events_follow_the_cairn_event_schema_and_vary() {
        let source = source(Workload::Events);
        assert_eq!(source.content_type(), "application/json");
        let mut actors = HashSet::new();
        let mut actions = HashSet::new();
        let mut outcomes = HashSet::new();
        let mut event_ids = HashSet::new();
        let mut with_payload = 0;
        for _ in 0..400 {
            let payload = source.next_payload();
            assert_eq!(payload.leaves, 1);
            let event = EventInput::parse(&payload.body).unwrap_or_else(|error| {
                panic!("{error}: {}", String::from_utf8_lossy(&payload.body))
            });
            actors.insert(format!("{:?}", event.actor));
            actions.insert(event.action);
            outcomes.insert(event.outcome);
            event_ids.insert(
                event
                    .event_id
                    .expect("every event has an ID")
                    .as_str()
                    .to_owned(),
            );
            with_payload += usize::from(event.payload.is_some());
        }
        assert!(actors.len() > 100, "only {} actors", actors.len());
        assert_eq!(actions.len(), ACTIONS.len());
        assert_eq!(outcomes.len(), 3, "{outcomes:?}");
        assert_eq!(event_ids.len(), 400, "event IDs repeat");
        assert!(
            (50..=150).contains(&with_payload),
            "{with_payload} payloads"
        );
    }

    #[test]
    fn event_batches_are_arrays_of_distinct_events() {
        let source = source(Workload::EventsBatch {
            events_per_batch: 20,
        });
        let mut event_ids = HashSet::new();
        for _ in 0..5 {
            let payload = source.next_payload();
            assert_eq!(payload.leaves, 20);
            let items: Vec<serde_json::Value> =
                serde_json::from_slice(&payload.body).expect("a JSON array");
            assert_eq!(items.len(), 20);
            for item in items {
                let event = EventInput::parse(item.to_string().as_bytes()).expect("an event");
                assert!(event_ids.insert(event.event_id.expect("an ID").as_str().to_owned()));
            }
        }
    }

    #[test]
    fn event_ids_are_version_4_uuids() {
        assert_eq!(
            event_uuid(0x0123_4567_89ab_cdef, 0xffff_ffff_ffff_ffff),
            "01234567-89ab-4def-bfff-ffffffffffff"
        );
        assert_eq!(event_uuid(0, 1), "00000000-0000-4000-8000-000000000001");
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
