//! Which index keys a leaf carries (completeness.md §1): its `action`'s public key, and the
//! tags of its `actor.id`, `resource.id` and `resource.type`.
//!
//! - A schema 2 leaf's tags are those its contents record holds in its header (readable
//!   without a key): the subject's field tagged under a key derived from the subject's data
//!   key, the others under the log's index key ([`crate::events::privacy`]). A record erased
//!   before the leaf was indexed leaves only the action key.
//! - A schema 1 leaf (the log's own admin records, and events logged before schema 2) has its
//!   fields in clear: they are tagged under the log's index key.
//! - Anything else (raw leaves, leaves that are not events) carries no key.

use cairn_spec::completeness::{action_key, MapKey};
use cairn_spec::event::{AnyEventLeaf, IndexedField};

use crate::events::privacy::{record, Privacy};
use crate::storage::StoredPayload;

/// The map keys of `leaf`, whose payload slot holds `payload`, in the order action, actor.id,
/// resource.id, resource.type (each key once).
pub fn keys_of(leaf: &[u8], payload: Option<&StoredPayload>, privacy: &Privacy) -> Vec<MapKey> {
    if leaf.first() != Some(&b'{') {
        return Vec::new();
    }
    let mut keys = Vec::with_capacity(4);
    match AnyEventLeaf::parse(leaf) {
        Ok(AnyEventLeaf::V1(v1)) => {
            keys.push(action_key(&v1.action));
            for (field, value) in [
                (IndexedField::ActorId, &v1.actor_id),
                (IndexedField::ResourceId, &v1.resource_id),
                (IndexedField::ResourceType, &v1.resource_type),
            ] {
                keys.push(MapKey(privacy.log_tag(field, value)));
            }
        }
        Ok(AnyEventLeaf::V2(v2)) => {
            keys.push(action_key(&v2.clear.action));
            if let Some(StoredPayload::Held(bytes)) = payload {
                if let Ok(header) = record::header(bytes) {
                    let tags = header.tags;
                    keys.extend([tags.actor, tags.resource_id, tags.resource_type].map(MapKey));
                }
            }
        }
        Err(_) => return Vec::new(),
    }
    // A value can repeat across fields (an actor who is also the resource type's tag is
    // impossible, but two tags of one key are one key): a list holds a leaf once.
    let mut seen = Vec::with_capacity(keys.len());
    keys.retain(|key| {
        let new = !seen.contains(key);
        seen.push(*key);
        new
    });
    keys
}
