//! Tasks by name: the process-wide registry, the typed [`Task`] handle, and how
//! arguments and results are laid out in a BullMQ job ([`Encoding`]).
//!
//! A job's `data` is the argument as plain JSON, so that any BullMQ client (Node,
//! Python, the CLI) can produce and read it. Between Rust peers the compact
//! binary form is an envelope `{"$mproc": {"enc": "postcard"}, "bin": "<base64>"}`;
//! the result of a job comes back in the form its argument came in.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock, RwLock};

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::DistributedError;

/// How a job's argument (and so its result) is laid out in Redis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Plain JSON: readable and producible by any BullMQ client (the default).
    #[default]
    Json,
    /// postcard bytes in base64 inside a small JSON envelope: smaller and faster
    /// between Rust peers, opaque to other clients.
    Binary,
}

const ENVELOPE: &str = "$mproc";
const BINARY: &str = "postcard";

/// Lays `value` out as a job's data (or a job's return value) in `encoding`.
pub(crate) fn encode_value<T: Serialize>(value: &T, encoding: Encoding) -> Result<Value, String> {
    match encoding {
        Encoding::Json => serde_json::to_value(value).map_err(|e| e.to_string()),
        Encoding::Binary => {
            let bytes = postcard::to_allocvec(value).map_err(|e| e.to_string())?;
            Ok(serde_json::json!({
                ENVELOPE: { "enc": BINARY },
                "bin": base64::engine::general_purpose::STANDARD.encode(bytes),
            }))
        }
    }
}

/// Lays out a job's data: the argument in `encoding`, and the mproc options that
/// travel with the job (its timeout) in the envelope. Without options, a JSON
/// argument is the data itself.
pub(crate) fn encode_job<T: Serialize>(
    arg: &T,
    encoding: Encoding,
    timeout: Option<std::time::Duration>,
) -> Result<Value, String> {
    let mut v = encode_value(arg, encoding)?;
    if let Some(t) = timeout {
        if encoding == Encoding::Json {
            v = serde_json::json!({ ENVELOPE: {}, "arg": v });
        }
        v[ENVELOPE]["timeout_ms"] = Value::from(t.as_millis() as u64);
    }
    Ok(v)
}

/// Reads a job's data laid out by [`encode_job`] (or plain JSON from any BullMQ
/// client): the argument, its encoding and the job's timeout.
pub(crate) fn decode_job<T: DeserializeOwned>(
    data: &Value,
) -> Result<(T, Encoding, Option<std::time::Duration>), String> {
    let timeout = data
        .get(ENVELOPE)
        .and_then(|e| e.get("timeout_ms"))
        .and_then(Value::as_u64)
        .map(std::time::Duration::from_millis);
    if let (Some(env), Some(arg)) = (data.get(ENVELOPE), data.get("arg")) {
        if env.get("enc").is_none() {
            return T::deserialize(arg)
                .map(|v| (v, Encoding::Json, timeout))
                .map_err(|e| e.to_string());
        }
    }
    decode_value(data).map(|(v, enc)| (v, enc, timeout))
}

/// Reads a value laid out by [`encode_value`] (in either encoding); also says
/// which encoding it found.
pub(crate) fn decode_value<T: DeserializeOwned>(value: &Value) -> Result<(T, Encoding), String> {
    if let Some(env) = value.get(ENVELOPE) {
        let enc = env.get("enc").and_then(Value::as_str).unwrap_or("");
        if enc != BINARY {
            return Err(format!(
                "unknown mproc encoding {enc:?} (expected \"{BINARY}\")"
            ));
        }
        let b64 = value
            .get("bin")
            .and_then(Value::as_str)
            .ok_or("the binary envelope has no \"bin\" string")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the binary envelope is not base64: {e}"))?;
        let v = postcard::from_bytes(&bytes).map_err(|e| e.to_string())?;
        return Ok((v, Encoding::Binary));
    }
    T::deserialize(value)
        .map(|v| (v, Encoding::Json))
        .map_err(|e| e.to_string())
}

/// A function registered under a stable name, with its argument and result
/// types: what producers submit and workers run.
///
/// Made by [`register`] (where the function lives) or [`Task::remote`] (a
/// producer that only knows the name and the types).
///
/// # Examples
///
/// ```
/// use mproc::distributed::{register, Task};
///
/// fn double(x: u64) -> u64 { x * 2 }
///
/// let task: Task<u64, u64> = register("docs.double", double)?;
/// assert_eq!(task.name(), "docs.double");
/// // The same name and types, on a machine without the function:
/// let remote: Task<u64, u64> = Task::remote("docs.double");
/// assert_eq!(remote.name(), task.name());
/// # Ok::<(), mproc::distributed::DistributedError>(())
/// ```
pub struct Task<A, R> {
    name: Arc<str>,
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Clone for Task<A, R> {
    fn clone(&self) -> Self {
        Task {
            name: Arc::clone(&self.name),
            _types: PhantomData,
        }
    }
}

impl<A, R> fmt::Debug for Task<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Task").field(&self.name).finish()
    }
}

