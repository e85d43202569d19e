//! The manager's object table: every object it holds, the references that keep
//! each alive, the client sessions holding them, and the operations on objects
//! that never wait (the waiting ones, which need the server's condition variable,
//! are in `server`).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::objects::{self, Object, Slot, resolve_index, resolve_slice};
use super::proto::{Blob, Fault, Kind, ObjId, Op, Place, Reply};
use super::server::{Ctx, make_custom, op_name};
use crate::codec::Message;
use crate::sys::code::EntryPoint;

/// One object and how many references keep it alive.
pub(crate) struct Entry {
    pub(crate) object: Object,
    pub(super) refs: u64,
}

#[derive(Default)]
pub(super) struct Session {
    pub(super) pid: u32,
    pub(super) conns: u32,
    pub(super) holds: HashMap<ObjId, u64>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) next: u32,
    pub(super) objects: objects::Table,
    pub(super) names: HashMap<String, ObjId>,
    pub(super) sessions: HashMap<u64, Session>,
    /// References retained for proxies in transit to another process.
    pub(super) transit: HashMap<ObjId, u64>,
}

pub(super) fn refuse_function() -> Fault {
    Fault::Refused(
        "this manager does not run functions sent by address (only a manager started by this \
         executable, reached over its private socket, does); use a registered shared type"
            .into(),
    )
}

/// Postcard's encoding of `Option<V>` from the encoding of `V`.
pub(super) fn option_bytes(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        None => vec![0],
        Some(b) => {
            let mut out = Vec::with_capacity(b.len() + 1);
            out.push(1);
            out.extend_from_slice(b);
            out
        }
    }
}

pub(super) fn run_function(ep: &EntryPoint, input: Vec<u8>) -> Result<Vec<u8>, Fault> {
    let msg = Message {
        bytes: input,
        fds: Vec::new(),
    };
    match catch_unwind(AssertUnwindSafe(|| ep.invoke(msg))) {
        Ok(Ok(out)) => Ok(out.bytes),
        Ok(Err(e)) => Err(Fault::Function(e)),
        Err(p) => Err(Fault::Function(format!(
            "panicked: {}",
            crate::process::panic_message(&*p)
        ))),
    }
}

pub(super) fn wrong(expected: &str, o: &Object) -> Fault {
    Fault::WrongKind {
        expected: expected.to_string(),
        found: o.kind_name().to_string(),
    }
}

pub(super) fn dict(e: &mut Entry) -> Result<&mut indexmap::IndexMap<Vec<u8>, Slot>, Fault> {
    match &mut e.object {
        Object::Dict(m) => Ok(m),
        o => Err(wrong("dict", o)),
    }
}

pub(super) fn data(slot: &Slot) -> Option<Blob> {
    match slot {
        Slot::Data(b) => Some(Blob(b.clone())),
        Slot::Obj(_) => None,
    }
}

impl State {
    pub(super) fn create(&mut self, instance: u32, kind: &Kind) -> Result<ObjId, Fault> {
        let object = Object::new(kind, make_custom)?;
        self.next = self.next.wrapping_add(1);
        let id = ((instance as u64) << 32) | self.next as u64;
        self.objects.insert(id, Entry { object, refs: 0 });
        Ok(id)
    }

    pub(super) fn get(&self, id: ObjId) -> Result<&Entry, Fault> {
        self.objects.get(&id).ok_or(Fault::ObjectGone(id))
    }

    pub(super) fn get_mut(&mut self, id: ObjId) -> Result<&mut Entry, Fault> {
        self.objects.get_mut(&id).ok_or(Fault::ObjectGone(id))
    }

    pub(super) fn incref(&mut self, id: ObjId, n: u64) {
        if let Some(e) = self.objects.get_mut(&id) {
            e.refs += n;
        }
    }

    pub(super) fn hold(&mut self, session: u64, id: ObjId) {
        *self
            .sessions
            .entry(session)
            .or_default()
            .holds
            .entry(id)
            .or_insert(0) += 1;
        self.incref(id, 1);
    }

