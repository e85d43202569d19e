//! The objects a manager server holds, stored as encoded bytes: the server never
//! knows the user's types. Keys are compared and hashed by their encoding.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use indexmap::IndexMap;

use super::proto::{Fault, Kind, ObjId};

/// What a container slot holds: a value's bytes, or another shared object.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Data(Vec<u8>),
    Obj(ObjId),
}

/// Who holds a lock: a client process's session and one of its threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) session: u64,
    pub(crate) thread: u64,
    pub(crate) pid: u32,
}

#[derive(Debug, Default)]
pub(crate) struct LockState {
    pub(crate) owner: Option<Owner>,
    pub(crate) count: u32,
    /// Set when a holder's process died holding the lock: its pid, reported to the
    /// next acquirer.
    pub(crate) died: Option<Option<u32>>,
}

/// A registered user type, type-erased: requests and replies are encoded bytes.
pub(crate) trait ErasedShared: Send {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String>;
}

pub(crate) enum Object {
    Dict(IndexMap<Vec<u8>, Slot>),
    List(Vec<Slot>),
    Namespace(BTreeMap<String, Slot>),
    Value(Vec<u8>),
    Queue {
        items: VecDeque<Vec<u8>>,
        maxsize: Option<u64>,
        joinable: bool,
        unfinished: u64,
    },
    Lock(LockState),
    RLock(LockState),
    Semaphore {
        value: u32,
        bound: Option<u32>,
    },
    Event(bool),
    Condition {
        lock: LockState,
        waiters: VecDeque<u64>,
        notified: HashSet<u64>,
        next_ticket: u64,
    },
    Barrier {
        parties: u32,
        count: u32,
        generation: u64,
        aborted_generation: Option<u64>,
        broken: bool,
    },
    Custom {
        type_name: String,
        object: Box<dyn ErasedShared>,
    },
}

impl Object {
    pub(crate) fn new(
        kind: &Kind,
        custom: impl FnOnce(&str, &[u8]) -> Result<Box<dyn ErasedShared>, Fault>,
    ) -> Result<Object, Fault> {
        Ok(match kind {
            Kind::Dict => Object::Dict(IndexMap::new()),
            Kind::List => Object::List(Vec::new()),
            Kind::Namespace => Object::Namespace(BTreeMap::new()),
            Kind::Value(b) => Object::Value(b.0.clone()),
            Kind::Queue { maxsize, joinable } => {
                if *maxsize == Some(0) {
                    return Err(Fault::BadRequest(
                        "a bounded queue needs a maxsize of at least 1".into(),
                    ));
                }
                Object::Queue {
                    items: VecDeque::new(),
                    maxsize: *maxsize,
                    joinable: *joinable,
                    unfinished: 0,
                }
            }
            Kind::Lock => Object::Lock(LockState::default()),
            Kind::RLock => Object::RLock(LockState::default()),
            Kind::Semaphore { value, bound } => Object::Semaphore {
                value: *value,
                bound: *bound,
            },
            Kind::Event => Object::Event(false),
            Kind::Condition => Object::Condition {
                lock: LockState::default(),
                waiters: VecDeque::new(),
                notified: HashSet::new(),
                next_ticket: 0,
            },
            Kind::Barrier { parties } => {
                if *parties == 0 {
                    return Err(Fault::BadRequest(
                        "a barrier needs at least one party".into(),
                    ));
                }
                Object::Barrier {
                    parties: *parties,
                    count: 0,
                    generation: 0,
                    aborted_generation: None,
                    broken: false,
                }
            }
            Kind::Custom { type_name, init } => Object::Custom {
                type_name: type_name.clone(),
                object: custom(type_name, &init.0)?,
            },
        })
    }

    pub(crate) fn kind_name(&self) -> &str {
        match self {
            Object::Dict(_) => "dict",
            Object::List(_) => "list",
            Object::Namespace(_) => "namespace",
            Object::Value(_) => "value",
            Object::Queue {
                joinable: false, ..
            } => "queue",
            Object::Queue { joinable: true, .. } => "joinable queue",
            Object::Lock(_) => "lock",
            Object::RLock(_) => "rlock",
            Object::Semaphore { bound: None, .. } => "semaphore",
            Object::Semaphore { bound: Some(_), .. } => "bounded semaphore",
            Object::Event(_) => "event",
            Object::Condition { .. } => "condition",
            Object::Barrier { .. } => "barrier",
            Object::Custom { type_name, .. } => type_name,
        }
    }

    /// The shared objects this one refers to (for reference counting).
    pub(crate) fn children(&self) -> Vec<ObjId> {
        let slots: Box<dyn Iterator<Item = &Slot>> = match self {
            Object::Dict(m) => Box::new(m.values()),
            Object::List(l) => Box::new(l.iter()),
            Object::Namespace(n) => Box::new(n.values()),
            _ => return Vec::new(),
        };
        slots
            .filter_map(|s| match s {
                Slot::Obj(id) => Some(*id),
                Slot::Data(_) => None,
            })
            .collect()
    }
}

/// Python's index rules: negative counts from the end. `None` when out of range.
pub(crate) fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { index + len } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Python's slice bounds, clamped.
pub(crate) fn resolve_slice(start: Option<i64>, end: Option<i64>, len: usize) -> (usize, usize) {
    let len_i = len as i64;
    let clamp = |v: i64| -> usize {
        let v = if v < 0 { v + len_i } else { v };
        v.clamp(0, len_i) as usize
    };
    let s = start.map(clamp).unwrap_or(0);
    let e = end.map(clamp).unwrap_or(len);
    (s, e.max(s))
}

/// Writes postcard's varint for `n`.
pub(crate) fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Maps used while materializing nested objects as plain values.
pub(crate) type Table = HashMap<ObjId, super::table::Entry>;

/// The postcard encoding of a slot's value as plain data: a nested list encodes as a
/// sequence (`Vec<T>`), a nested dict as a map, a value as itself. Depth-limited.
pub(crate) fn materialize(slot: &Slot, table: &Table, depth: u32) -> Result<Vec<u8>, Fault> {
    let id = match slot {
        Slot::Data(b) => return Ok(b.clone()),
        Slot::Obj(id) => *id,
    };
    if depth > 64 {
        return Err(Fault::BadRequest(
            "shared objects nested more than 64 deep".into(),
        ));
    }
    let entry = table.get(&id).ok_or(Fault::ObjectGone(id))?;
    let mut out = Vec::new();
    match &entry.object {
        Object::List(items) => {
            push_varint(&mut out, items.len() as u64);
            for s in items {
                out.extend(materialize(s, table, depth + 1)?);
            }
        }
        Object::Dict(map) => {
            push_varint(&mut out, map.len() as u64);
            for (k, s) in map {
                out.extend_from_slice(k);
                out.extend(materialize(s, table, depth + 1)?);
            }
        }
        Object::Value(b) => out.extend_from_slice(b),
        other => {
            return Err(Fault::WrongKind {
                expected: "a value (or a nested list, dict or value)".into(),
                found: other.kind_name().to_string(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_indices() {
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_slice(Some(-2), None, 5), (3, 5));
        assert_eq!(resolve_slice(Some(4), Some(2), 5), (4, 4));
        assert_eq!(resolve_slice(None, Some(-10), 5), (0, 0));
    }

    #[test]
    fn varint_matches_postcard() {
        for n in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut v = Vec::new();
            push_varint(&mut v, n);
            assert_eq!(v, postcard::to_stdvec(&n).unwrap());
        }
    }
}
