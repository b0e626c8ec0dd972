//! The storage boundary: no panic of the storage engine reaches the node.
//!
//! redb trusts the bytes of its own file: a page overwritten by a disk fault, a stray `dd` or a
//! bad sector can make it panic (an `unreachable!` in its b-tree code, an index out of bounds)
//! instead of returning `StorageError::Corrupted`. Every call from [`super::Chain`] and
//! [`super::ChainReader`] into the database runs inside [`Guard::run`], which catches such a
//! panic, turns it into [`ChainError::Corrupt`] naming the file, and poisons the guard: the
//! database is not touched again by that handle (its in-memory index may be half updated), so
//! every later call returns the same error until the database is reopened.
//!
//! The panic message is captured for the error instead of printed: a quiet panic hook, installed
//! once, swallows panics raised inside a guard on this thread and passes every other panic to
//! the hook that was there before.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once, OnceLock};

use super::error::ChainError;

/// Catches storage-engine panics for one database handle and remembers the first.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// How the database is named in errors.
    path: String,
    /// The first panic caught: once set, the handle is not used again.
    poisoned: OnceLock<String>,
}

thread_local! {
    /// Guards entered on this thread and not left yet.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The message of the last panic raised inside a guard on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

/// Installs the hook that keeps guarded panics off stderr (once per process).
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                let text = payload_text(info.payload());
                let message = match info.location() {
                    Some(at) => format!("{text}, at {}:{}", at.file(), at.line()),
                    None => text,
                };
                CAUGHT.with(|c| *c.borrow_mut() = Some(message));
            } else {
                previous(info);
            }
        }));
    });
}

/// Leaves the guard on drop, also while unwinding.
struct Entered;

impl Entered {
    fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get().saturating_add(1)));
        Self
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

impl Guard {
    /// A guard for the database named `path` in errors.
    pub fn new(path: impl Into<String>) -> Self {
        install_quiet_hook();
        Self {
            inner: Arc::new(Shared {
                path: path.into(),
                poisoned: OnceLock::new(),
            }),
        }
    }

    /// The first storage-engine panic caught, if any.
    pub fn poisoned(&self) -> Option<&str> {
        self.inner.poisoned.get().map(String::as_str)
    }

    /// The error every call returns once the guard is poisoned.
    fn corrupt(&self, detail: &str) -> ChainError {
        ChainError::Corrupt {
            path: self.inner.path.clone(),
            detail: detail.to_owned(),
        }
    }

    /// Runs `f`, which reads or writes the database: a panic inside becomes
    /// [`ChainError::Corrupt`] and poisons the guard; a poisoned guard does not run `f`.
    pub fn run<T, E: From<ChainError>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        if let Some(detail) = self.poisoned() {
            return Err(self.corrupt(detail).into());
        }
        let outcome = {
            let _entered = Entered::enter();
            catch_unwind(AssertUnwindSafe(f))
        };
        match outcome {
            Ok(result) => result,
            Err(payload) => {
                let message = CAUGHT
                    .with(|c| c.borrow_mut().take())
                    .unwrap_or_else(|| payload_text(payload.as_ref()));
                let detail = format!("the storage engine failed reading it ({message})");
                let detail = self.inner.poisoned.get_or_init(|| detail);
                Err(self.corrupt(detail).into())
            }
        }
    }
}

/// The text of a panic payload (a `&str` or a `String`; anything else is unnamed).
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_typed_error_and_poisons_the_guard() {
        let guard = Guard::new("test.redb");
        let ok: Result<u32, ChainError> = guard.run(|| Ok(7));
        assert_eq!(ok.unwrap(), 7);
        let r: Result<u32, ChainError> = guard.run(|| panic!("entered unreachable code"));
        let ChainError::Corrupt { path, detail } = r.unwrap_err() else {
            panic!("not a Corrupt error");
        };
        assert_eq!(path, "test.redb");
        assert!(detail.contains("entered unreachable code"), "{detail}");
        let mut ran = false;
        let again: Result<(), ChainError> = guard.run(|| {
            ran = true;
            Ok(())
        });
        assert!(matches!(again, Err(ChainError::Corrupt { .. })));
        assert!(!ran, "a poisoned guard must not touch the database");
        assert!(
            guard.clone().poisoned().is_some(),
            "clones share the poison"
        );
    }

    #[test]
    fn guards_nest_and_leave_the_depth_balanced() {
        let guard = Guard::new("a");
        let r: Result<(), ChainError> =
            guard.run(|| Guard::new("b").run(|| -> Result<(), ChainError> { panic!("inner") }));
        assert!(matches!(r, Err(ChainError::Corrupt { ref path, .. }) if path == "b"));
        assert!(
            guard.poisoned().is_none(),
            "the outer guard saw an error, not a panic"
        );
        assert_eq!(DEPTH.with(Cell::get), 0);
    }
}
