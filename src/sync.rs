//! The synchronisation the link is built on, in one place: locks,
//! condition variables, atomics and threads.
//!
//! Built normally these are parking_lot's locks and std's atomics and
//! threads. Built with `--cfg shuttle` (the model tests: `scripts/model`)
//! they are shuttle's, behind the same API, so the model checker controls
//! every lock, wait and thread switch of the concurrency core and explores
//! their interleavings. A timed wait there may end at any point, which
//! covers both of its outcomes.

// Reference counts need no model: shared either way.
pub(crate) use std::sync::Arc;

#[cfg(not(shuttle))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(shuttle))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(shuttle))]
pub(crate) use std::thread;

#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(shuttle)]
pub(crate) use shuttle::thread;
#[cfg(shuttle)]
pub(crate) use shuttle_shim::{Condvar, Mutex, MutexGuard, RwLock};

/// True once the thread of `handle` has ended (a join would not wait). The
/// model has no such look: there a thread counts as running until joined.
pub(crate) fn is_finished<T>(handle: &thread::JoinHandle<T>) -> bool {
    #[cfg(not(shuttle))]
    return handle.is_finished();
    #[cfg(shuttle)]
    {
        let _ = handle;
        false
    }
}

/// parking_lot's API over shuttle's std-like primitives.
#[cfg(shuttle)]
mod shuttle_shim {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// How often a timed lock tries before it gives up: the model then
    /// sees a lock that was had after a wait and one that timed out.
    const TRIES: usize = 2;

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a shuttle::sync::Mutex<T>,
        guard: Option<shuttle::sync::MutexGuard<'a, T>>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(shuttle::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
            MutexGuard {
                mutex: &self.0,
                guard: Some(guard),
            }
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            let guard = match self.0.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return None,
            };
            Some(MutexGuard {
                mutex: &self.0,
                guard: Some(guard),
            })
        }

        pub(crate) fn try_lock_until(&self, _deadline: Instant) -> Option<MutexGuard<'_, T>> {
            for _ in 0..TRIES {
                if let Some(guard) = self.try_lock() {
                    return Some(guard);
                }
                shuttle::thread::yield_now();
            }
            None
        }

        pub(crate) fn try_lock_for(
            &self,
            _timeout: std::time::Duration,
        ) -> Option<MutexGuard<'_, T>> {
            self.try_lock_until(Instant::now())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.guard.as_ref().expect("guard present")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_mut().expect("guard present")
        }
    }

    /// The outcome of a timed wait.
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(shuttle::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(shuttle::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.guard.take().expect("guard present");
            guard.guard = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        /// Shuttle's own timed wait never times out, so the model's is a
        /// yield with the lock let go, after which the wait has either
        /// timed out or been woken, as the model's coin says: callers see
        /// both, with or without what others did meanwhile.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            use shuttle::rand::RngCore;
            drop(guard.guard.take());
            shuttle::thread::yield_now();
            guard.guard = Some(guard.mutex.lock().unwrap_or_else(|e| e.into_inner()));
            WaitTimeoutResult(shuttle::rand::thread_rng().next_u32() % 2 == 0)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(shuttle::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> RwLock<T> {
            RwLock(shuttle::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> shuttle::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> shuttle::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }
}
