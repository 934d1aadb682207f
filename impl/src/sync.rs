//! The one place that names the concurrency runtime.
//!
//! Production builds use `std`; `--cfg loom` swaps in loom's model-checked primitives and
//! `--features shuttle` swaps in shuttle's scheduler-controlled ones. Every other module imports
//! `crate::sync::*` and never names `std::sync`, `std::thread`, loom or shuttle itself, so the
//! same engine code runs under all three.

#[cfg(all(loom, feature = "shuttle"))]
compile_error!("`--cfg loom` and `--features shuttle` are mutually exclusive: pick one runtime");

#[cfg(loom)]
pub use loom::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread,
};

#[cfg(all(feature = "shuttle", not(loom)))]
pub use shuttle::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread,
};

#[cfg(not(any(loom, feature = "shuttle")))]
pub use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread,
};

/// Locks `mutex`, ignoring poisoning: a panicking thread already fails the run (tests, monitor),
/// and the protected state stays consistent because every critical section is a single
/// state-machine step.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `cv`, ignoring poisoning like [`lock`].
pub fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match cv.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Builds an `Arc` of a possibly unsized value (a trait object): loom's `Arc` cannot coerce
/// `Arc<T>` to `Arc<dyn Trait>`, so callers box first (`Box<dyn Trait>` coerces everywhere).
#[cfg(loom)]
pub fn arc_from_box<T: ?Sized>(boxed: Box<T>) -> Arc<T> {
    Arc::from_std(std::sync::Arc::from(boxed))
}

/// Builds an `Arc` of a possibly unsized value (a trait object).
#[cfg(not(loom))]
pub fn arc_from_box<T: ?Sized>(boxed: Box<T>) -> Arc<T> {
    Arc::from(boxed)
}
