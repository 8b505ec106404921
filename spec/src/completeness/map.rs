//! The map from index keys to lists: a compact binary radix tree (completeness.md §1.2), kept in
//! memory and updated in place as leaves are integrated, and its proofs of presence and
//! absence (§3.1).
//!
//! A subtree holding one key is that key's leaf, as high as it can be, so a path is about
//! log₂(number of keys) long, not 256. Node hashes are cached: adding an item clears the cache
//! along one path only, and [`IndexMap::root`] rehashes only what was cleared, a depth at a time
//! with several hashes computed side by side, so a publish that adds `m` items to a map of `K`
//! keys costs at most `m · log₂ K` node hashes, plus one list append per item (the list's
//! frontier, [`CompactRange`]). [`IndexMap::add_run`] adds a key's items of a batch in one walk.

use super::{
    item_hashes, map_leaf_hash, map_leaf_message, map_node_hash, Item, ListHead, MapKey, EMPTY,
    MAP_KEY_SIZE, MAP_LEAF_PREFIX, MAP_NODE_PREFIX,
};
use crate::hash::{lanes, Hash, HASH_SIZE};
use crate::merkle::CompactRange;

/// The longest path of the map: one level per bit of a key.
pub const MAX_MAP_DEPTH: usize = MAP_KEY_SIZE * 8;

/// A node of the arena; `None` children are empty subtrees.
#[derive(Debug, Clone)]
enum Node {
    Leaf {
        key: MapKey,
        list: CompactRange,
        /// The last item's leaf index, which the next must exceed.
        last: u64,
        hash: Option<Hash>,
    },
    Inner {
        children: [Option<u32>; 2],
        hash: Option<Hash>,
    },
}

/// The map, in memory: every key's list head and the tree over them.
#[derive(Debug, Clone, Default)]
pub struct IndexMap {
    nodes: Vec<Node>,
    root: Option<u32>,
    keys: u64,
}

/// Why an item was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapUpdateError {
    /// Items of a key must come in increasing leaf order.
    #[error("item for leaf {found} comes after leaf {last} in the same list")]
    OutOfOrder {
        /// The list's last leaf index.
        last: u64,
        /// The new item's.
        found: u64,
    },
    /// The map cannot hold more nodes.
    #[error("the index map is full ({0} nodes)")]
    Full(usize),
}

/// Where a map proof's path ends (completeness.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEnd {
    /// The key's own leaf.
    Present(ListHead),
    /// An empty subtree: no key starts with the path's bits.
    AbsentEmpty,
    /// The leaf of another key that starts with the path's bits.
    AbsentOther(MapKey, ListHead),
}

/// A key's path from its place in the map up to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapProof {
    /// The siblings along the path, the deepest first; `siblings.len()` is the path's depth.
    pub siblings: Vec<Hash>,
    /// What the path ends at.
    pub end: PathEnd,
}

/// Why a map proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapProofError {
    /// The path is longer than a key has bits.
    #[error("the map proof has {0} siblings, more than the {MAX_MAP_DEPTH} a key allows")]
    TooDeep(usize),
    /// The other key of an absence proof is the key itself, or not on its path.
    #[error("the map proof's other key does not share the asked key's first {depth} bits, or is that key")]
    OtherKeyOffPath {
        /// The path's depth.
        depth: usize,
    },
    /// A list head with no items.
    #[error("a map leaf holds an empty list")]
    EmptyList,
    /// The root computed is not the map's.
    #[error("the map proof leads to the root {computed}, expected {expected}")]
    RootMismatch {
        /// The map root.
        expected: Hash,
        /// The root computed.
        computed: Hash,
    },
}