impl<A, R> Task<A, R> {
    /// A handle to the task named `name` that runs on other machines; nothing is
    /// checked here (the worker checks the name and the argument's shape).
    ///
    /// # Examples
    ///
    /// See [`Task`].
    pub fn remote(name: impl Into<String>) -> Self {
        Task {
            name: name.into().into(),
            _types: PhantomData,
        }
    }

    /// The task's name: the BullMQ job name.
    ///
    /// # Examples
    ///
    /// See [`Task`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What the worker needs of a registered function: run it on a job's data.
pub(crate) struct Entry {
    pub(crate) name: Arc<str>,
    pub(crate) type_name: &'static str,
    /// The function pointer and its types, erased; `super::worker` downcasts
    /// through `start`.
    pub(crate) start: super::worker::Starter,
    fn_any: Box<dyn Any + Send + Sync>,
}

#[derive(Default)]
struct Registry {
    by_name: HashMap<Arc<str>, Arc<Entry>>,
    by_fn: HashMap<usize, Arc<str>>,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(Registry::default()))
}

/// Registers `f` under `name` for this process: workers started afterwards run
/// jobs of that name with it, and executors find the name when `f` is submitted.
///
/// Registering the same function under the same name again is a no-op (handy
/// when several entry points of one binary register their tasks).
///
/// # Errors
///
/// [`DistributedError::Registration`] when `name` is empty or already taken by
/// another function (or the same function with other types), or `f` is already
/// registered under another name.
///
/// # Examples
///
/// ```
/// use mproc::distributed::register;
///
/// fn shout(s: String) -> String { s.to_uppercase() }
///
/// let task = register("docs.shout", shout)?;
/// assert_eq!(task.name(), "docs.shout");
/// assert!(register("docs.shout", shout).is_ok());
/// assert!(register("docs.shout", |s: String| s).is_err());
/// # Ok::<(), mproc::distributed::DistributedError>(())
/// ```
pub fn register<A, R>(name: &str, f: fn(A) -> R) -> Result<Task<A, R>, DistributedError>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    if name.is_empty() {
        return Err(DistributedError::Registration(
            "a task name cannot be empty".into(),
        ));
    }
    let addr = f as *const () as usize;
    let type_name = std::any::type_name::<fn(A) -> R>();
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = reg.by_name.get(name) {
        let same = existing
            .fn_any
            .downcast_ref::<fn(A) -> R>()
            .is_some_and(|g| *g as *const () as usize == addr);
        if same {
            return Ok(Task::remote(name));
        }
        return Err(DistributedError::Registration(format!(
            "the task name {name:?} is already registered to another function ({})",
            existing.type_name
        )));
    }
    if let Some(other) = reg.by_fn.get(&addr) {
        return Err(DistributedError::Registration(format!(
            "this function is already registered as {other:?}; a function has one name"
        )));
    }
    let name: Arc<str> = name.into();
    let entry = Arc::new(Entry {
        name: Arc::clone(&name),
        type_name,
        start: super::worker::starter::<A, R>(f),
        fn_any: Box::new(f),
    });
    reg.by_name.insert(Arc::clone(&name), entry);
    reg.by_fn.insert(addr, Arc::clone(&name));
    Ok(Task {
        name,
        _types: PhantomData,
    })
}

/// The registered name of `f`, if any.
pub(crate) fn name_of<A, R>(f: fn(A) -> R) -> Option<Arc<str>> {
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    reg.by_fn.get(&(f as *const () as usize)).cloned()
}

/// The entry registered under `name`.
pub(crate) fn lookup(name: &str) -> Option<Arc<Entry>> {
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    reg.by_name.get(name).cloned()
}

/// The names registered so far, sorted (for error messages and the worker's log).
pub(crate) fn names() -> Vec<String> {
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<String> = reg.by_name.keys().map(|k| k.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Args {
        w: u32,
        name: String,
    }

    #[test]
    fn both_encodings_round_trip() {
        let a = Args {
            w: 7,
            name: "x".into(),
        };
        for enc in [Encoding::Json, Encoding::Binary] {
            let v = encode_value(&a, enc).unwrap();
            let (back, found): (Args, _) = decode_value(&v).unwrap();
            assert_eq!(back, a);
            assert_eq!(found, enc);
        }
        assert_eq!(
            encode_value(&a, Encoding::Json).unwrap(),
            serde_json::json!({"w": 7, "name": "x"})
        );
    }

    #[test]
    fn a_timeout_travels_in_the_envelope() {
        let t = Some(std::time::Duration::from_millis(1500));
        for enc in [Encoding::Json, Encoding::Binary] {
            let v = encode_job(&(1u8, 2u8), enc, t).unwrap();
            let (back, found, timeout): ((u8, u8), _, _) = decode_job(&v).unwrap();
            assert_eq!((back, found, timeout), ((1, 2), enc, t));
        }
        let (back, _, timeout): (u8, _, _) = decode_job(&serde_json::json!(5)).unwrap();
        assert_eq!((back, timeout), (5, None));
    }

    #[test]
    fn wrong_shape_is_an_error_that_says_why() {
        let err = decode_value::<Args>(&serde_json::json!({"w": "seven"})).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        let err = decode_value::<Args>(&serde_json::json!({"$mproc": {"enc": "zip"}})).unwrap_err();
        assert!(err.contains("unknown mproc encoding"), "{err}");
    }
}
