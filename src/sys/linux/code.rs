//! Functions that travel between processes running the same executable.
//!
//! Rust cannot serialize a closure. What it can do, inside one executable, is name a
//! function by its distance from a fixed anchor: the executable is relocated as one
//! unit, so the distance is the same in every process that runs it, whatever
//! addresses ASLR picked. An [`EntryPoint`] is two such distances, a monomorphized
//! trampoline that knows the argument and result types, and the user's function,
//! plus a check value that differs between executables.
//!
//! # Safety
//!
//! [`EntryPoint::invoke`] jumps to an address computed from received data. It is
//! sound because entry points are made only by the constructors here (the fields are
//! private), travel only over the private socket between a parent and a child that
//! runs the same executable image (`/proc/self/exe` or `fork`), and are checked
//! against this executable's own check value before use.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Message};

/// What the child's side of a call produces: the encoded result, or why there is none.
pub(crate) type Outcome = Result<Message, String>;

type Trampoline = fn(usize, Message) -> Outcome;

#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x6d70_726f_6300_0001)
}

static IMAGE_TAG: u8 = 0;

fn offset_of(addr: usize) -> i64 {
    addr as i64 - anchor as *const () as usize as i64
}

fn address_of(offset: i64) -> usize {
    (anchor as *const () as usize as i64 + offset) as usize
}

/// Differs between executables (with high probability). Only non-generic items,
/// and no inlining: a generic function has one copy per crate that instantiates it,
/// so its address is no fixed point.
#[inline(never)]
fn image_check() -> i64 {
    offset_of(&IMAGE_TAG as *const u8 as usize)
        ^ (offset_of(image_check as *const () as usize) << 20)
}

/// A function to run in a child process, with its argument and result types.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct EntryPoint {
    trampoline: i64,
    target: i64,
    check: i64,
}

/// The kind of task types that carry their own code: a value that runs itself.
pub(crate) trait SelfRunning: Serialize + DeserializeOwned + 'static {
    /// What running produces.
    type Output: Serialize + 'static;
    /// Runs the task.
    fn run_self(self) -> Self::Output;
}

fn call_fn<A: DeserializeOwned, R: Serialize>(target: usize, input: Message) -> Outcome {
    // SAFETY: `target` was computed from the entry point that `for_fn::<A, R>` built
    // in a process running this executable, and `call_fn::<A, R>` is that entry
    // point's trampoline, so `target` is the address of a `fn(A) -> R` here too. The
    // image check in `invoke` has confirmed that both offsets are from this executable.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(target) };
    let arg: A = codec::decode(input)
        .map_err(|e| format!("cannot decode the arguments in the child: {e}"))?;
    codec::encode(&f(arg)).map_err(|e| format!("cannot encode the result in the child: {e}"))
}

fn call_task<T: SelfRunning>(_target: usize, input: Message) -> Outcome {
    let task: T =
        codec::decode(input).map_err(|e| format!("cannot decode the task in the child: {e}"))?;
    codec::encode(&task.run_self())
        .map_err(|e| format!("cannot encode the result in the child: {e}"))
}

impl EntryPoint {
    /// The entry point that runs `f` on a decoded `A` and encodes its `R`.
    pub(crate) fn for_fn<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> EntryPoint {
        EntryPoint {
            trampoline: offset_of(call_fn::<A, R> as Trampoline as *const () as usize),
            target: offset_of(f as *const () as usize),
            check: image_check(),
        }
    }

    /// The entry point that decodes a `T` and runs it.
    pub(crate) fn for_task<T: SelfRunning>() -> EntryPoint {
        EntryPoint {
            trampoline: offset_of(call_task::<T> as Trampoline as *const () as usize),
            target: 0,
            check: image_check(),
        }
    }

    /// Runs the function on `input` in this process.
    pub(crate) fn invoke(&self, input: Message) -> Outcome {
        if self.check != image_check() {
            return Err("the task was sent by a process running a different executable".into());
        }
        // SAFETY: the trampoline offset was made by `for_fn`/`for_task` from a
        // `Trampoline` in a process running this executable (image check above), so
        // the address is a `Trampoline` here (see the module's Safety section).
        let trampoline =
            unsafe { std::mem::transmute::<usize, Trampoline>(address_of(self.trampoline)) };
        trampoline(address_of(self.target), input)
    }
}

fn call_fn2<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>(
    target: usize,
    input: Message,
) -> Outcome {
    // SAFETY: as in `call_fn`: `target` is the address of the `fn(A, B) -> R` that
    // `for_fn2::<A, B, R>` named, in this same executable (image check in `invoke`).
    let f = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(target) };
    let (a, b): (A, B) = codec::decode(input)
        .map_err(|e| format!("cannot decode the arguments in the child: {e}"))?;
    codec::encode(&f(a, b)).map_err(|e| format!("cannot encode the result in the child: {e}"))
}

fn call_fn3<A: DeserializeOwned, B: DeserializeOwned, C: DeserializeOwned, R: Serialize>(
    target: usize,
    input: Message,
) -> Outcome {
    // SAFETY: as in `call_fn`: `target` is the address of the `fn(A, B, C) -> R`
    // that `for_fn3::<A, B, C, R>` named, in this same executable.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B, C) -> R>(target) };
    let (a, b, c): (A, B, C) = codec::decode(input)
        .map_err(|e| format!("cannot decode the arguments in the child: {e}"))?;
    codec::encode(&f(a, b, c)).map_err(|e| format!("cannot encode the result in the child: {e}"))
}