impl MapProof {
    /// Checks the proof for `key` against the map root `root`: the key's list head if it is
    /// in the map, `None` if it is proven absent.
    pub fn verify(&self, key: &MapKey, root: &Hash) -> Result<Option<ListHead>, MapProofError> {
        let depth = self.siblings.len();
        if depth > MAX_MAP_DEPTH {
            return Err(MapProofError::TooDeep(depth));
        }
        let (mut hash, found) = match self.end {
            PathEnd::Present(head) => {
                if head.count == 0 {
                    return Err(MapProofError::EmptyList);
                }
                (map_leaf_hash(key, &head), Some(head))
            }
            PathEnd::AbsentEmpty => (EMPTY, None),
            PathEnd::AbsentOther(other, head) => {
                if other == *key || other.common_prefix_bits(key) < depth {
                    return Err(MapProofError::OtherKeyOffPath { depth });
                }
                if head.count == 0 {
                    return Err(MapProofError::EmptyList);
                }
                (map_leaf_hash(&other, &head), None)
            }
        };
        for (level, sibling) in self.siblings.iter().enumerate() {
            // The node at depth `depth - level` is a right child if that bit of the key is 1.
            hash = if key.bit(depth - level - 1) {
                map_node_hash(sibling, &hash)
            } else {
                map_node_hash(&hash, sibling)
            };
        }
        if hash != *root {
            return Err(MapProofError::RootMismatch {
                expected: *root,
                computed: hash,
            });
        }
        Ok(found)
    }
}

impl IndexMap {
    /// An empty map.
    pub fn new() -> IndexMap {
        IndexMap::default()
    }

    /// How many keys it holds.
    pub fn key_count(&self) -> u64 {
        self.keys
    }

    /// Adds `item` to `key`'s list (making the key if it is new). Items of one key must come in
    /// increasing leaf order, as the log integrates them.
    pub fn add(&mut self, key: MapKey, item: Item) -> Result<(), MapUpdateError> {
        self.add_run(key, &[item])
    }

    /// Adds `items` (not empty, in increasing leaf order, each after the list's last) to `key`'s
    /// list in one walk down the map: what an integrator does with the items of one key in a
    /// batch of leaves. Their hashes are computed side by side. Nothing is added if the run is
    /// out of order.
    pub fn add_run(&mut self, key: MapKey, items: &[Item]) -> Result<(), MapUpdateError> {
        let Some(first) = items.first() else {
            return Ok(());
        };
        if let Some(pair) = items
            .windows(2)
            .find(|pair| pair[1].leaf_index <= pair[0].leaf_index)
        {
            return Err(MapUpdateError::OutOfOrder {
                last: pair[0].leaf_index,
                found: pair[1].leaf_index,
            });
        }
        let hashes = item_hashes(items);
        let last_index = items[items.len() - 1].leaf_index;
        let mut slot = self.root;
        let mut parent: Option<(u32, usize)> = None;
        let mut depth = 0;
        loop {
            let Some(id) = slot else {
                let leaf = self.push(Node::Leaf {
                    key,
                    list: list_of(&hashes),
                    last: last_index,
                    hash: None,
                })?;
                self.keys += 1;
                self.attach(parent, leaf);
                return Ok(());
            };
            match &mut self.nodes[id as usize] {
                Node::Inner { children, hash } => {
                    *hash = None;
                    let side = usize::from(key.bit(depth));
                    parent = Some((id, side));
                    slot = children[side];
                    depth += 1;
                }
                Node::Leaf {
                    key: here,
                    list,
                    last,
                    hash,
                } if *here == key => {
                    if first.leaf_index <= *last {
                        // The inner nodes above were marked for rehashing: harmless, they
                        // hash to what they did.
                        return Err(MapUpdateError::OutOfOrder {
                            last: *last,
                            found: first.leaf_index,
                        });
                    }
                    // A list of fewer than 2^64 items: the frontier takes these.
                    let _ = list.extend(&hashes);
                    *last = last_index;
                    *hash = None;
                    return Ok(());
                }
                Node::Leaf { key: here, .. } => {
                    let other = *here;
                    let shared = other.common_prefix_bits(&key);
                    let leaf = self.push(Node::Leaf {
                        key,
                        list: list_of(&hashes),
                        last: last_index,
                        hash: None,
                    })?;
                    // Inner nodes from `depth` down to `shared`, where the two keys part.
                    let mut bottom = Node::Inner {
                        children: [None, None],
                        hash: None,
                    };
                    if let Node::Inner { children, .. } = &mut bottom {
                        children[usize::from(key.bit(shared))] = Some(leaf);
                        children[usize::from(other.bit(shared))] = Some(id);
                    }
                    let mut below = self.push(bottom)?;
                    for level in (depth..shared).rev() {
                        let mut children = [None, None];
                        children[usize::from(key.bit(level))] = Some(below);
                        below = self.push(Node::Inner {
                            children,
                            hash: None,
                        })?;
                    }
                    self.keys += 1;
                    self.attach(parent, below);
                    return Ok(());
                }
            }
        }
    }