    /// Drops `n` references; frees the object (and what only it referred to) at zero.
    pub(super) fn unref(&mut self, id: ObjId, n: u64) {
        let mut stack = vec![(id, n)];
        while let Some((id, n)) = stack.pop() {
            let Some(e) = self.objects.get_mut(&id) else {
                continue;
            };
            e.refs = e.refs.saturating_sub(n);
            if e.refs == 0 {
                let e = self.objects.remove(&id).expect("present");
                stack.extend(e.object.children().into_iter().map(|c| (c, 1)));
            }
        }
    }

    pub(super) fn slot_at(&self, id: ObjId, place: &Place) -> Result<Slot, Fault> {
        let e = self.get(id)?;
        match (&e.object, place) {
            (Object::Dict(m), Place::Key(k)) => m.get(&k.0).cloned().ok_or(Fault::KeyNotFound),
            (Object::List(l), Place::Index(i)) => resolve_index(*i, l.len())
                .map(|i| l[i].clone())
                .ok_or(Fault::IndexOutOfRange {
                    index: *i,
                    len: l.len() as u64,
                }),
            (Object::Namespace(n), Place::Field(f)) => n.get(f).cloned().ok_or(Fault::KeyNotFound),
            (o, p) => Err(Fault::BadRequest(format!(
                "no place {p:?} in a {}",
                o.kind_name()
            ))),
        }
    }

    /// Materializes a slot for a plain read.
    pub(super) fn read(&self, slot: &Slot) -> Result<Blob, Fault> {
        objects::materialize(slot, &self.objects, 0).map(Blob)
    }

