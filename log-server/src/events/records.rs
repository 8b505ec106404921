//! Legal holds and erasure marks, derived from the log.
//!
//! Every admin action is an event in the log, under a reserved action name ([`HOLD_SET`],
//! [`HOLD_LIFT`], [`PAYLOAD_ERASE`], [`RETENTION_ERASE`]), recorded before the action takes
//! effect, with what it did in its payload. The log is the only durable record of them: when
//! the events database opens, it reads those events back (through the index, by action) and
//! applies them in log order. So a hold is in force exactly when its event is in the log, and
//! an erasure whose event is logged is finished at the next open if a crash interrupted it.
//! Nothing here is written to disk on its own, so no crash between two writes can leave a
//! logged hold that is not in force.
//!
//! Only the server writes these events: producers are refused any action under
//! [`RESERVED_ACTION_PREFIX`], and an event under a reserved action counts only if the
//! principal that submitted it is its actor (as the server writes them). Their payloads are
//! never erased: they are the record of the record.

use std::collections::HashMap;

use serde_json::Value;

use super::model::{Hold, HoldTarget};

/// Actions under this prefix are the server's own.
pub const RESERVED_ACTION_PREFIX: &str = "cairn.";
/// A legal hold was set.
pub const HOLD_SET: &str = "cairn.hold.set";
/// A legal hold was lifted.
pub const HOLD_LIFT: &str = "cairn.hold.lift";
/// An admin erased one event's payload.
pub const PAYLOAD_ERASE: &str = "cairn.payload.erase";
/// The retention task erased expired payloads.
pub const RETENTION_ERASE: &str = "cairn.retention.erase";
/// An admin erased a data subject: its data keys destroyed (crypto-shredding).
pub const SUBJECT_SHRED: &str = "cairn.subject.shred";
/// The actions whose events make up the records, in no particular order.
pub const RECORD_ACTIONS: [&str; 5] = [
    HOLD_SET,
    HOLD_LIFT,
    PAYLOAD_ERASE,
    RETENTION_ERASE,
    SUBJECT_SHRED,
];

/// What applying one admin event asks to be done (again, if a crash interrupted it).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events whose payloads (contents records) are erased.
    pub erased: Vec<String>,
    /// Data keys destroyed (hex IDs).
    pub shredded_keys: Vec<String>,
}

/// Whether `action` is reserved for the server.
pub fn is_reserved(action: &str) -> bool {
    action.starts_with(RESERVED_ACTION_PREFIX)
}

/// One logged admin event, as the records read it.
pub struct RecordEvent<'a> {
    /// Its event ID.
    pub event_id: &'a str,
    /// Its action (one of [`RECORD_ACTIONS`]).
    pub action: &'a str,
    /// Its actor, who is also the principal that submitted it.
    pub actor: &'a str,
    /// Its payload.
    pub payload: &'a Value,
}

/// The holds in force and the erasures done, as the log's admin events say.
#[derive(Debug, Default)]
pub struct Records {
    holds: HashMap<HoldTarget, Hold>,
    /// Erased event ID → the event ID that recorded the erasure.
    erased: HashMap<String, String>,
}

impl Records {
    /// The hold on `target`.
    pub fn hold(&self, target: &HoldTarget) -> Option<&Hold> {
        self.holds.get(target)
    }

    /// Every hold, by kind and then value.
    pub fn holds(&self) -> Vec<Hold> {
        let mut holds: Vec<Hold> = self.holds.values().cloned().collect();
        holds.sort_by(|a, b| {
            (a.target.kind(), a.target.value()).cmp(&(b.target.kind(), b.target.value()))
        });
        holds
    }

    /// Sets `hold` unless one is on its target already; returns whether it was set.
    pub fn set_hold(&mut self, hold: Hold) -> bool {
        if self.holds.contains_key(&hold.target) {
            return false;
        }
        self.holds.insert(hold.target.clone(), hold);
        true
    }

    /// Lifts the hold on `target`, returning it.
    pub fn lift_hold(&mut self, target: &HoldTarget) -> Option<Hold> {
        self.holds.remove(target)
    }

    /// The event that recorded the erasure of `event_id`'s payload.
    pub fn erasure(&self, event_id: &str) -> Option<&str> {
        self.erased.get(event_id).map(String::as_str)
    }

    /// Marks `event_id`'s payload erased by the event `by` (the first mark stays).
    pub fn mark_erased(&mut self, event_id: &str, by: &str) {
        self.erased
            .entry(event_id.to_string())
            .or_insert_with(|| by.to_string());
    }