impl EntryPoint {
    /// The entry point that runs a two-argument `f` on a decoded `(A, B)` (the pool's
    /// `starmap`).
    pub(crate) fn for_fn2<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>(
        f: fn(A, B) -> R,
    ) -> EntryPoint {
        EntryPoint {
            trampoline: offset_of(call_fn2::<A, B, R> as Trampoline as *const () as usize),
            target: offset_of(f as *const () as usize),
            check: image_check(),
        }
    }

    /// The entry point that runs a three-argument `f` on a decoded `(A, B, C)`.
    pub(crate) fn for_fn3<
        A: DeserializeOwned,
        B: DeserializeOwned,
        C: DeserializeOwned,
        R: Serialize,
    >(
        f: fn(A, B, C) -> R,
    ) -> EntryPoint {
        EntryPoint {
            trampoline: offset_of(call_fn3::<A, B, C, R> as Trampoline as *const () as usize),
            target: offset_of(f as *const () as usize),
            check: image_check(),
        }
    }
}

/// A way of running a `fn(A) -> R` on an input, for callers that need more than
/// "decode one `A`, call, encode the `R`" (the pool runs a whole chunk per call).
pub(crate) trait Runner<A, R> {
    /// Runs `f` on `input`.
    fn run(f: fn(A) -> R, input: Message) -> Outcome;
}

fn call_with<A, R, X: Runner<A, R>>(target: usize, input: Message) -> Outcome {
    // SAFETY: as in `call_fn`: `target` is the address of the `fn(A) -> R` that
    // `for_fn_with::<A, R, X>` named, in this same executable (image check in `invoke`).
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(target) };
    X::run(f, input)
}

impl EntryPoint {
    /// The entry point that hands `f` and the raw input to `X::run`.
    pub(crate) fn for_fn_with<A, R, X: Runner<A, R>>(f: fn(A) -> R) -> EntryPoint {
        EntryPoint {
            trampoline: offset_of(call_with::<A, R, X> as Trampoline as *const () as usize),
            target: offset_of(f as *const () as usize),
            check: image_check(),
        }
    }
}

/// A way of running a `fn(&mut S, A) -> R` (a task that takes its worker's
/// state) on an input; the runner finds the state.
pub(crate) trait StatefulRunner<S, A, R> {
    /// Runs `f` on `input` and the state.
    fn run(f: fn(&mut S, A) -> R, input: Message) -> Outcome;
}

fn call_stateful<S, A, R, X: StatefulRunner<S, A, R>>(target: usize, input: Message) -> Outcome {
    // SAFETY: as in `call_fn`: `target` is the address of the `fn(&mut S, A) -> R`
    // that `for_stateful::<S, A, R, X>` named, in this same executable (image check
    // in `invoke`).
    let f = unsafe { std::mem::transmute::<usize, fn(&mut S, A) -> R>(target) };
    X::run(f, input)
}

impl EntryPoint {
    /// The entry point that hands `f` and the raw input to `X::run`.
    pub(crate) fn for_stateful<S, A, R, X: StatefulRunner<S, A, R>>(
        f: fn(&mut S, A) -> R,
    ) -> EntryPoint {
        EntryPoint {
            trampoline: offset_of(call_stateful::<S, A, R, X> as Trampoline as *const () as usize),
            target: offset_of(f as *const () as usize),
            check: image_check(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        x * 2
    }

    #[test]
    fn entry_point_survives_serialization() {
        let ep = EntryPoint::for_fn(double);
        let wire = postcard::to_stdvec(&ep).unwrap();
        let ep: EntryPoint = postcard::from_bytes(&wire).unwrap();
        let out = ep.invoke(codec::encode(&21u32).unwrap()).unwrap();
        assert_eq!(codec::decode::<u32>(out).unwrap(), 42);
    }

    #[test]
    fn wrong_image_is_refused() {
        let mut ep = EntryPoint::for_fn(double);
        ep.check ^= 1;
        assert!(ep.invoke(codec::encode(&1u32).unwrap()).is_err());
    }
}

/// A plain `fn()` that travels between processes running the same executable, as an
/// offset from the anchor plus this executable's check value (see the module's
/// Safety section: it is made only here and travels only inside mproc transfers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FnRef {
    target: i64,
    check: i64,
}

impl FnRef {
    /// Names `f`.
    pub(crate) fn new(f: fn()) -> FnRef {
        FnRef {
            target: offset_of(f as usize),
            check: image_check(),
        }
    }

    /// The function in this process, or `None` when the reference was made by a
    /// process running a different executable.
    pub(crate) fn get(&self) -> Option<fn()> {
        if self.check != image_check() {
            return None;
        }
        // SAFETY: `target` was computed by `FnRef::new` from a `fn()` in a process
        // running this executable (the image check above), so the same offset from
        // the anchor is that function's address here too.
        Some(unsafe { std::mem::transmute::<usize, fn()>(address_of(self.target)) })
    }
}
