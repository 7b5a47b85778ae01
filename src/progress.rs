//! How the core keeps a waiting person informed without printing: the face
//! that runs an operation implements [`Progress`].

/// What the person waiting on a long operation (a login, a refresh) is
/// shown, by the face that runs it (the command line: a spinner on a
/// terminal, a line on stderr).
pub(crate) trait Progress {
    /// Shown while it lives: dropping it ends the wait's display.
    type Waiting;

    /// A wait begins (for the browser, for Withings), described by `what`.
    fn waiting(&self, what: &str) -> Self::Waiting;

    /// A line for the person while the wait goes on.
    fn tell(&self, line: &str);
}