    /// Applies one logged admin event. Returns the event IDs whose payloads it says are erased
    /// and the data keys it says are destroyed (so that the caller finishes an erasure a crash
    /// interrupted), or what is wrong with it.
    pub fn apply(&mut self, event: &RecordEvent<'_>) -> Result<Applied, String> {
        let field = |name: &str| -> Result<&str, String> {
            event.payload[name]
                .as_str()
                .ok_or_else(|| format!("its payload has no string {name:?}"))
        };
        match event.action {
            HOLD_SET | HOLD_LIFT => {
                let value = field("value")?.to_string();
                let target = match field("kind")? {
                    "actor" => HoldTarget::Actor(value),
                    "resource" => HoldTarget::Resource(value),
                    "event_id" => HoldTarget::Event(value),
                    other => return Err(format!("a hold on an unknown kind {other:?}")),
                };
                if event.action == HOLD_SET {
                    self.set_hold(Hold {
                        target,
                        reason: field("reason")?.to_string(),
                        set_by: event.actor.to_string(),
                        event_id: event.event_id.to_string(),
                    });
                } else {
                    self.lift_hold(&target);
                }
                Ok(Applied::default())
            }
            PAYLOAD_ERASE => {
                let erased = field("event_id")?.to_string();
                self.mark_erased(&erased, event.event_id);
                Ok(Applied {
                    erased: vec![erased],
                    ..Applied::default()
                })
            }
            SUBJECT_SHRED => {
                let keys = event.payload["data_keys"]
                    .as_array()
                    .ok_or("its payload has no array \"data_keys\"")?;
                let mut shredded_keys = Vec::with_capacity(keys.len());
                for key in keys {
                    let key = key.as_str().ok_or("a data key ID is not a string")?;
                    shredded_keys.push(key.to_string());
                }
                Ok(Applied {
                    shredded_keys,
                    ..Applied::default()
                })
            }
            RETENTION_ERASE => {
                let ids = event.payload["event_ids"]
                    .as_array()
                    .ok_or("its payload has no array \"event_ids\"")?;
                let mut erased = Vec::with_capacity(ids.len());
                for id in ids {
                    let id = id.as_str().ok_or("an erased event ID is not a string")?;
                    self.mark_erased(id, event.event_id);
                    erased.push(id.to_string());
                }
                Ok(Applied {
                    erased,
                    ..Applied::default()
                })
            }
            other => Err(format!("{other:?} is not an action of the records")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(records: &mut Records, id: &str, action: &str, payload: Value) -> Vec<String> {
        let applied = records
            .apply(&RecordEvent {
                event_id: id,
                action,
                actor: "admin",
                payload: &payload,
            })
            .expect("applies");
        [applied.erased, applied.shredded_keys].concat()
    }

    #[test]
    fn holds_and_erasures_follow_the_events_in_log_order() {
        let mut records = Records::default();
        let hold = json!({"kind": "actor", "value": "alice", "reason": "case 7"});
        apply(&mut records, "e1", HOLD_SET, hold.clone());
        apply(&mut records, "e2", HOLD_SET, hold.clone());
        let held = records
            .hold(&HoldTarget::Actor("alice".into()))
            .expect("held");
        assert_eq!(
            (held.event_id.as_str(), held.set_by.as_str()),
            ("e1", "admin")
        );
        apply(&mut records, "e3", HOLD_LIFT, hold);
        assert!(records.holds().is_empty());

        let erased = apply(&mut records, "e4", PAYLOAD_ERASE, json!({"event_id": "x"}));
        assert_eq!(erased, vec!["x".to_string()]);
        let erased = apply(
            &mut records,
            "e5",
            RETENTION_ERASE,
            json!({"event_ids": ["x", "y"], "rule": "r"}),
        );
        assert_eq!(erased, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(records.erasure("x"), Some("e4"));
        let shredded = apply(
            &mut records,
            "e6",
            SUBJECT_SHRED,
            json!({"subject": "tag:00", "data_keys": ["0a0b"], "reason": null}),
        );
        assert_eq!(shredded, vec!["0a0b".to_string()]);
        assert_eq!(records.erasure("y"), Some("e5"));
    }

    #[test]
    fn refuses_records_it_cannot_read() {
        let mut records = Records::default();
        for (action, payload) in [
            (
                HOLD_SET,
                json!({"kind": "planet", "value": "v", "reason": "r"}),
            ),
            (HOLD_SET, json!({"kind": "actor"})),
            (PAYLOAD_ERASE, json!({"event_id": 7})),
            (RETENTION_ERASE, json!({"event_ids": "x"})),
            (SUBJECT_SHRED, json!({"data_keys": [1]})),
            ("cairn.other", json!({})),
        ] {
            let event = RecordEvent {
                event_id: "e",
                action,
                actor: "admin",
                payload: &payload,
            };
            assert!(records.apply(&event).is_err(), "{action} {payload}");
        }
        assert!(records.holds().is_empty());
    }

    #[test]
    fn reserves_the_cairn_prefix() {
        assert!(is_reserved("cairn.hold.set"));
        assert!(is_reserved("cairn.anything"));
        assert!(!is_reserved("cairnish"));
        assert!(!is_reserved("login"));
    }
}
