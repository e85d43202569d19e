//! A hook that runs when the executable is loaded, before `main`.
//!
//! A process started by `StartMethod::Spawn` runs this same executable again; the
//! hook lets mproc take over such a child before any user code runs, so that no
//! `main`, test harness or doc test needs a line of set-up. It is an `.init_array`
//! entry, which glibc and musl call after relocation and after libc is initialised.
//!
//! # Safety
//!
//! The hook is an `extern "C" fn()` (the loader passes `argc, argv, envp`, which a
//! C-ABI function with fewer parameters may ignore) and never unwinds: the callee
//! catches panics.

/// The entry in `.init_array`. `#[used]` keeps it through optimisation; `linked()`
/// references it from the code that starts children, which keeps the object file
/// that holds it in every executable that can start a child.
#[used]
// SAFETY: `.init_array` holds pointers to functions the loader calls with the C ABI
// before `main`; `on_load` is such a function and never unwinds.
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

extern "C" fn on_load() {
    let _ = std::panic::catch_unwind(crate::process::on_load);
}

/// Makes sure the load hook is linked into the executable.
pub(crate) fn linked() {
    std::hint::black_box(&ON_LOAD);
}