    /// The map root, rehashing what changed since it was last asked: the changed nodes are
    /// gathered by depth and each depth's hashed side by side ([`lanes`]), the deepest first,
    /// so that a node's children are hashed before it.
    pub fn root(&mut self) -> Hash {
        let Some(root) = self.root else {
            return EMPTY;
        };
        for level in self.changed_by_depth(root).iter().rev() {
            self.rehash(level);
        }
        self.hash_of(root)
    }

    /// The nodes whose hash is not cached, by depth (the root at 0).
    fn changed_by_depth(&self, root: u32) -> Vec<Vec<u32>> {
        let mut levels: Vec<Vec<u32>> = Vec::new();
        let mut stack = vec![(root, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            let children = match &self.nodes[id as usize] {
                Node::Leaf { hash: Some(_), .. } | Node::Inner { hash: Some(_), .. } => continue,
                Node::Leaf { .. } => [None, None],
                Node::Inner { children, .. } => *children,
            };
            if levels.len() <= depth {
                levels.resize_with(depth + 1, Vec::new);
            }
            levels[depth].push(id);
            stack.extend(
                children
                    .into_iter()
                    .flatten()
                    .map(|child| (child, depth + 1)),
            );
        }
        levels
    }

    /// Hashes the nodes `ids` of one depth, whose children are all hashed already.
    fn rehash(&mut self, ids: &[u32]) {
        let (mut leaves, mut leaf_ids) = (Vec::new(), Vec::new());
        let (mut inners, mut inner_ids) = (Vec::new(), Vec::new());
        for &id in ids {
            match &self.nodes[id as usize] {
                Node::Leaf { key, list, .. } => {
                    leaves.push(map_leaf_message(key, &head_of(list)));
                    leaf_ids.push(id);
                }
                Node::Inner { children, .. } => {
                    let mut message = [0u8; 2 * HASH_SIZE];
                    for (side, child) in children.iter().enumerate() {
                        let hash = child.map_or(EMPTY, |child| self.cached(child));
                        message[side * HASH_SIZE..(side + 1) * HASH_SIZE].copy_from_slice(&hash.0);
                    }
                    inners.push(message);
                    inner_ids.push(id);
                }
            }
        }
        let mut hashes = vec![EMPTY; leaves.len().max(inners.len())];
        lanes::prefixed(
            MAP_LEAF_PREFIX,
            |i| &leaves[i][..],
            &mut hashes[..leaves.len()],
        );
        for (&id, hash) in leaf_ids.iter().zip(&hashes) {
            self.set_cached(id, *hash);
        }
        lanes::prefixed(
            MAP_NODE_PREFIX,
            |i| &inners[i][..],
            &mut hashes[..inners.len()],
        );
        for (&id, hash) in inner_ids.iter().zip(&hashes) {
            self.set_cached(id, *hash);
        }
    }

    /// A node's cached hash (the empty hash if it has none, which [`IndexMap::rehash`]'s order
    /// rules out).
    fn cached(&self, id: u32) -> Hash {
        match &self.nodes[id as usize] {
            Node::Leaf { hash, .. } | Node::Inner { hash, .. } => hash.unwrap_or(EMPTY),
        }
    }

    fn set_cached(&mut self, id: u32, value: Hash) {
        match &mut self.nodes[id as usize] {
            Node::Leaf { hash, .. } | Node::Inner { hash, .. } => *hash = Some(value),
        }
    }

    /// `key`'s list head, if it is in the map.
    pub fn head(&self, key: &MapKey) -> Option<ListHead> {
        let mut slot = self.root;
        let mut depth = 0;
        while let Some(id) = slot {
            match &self.nodes[id as usize] {
                Node::Inner { children, .. } => {
                    slot = children[usize::from(key.bit(depth))];
                    depth += 1;
                }
                Node::Leaf {
                    key: here, list, ..
                } => {
                    return (here == key).then(|| head_of(list));
                }
            }
        }
        None
    }

    /// The proof for `key` (its list head or its absence) against [`root`](IndexMap::root).
    pub fn prove(&mut self, key: &MapKey) -> MapProof {
        let mut siblings = Vec::new();
        let mut slot = self.root;
        let mut depth = 0;
        let end = loop {
            let Some(id) = slot else {
                break PathEnd::AbsentEmpty;
            };
            match &self.nodes[id as usize] {
                Node::Inner { children, .. } => {
                    let children = *children;
                    let side = usize::from(key.bit(depth));
                    siblings.push(match children[1 - side] {
                        None => EMPTY,
                        Some(sibling) => self.hash_of(sibling),
                    });
                    slot = children[side];
                    depth += 1;
                }
                Node::Leaf {
                    key: here, list, ..
                } if here == key => {
                    break PathEnd::Present(head_of(list));
                }
                Node::Leaf {
                    key: here, list, ..
                } => {
                    break PathEnd::AbsentOther(*here, head_of(list));
                }
            }
        };
        siblings.reverse();
        MapProof { siblings, end }
    }

    fn push(&mut self, node: Node) -> Result<u32, MapUpdateError> {
        let id =
            u32::try_from(self.nodes.len()).map_err(|_| MapUpdateError::Full(self.nodes.len()))?;
        self.nodes.push(node);
        Ok(id)
    }

    fn attach(&mut self, parent: Option<(u32, usize)>, child: u32) {
        match parent {
            None => self.root = Some(child),
            Some((id, side)) => {
                if let Node::Inner { children, .. } = &mut self.nodes[id as usize] {
                    children[side] = Some(child);
                }
            }
        }
    }

    fn hash_of(&mut self, id: u32) -> Hash {
        match &self.nodes[id as usize] {
            Node::Leaf {
                hash: Some(hash), ..
            }
            | Node::Inner {
                hash: Some(hash), ..
            } => *hash,
            Node::Leaf { key, list, .. } => {
                let hash = map_leaf_hash(key, &head_of(list));
                if let Node::Leaf { hash: cached, .. } = &mut self.nodes[id as usize] {
                    *cached = Some(hash);
                }
                hash
            }
            Node::Inner { children, .. } => {
                let children = *children;
                let [left, right] = children.map(|child| match child {
                    None => EMPTY,
                    Some(child) => self.hash_of(child),
                });
                let hash = map_node_hash(&left, &right);
                if let Node::Inner { hash: cached, .. } = &mut self.nodes[id as usize] {
                    *cached = Some(hash);
                }
                hash
            }
        }
    }
}

fn list_of(hashes: &[Hash]) -> CompactRange {
    let mut list = CompactRange::new();
    // An empty frontier takes any run shorter than 2^64.
    let _ = list.extend(hashes);
    list
}

fn head_of(list: &CompactRange) -> ListHead {
    ListHead {
        count: list.tree_size(),
        root: list.root(),
    }
}