    /// An operation that never waits. Returns the reply, objects whose container
    /// reference was dropped, and whether waiters should look again.
    pub(super) fn simple_op(
        &mut self,
        id: ObjId,
        op: Op,
        ctx: &Ctx<'_>,
    ) -> Result<(Reply, Vec<ObjId>, bool), Fault> {
        let mut freed = Vec::new();
        let mut changed = false;
        // Nested references stored with `Place` come through a dedicated request;
        // here a reference is only read or dropped.
        let reply = {
            let this = &*self;
            // Reads that may need the whole table (materialization) first.
            match &op {
                Op::Get(k) => {
                    let m = match &this.get(id)?.object {
                        Object::Dict(m) => m,
                        o => return Err(wrong("dict", o)),
                    };
                    let v = match m.get(&k.0) {
                        None => None,
                        Some(s) => Some(this.read(s)?),
                    };
                    return Ok((Reply::Value(v), freed, false));
                }
                Op::Values | Op::Items => {
                    let m = match &this.get(id)?.object {
                        Object::Dict(m) => m,
                        o => return Err(wrong("dict", o)),
                    };
                    if let Op::Values = op {
                        let vs = m.values().map(|s| this.read(s)).collect::<Result<_, _>>()?;
                        return Ok((Reply::Values(vs), freed, false));
                    }
                    let items = m
                        .iter()
                        .map(|(k, s)| Ok((Blob(k.clone()), this.read(s)?)))
                        .collect::<Result<_, Fault>>()?;
                    return Ok((Reply::Items(items), freed, false));
                }
                Op::Index(i) => {
                    let l = match &this.get(id)?.object {
                        Object::List(l) => l,
                        o => return Err(wrong("list", o)),
                    };
                    let idx = resolve_index(*i, l.len()).ok_or(Fault::IndexOutOfRange {
                        index: *i,
                        len: l.len() as u64,
                    })?;
                    return Ok((Reply::Value(Some(this.read(&l[idx])?)), freed, false));
                }
                Op::Slice(s, e) => {
                    let l = match &this.get(id)?.object {
                        Object::List(l) => l,
                        o => return Err(wrong("list", o)),
                    };
                    let (s, e) = resolve_slice(*s, *e, l.len());
                    let vs = l[s..e]
                        .iter()
                        .map(|x| this.read(x))
                        .collect::<Result<_, _>>()?;
                    return Ok((Reply::Values(vs), freed, false));
                }
                Op::GetField(f) => {
                    let n = match &this.get(id)?.object {
                        Object::Namespace(n) => n,
                        o => return Err(wrong("namespace", o)),
                    };
                    let v = match n.get(f) {
                        None => None,
                        Some(s) => Some(this.read(s)?),
                    };
                    return Ok((Reply::Value(v), freed, false));
                }
                _ => {}
            }
            let entry = self.get_mut(id)?;
            let drop_slot = |s: Option<Slot>, freed: &mut Vec<ObjId>| -> Option<Blob> {
                match s? {
                    Slot::Data(b) => Some(Blob(b)),
                    Slot::Obj(o) => {
                        freed.push(o);
                        None
                    }
                }
            };
            match (&mut entry.object, op) {
                (Object::Dict(m), Op::Set(k, v)) => {
                    let old = m.insert(k.0, Slot::Data(v.0));
                    drop_slot(old, &mut freed);
                    Reply::Unit
                }
                (Object::Dict(m), Op::Delete(k)) => match m.shift_remove(&k.0) {
                    Some(old) => {
                        drop_slot(Some(old), &mut freed);
                        Reply::Unit
                    }
                    None => return Err(Fault::KeyNotFound),
                },
                (Object::Dict(m), Op::Contains(k)) => Reply::Bool(m.contains_key(&k.0)),
                (Object::Dict(m), Op::Len) => Reply::Len(m.len() as u64),
                (Object::Dict(m), Op::Keys) => {
                    Reply::Values(m.keys().map(|k| Blob(k.clone())).collect())
                }
                (Object::Dict(m), Op::Update(items)) => {
                    for (k, v) in items {
                        let old = m.insert(k.0, Slot::Data(v.0));
                        drop_slot(old, &mut freed);
                    }
                    Reply::Unit
                }
                (Object::Dict(m), Op::Pop(k)) => match m.shift_remove(&k.0) {
                    Some(Slot::Data(b)) => Reply::Value(Some(Blob(b))),
                    Some(Slot::Obj(o)) => {
                        // Hand back the nested object's value, then drop the reference.
                        let r = self.objects_read_then_free(o, &mut freed)?;
                        Reply::Value(Some(r))
                    }
                    None => Reply::Value(None),
                },
                (Object::Dict(m), Op::SetDefault(k, v)) => {
                    let slot = m.entry(k.0).or_insert(Slot::Data(v.0));
                    let slot = slot.clone();
                    Reply::Value(Some(self.read(&slot)?))
                }
                (Object::Dict(m), Op::Clear) => {
                    for (_, s) in m.drain(..) {
                        drop_slot(Some(s), &mut freed);
                    }
                    Reply::Unit
                }
                (Object::Dict(m), Op::CompareAndSet { key, expected, new }) => {
                    let current = m.get(&key.0).map(data);
                    let current = match current {
                        Some(None) => {
                            return Err(Fault::WrongKind {
                                expected: "a plain value".into(),
                                found: "a shared object".into(),
                            });
                        }
                        Some(Some(b)) => Some(b),
                        None => None,
                    };
                    if current == expected {
                        m.insert(key.0, Slot::Data(new.0));
                        Reply::Unit
                    } else {
                        Reply::Conflict(current)
                    }
                }
                (Object::List(l), Op::Append(v)) => {
                    l.push(Slot::Data(v.0));
                    Reply::Unit
                }
                (Object::List(l), Op::Extend(vs)) => {
                    l.extend(vs.into_iter().map(|v| Slot::Data(v.0)));
                    Reply::Unit
                }
                (Object::List(l), Op::Insert(i, v)) => {
                    let len = l.len() as i64;
                    let at = if i < 0 { (i + len).max(0) } else { i.min(len) };
                    l.insert(at as usize, Slot::Data(v.0));
                    Reply::Unit
                }
                (Object::List(l), Op::SetIndex(i, v)) => {
                    let idx = resolve_index(i, l.len()).ok_or(Fault::IndexOutOfRange {
                        index: i,
                        len: l.len() as u64,
                    })?;
                    let old = std::mem::replace(&mut l[idx], Slot::Data(v.0));
                    drop_slot(Some(old), &mut freed);
                    Reply::Unit
                }
                (Object::List(l), Op::PopIndex(i)) => {
                    if l.is_empty() {
                        return Err(Fault::Empty("the list".into()));
                    }
                    let i = i.unwrap_or(-1);
                    let idx = resolve_index(i, l.len()).ok_or(Fault::IndexOutOfRange {
                        index: i,
                        len: l.len() as u64,
                    })?;
                    match l.remove(idx) {
                        Slot::Data(b) => Reply::Value(Some(Blob(b))),
                        Slot::Obj(o) => {
                            Reply::Value(Some(self.objects_read_then_free(o, &mut freed)?))
                        }
                    }
                }
                (Object::List(l), Op::Remove(v)) => {
                    let pos = l
                        .iter()
                        .position(|s| matches!(s, Slot::Data(b) if *b == v.0))
                        .ok_or(Fault::ValueNotFound)?;
                    l.remove(pos);
                    Reply::Unit
                }
                (Object::List(l), Op::Len) => Reply::Len(l.len() as u64),
                (Object::List(l), Op::Clear) => {
                    for s in l.drain(..) {
                        drop_slot(Some(s), &mut freed);
                    }
                    Reply::Unit
                }
                (Object::List(l), Op::ReplaceAllIf { expected, new }) => {
                    let same = l.len() == expected.len()
                        && l.iter()
                            .zip(&expected)
                            .all(|(s, e)| matches!(s, Slot::Data(b) if *b == e.0));
                    if !same {
                        Reply::Conflict(None)
                    } else {
                        *l = new.into_iter().map(|b| Slot::Data(b.0)).collect();
                        Reply::Unit
                    }
                }
                (Object::Namespace(n), Op::SetField(f, v)) => {
                    let old = n.insert(f, Slot::Data(v.0));
                    drop_slot(old, &mut freed);
                    Reply::Unit
                }
                (Object::Namespace(n), Op::DeleteField(f)) => match n.remove(&f) {
                    Some(old) => {
                        drop_slot(Some(old), &mut freed);
                        Reply::Unit
                    }
                    None => return Err(Fault::KeyNotFound),
                },
                (Object::Namespace(n), Op::Fields) => Reply::Names(n.keys().cloned().collect()),
                (Object::Value(v), Op::Load) => Reply::Value(Some(Blob(v.clone()))),
                (Object::Value(v), Op::Store(b)) => {
                    *v = b.0;
                    Reply::Unit
                }
                (Object::Value(v), Op::ValueCompareAndSet { expected, new }) => {
                    if *v == expected.0 {
                        *v = new.0;
                        Reply::Unit
                    } else {
                        Reply::Conflict(Some(Blob(v.clone())))
                    }
                }
                (Object::Queue { items, .. }, Op::QueueLen) => Reply::Len(items.len() as u64),
                (
                    Object::Queue {
                        joinable: true,
                        unfinished,
                        ..
                    },
                    Op::TaskDone,
                ) => {
                    if *unfinished == 0 {
                        return Err(Fault::BadRequest(
                            "task_done() called too many times".into(),
                        ));
                    }
                    *unfinished -= 1;
                    changed = true;
                    Reply::Unit
                }
                (Object::Lock(l), Op::Release { .. }) => {
                    if l.owner.is_none() {
                        return Err(Fault::NotOwner);
                    }
                    l.owner = None;
                    l.count = 0;
                    changed = true;
                    Reply::Unit
                }
                (Object::RLock(l) | Object::Condition { lock: l, .. }, Op::Release { thread }) => {
                    if l.owner != Some(ctx.owner(thread)) {
                        return Err(Fault::NotOwner);
                    }
                    l.count -= 1;
                    if l.count == 0 {
                        l.owner = None;
                        changed = true;
                    }
                    Reply::Unit
                }
                (
                    Object::Lock(l) | Object::RLock(l) | Object::Condition { lock: l, .. },
                    Op::LockState,
                ) => Reply::LockState {
                    held: l.owner.is_some(),
                    pid: l.owner.map(|o| o.pid),
                    count: l.count,
                },
                (Object::Semaphore { value, bound }, Op::Release { .. }) => {
                    if bound.is_some_and(|b| *value >= b) {
                        return Err(Fault::SemaphoreOverflow(bound.unwrap_or(0)));
                    }
                    *value = value
                        .checked_add(1)
                        .ok_or(Fault::SemaphoreOverflow(u32::MAX))?;
                    changed = true;
                    Reply::Unit
                }
                (Object::Semaphore { value, .. }, Op::LockState) => Reply::Len(*value as u64),
                (Object::Event(f), Op::SetEvent) => {
                    *f = true;
                    changed = true;
                    Reply::Unit
                }
                (Object::Event(f), Op::ClearEvent) => {
                    *f = false;
                    Reply::Unit
                }
                (Object::Event(f), Op::IsSet) => Reply::Bool(*f),
                (
                    Object::Condition {
                        lock,
                        waiters,
                        notified,
                        ..
                    },
                    Op::Notify(n),
                ) => {
                    if lock.owner.is_none_or(|o| o.session != ctx.session) {
                        return Err(Fault::NotOwner);
                    }
                    for _ in 0..n {
                        match waiters.pop_front() {
                            Some(t) => {
                                notified.insert(t);
                            }
                            None => break,
                        }
                    }
                    changed = true;
                    Reply::Unit
                }
                (Object::Barrier { broken, .. }, Op::BarrierAbort) => {
                    *broken = true;
                    changed = true;
                    Reply::Unit
                }
                (
                    Object::Barrier {
                        count,
                        generation,
                        aborted_generation,
                        broken,
                        ..
                    },
                    Op::BarrierReset,
                ) => {
                    if *count > 0 {
                        *aborted_generation = Some(*generation);
                    }
                    *generation += 1;
                    *count = 0;
                    *broken = false;
                    changed = true;
                    Reply::Unit
                }
                (
                    Object::Barrier {
                        parties,
                        count,
                        broken,
                        ..
                    },
                    Op::BarrierState,
                ) => Reply::BarrierState {
                    parties: *parties,
                    waiting: *count,
                    broken: *broken,
                },
                (Object::Custom { object, type_name }, Op::Call(req)) => {
                    let name = type_name.clone();
                    match catch_unwind(AssertUnwindSafe(|| object.call(&req.0))) {
                        Ok(Ok(r)) => Reply::Value(Some(Blob(r))),
                        Ok(Err(e)) => return Err(Fault::BadRequest(format!("{name}: {e}"))),
                        Err(p) => {
                            return Err(Fault::Function(format!(
                                "{name} panicked: {}",
                                crate::process::panic_message(&*p)
                            )));
                        }
                    }
                }
                (o, op) => {
                    return Err(Fault::BadRequest(format!(
                        "operation {} does not apply to a {}",
                        op_name(&op),
                        o.kind_name()
                    )));
                }
            }
        };
        Ok((reply, freed, changed))
    }

    /// The value of nested object `o`, which its container no longer refers to.
    pub(super) fn objects_read_then_free(
        &mut self,
        o: ObjId,
        freed: &mut Vec<ObjId>,
    ) -> Result<Blob, Fault> {
        let b = self.read(&Slot::Obj(o))?;
        freed.push(o);
        Ok(b)
    }
}
