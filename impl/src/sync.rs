//! The one place that names the concurrency runtime.
//!
//! Production builds use `std`; `--cfg loom` swaps in loom's model-checked primitives and
//! `--features shuttle` swaps in shuttle's scheduler-controlled ones. Every other module imports
//! `crate::sync::*` and never names `std::sync`, `std::thread`, loom or shuttle itself, so the
//! same engine code runs under all three.
//!
//! The runtime also owns the engine's random choices ([`Random`], the network's faults): a
//! seeded generator on std and loom, shuttle's controlled randomness under shuttle.

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

/// The source of the engine's random choices (which messages the network drops, duplicates or
/// reorders), chosen with the runtime like the primitives above.
///
/// - std: a small PRNG seeded by the caller, so a run is reproducible from its seed.
/// - loom: the same seeded PRNG, so every loom execution is deterministic given its interleaving.
/// - shuttle: the seed is ignored and every draw is shuttle's controlled randomness, part of the
///   schedule: each explored schedule (random or PCT) draws its own faults, and replaying a
///   schedule replays its faults too.
pub struct Random {
    #[cfg(any(loom, not(feature = "shuttle")))]
    rng: rand::rngs::SmallRng,
    #[cfg(all(feature = "shuttle", not(loom)))]
    rng: shuttle::rand::rngs::ThreadRng,
}

impl Random {
    /// A generator seeded with `seed` (std, loom); under shuttle, the current schedule's.
    #[cfg(any(loom, not(feature = "shuttle")))]
    pub fn seeded(seed: u64) -> Random {
        use rand::SeedableRng;
        Random {
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    /// A generator seeded with `seed` (std, loom); under shuttle, the current schedule's.
    #[cfg(all(feature = "shuttle", not(loom)))]
    pub fn seeded(_seed: u64) -> Random {
        Random {
            rng: shuttle::rand::thread_rng(),
        }
    }
}

#[cfg(any(loom, not(feature = "shuttle")))]
impl rand::RngCore for Random {
    fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.rng.fill_bytes(dst)
    }
}

#[cfg(all(feature = "shuttle", not(loom)))]
impl rand::RngCore for Random {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        // shuttle's generator implements the `RngCore` of the rand version shuttle uses.
        shuttle::rand::RngCore::next_u64(&mut self.rng)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
