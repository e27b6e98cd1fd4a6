//! Where a command's own messages go: stderr, or, on a batch's thread, the batch's view
//! with the app's name in front (so a terminal's live lines are not torn and every line
//! says which app it is about).
//!
//! Owns the per-thread hook. Invariant: a hook is set only for as long as its
//! [`SayGuard`] lives, on the thread that set it.

/// Where a thread's messages go instead of stderr.
pub type Printer = Box<dyn Fn(&str)>;

thread_local! {
    /// Where this thread's messages go instead of stderr: a batch's view, set by the
    /// batch on each of its threads for the app it runs.
    static SAY: std::cell::RefCell<Option<Printer>> = const { std::cell::RefCell::new(None) };
}

/// Prints a message of the command: on stderr, or through the hook this thread was given
/// ([`say_through`]). Each of its lines is shown with control characters escaped
/// (`boyong::escape::controls`): a message may quote what a vendor or container sent.
pub fn say(text: &str) {
    let text = text
        .split('\n')
        .map(boyong::escape::controls)
        .collect::<Vec<_>>()
        .join("\n");
    SAY.with(|hook| match &*hook.borrow() {
        Some(f) => f(&text),
        None => eprintln!("{text}"),
    });
}

/// Sends this thread's messages through `hook` until the guard is dropped.
pub fn say_through(hook: Printer) -> SayGuard {
    SAY.with(|h| *h.borrow_mut() = Some(hook));
    SayGuard
}

/// Gives this thread's messages back to stderr when dropped.
pub struct SayGuard;

impl Drop for SayGuard {
    fn drop(&mut self) {
        SAY.with(|h| *h.borrow_mut() = None);
    }
}
