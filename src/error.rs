//! The library's error type: every failure names the file or value at fault.

use std::path::PathBuf;

/// A result whose error is [`BorexError`].
pub type Result<T, E = BorexError> = std::result::Result<T, E>;

/// Every error the library returns; its message is one line naming the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum BorexError {
    // The io::Error is part of the message, not a `source`: reports print the chain once.
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        err: std::io::Error,
    },

    /// An image file could not be decoded.
    #[error("{path}: not a readable image ({reason})")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },

    /// A model file is unusable (unreadable, or an input or output borex cannot use).
    #[error("{path}: {reason}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A labels file could not be read or parsed.
    #[error("{path}: labels: {reason}")]
    Labels {
        /// The labels file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// ONNX Runtime failed (loading the library, building a session, a run).
    #[error("ONNX Runtime: {0}")]
    Runtime(String),

    /// A wgpu call failed (device lost, out of memory, a buffer mapping).
    #[error("GPU: {0}")]
    Gpu(String),

    /// `--device gpu` was asked for and there is no Vulkan adapter.
    #[error("no GPU adapter found ({0}); install a Vulkan driver (on machines without a GPU: Debian's mesa-vulkan-drivers and libvulkan1, which scripts/setup.sh installs) or use --device cpu")]
    NoAdapter(String),

    /// Bad input: a file, a flag or a value, named in the message.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A setting's value is out of its range or does not fit the input: `name`
    /// is the setting's library name (`budget`, `p`, `batch`), which each
    /// front end spells its own way (`--budget` on the command line, `budget=`
    /// in Python; see [`BorexError::render`]). The message reads after the
    /// setting's name and value: "{name} {value} {message}".
    #[error("invalid input: {}", Spelling::Name.render(name, value.as_deref(), message))]
    Setting {
        /// The setting's name in the library's settings types.
        name: String,
        /// The value as given, when the message is about it.
        value: Option<String>,
        /// What is wrong, read after the name and the value.
        message: String,
    },

    /// A model borex runs as code (the Python package's callable) failed, or
    /// returned scores borex cannot use: `reason` says what and on which call.
    #[error("{model}: {reason}")]
    ModelCall {
        /// What the model is called (the callable's name).
        model: String,
        /// What went wrong, and on which call.
        reason: String,
        /// The callable's own error (a Python exception), for a front end to chain to its own.
        cause: Option<ForeignCause>,
    },

    /// Ctrl-C / SIGTERM arrived ([`crate::output::interrupt`]): the work in flight is dropped, not failed.
    #[error("interrupted")]
    Interrupted,
}

/// An error from outside Rust (a Python exception) carried through the
/// library untouched: only the front end that made it can read it (by
/// downcasting), so the library neither prints nor inspects it.
#[derive(Clone)]
pub struct ForeignCause(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for ForeignCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignCause(..)")
    }
}

/// What kind of failure an error is: what a front end maps its own error
/// classes from (the Python package's exceptions), rather than from the message
/// or from the file system at the time the error is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file or folder that does not exist (a model, an image, labels).
    NotFound,
    /// Any other file-system failure (permissions, a full disk).
    Io,
    /// A file that is not a readable image.
    Image,
    /// A model or labels file borex cannot use.
    Model,
    /// A bad argument or setting.
    InvalidInput,
    /// ONNX Runtime or the GPU failed, or there is no GPU adapter.
    Runtime,
    /// Ctrl-C / SIGTERM stopped the work.
    Interrupted,
}

impl BorexError {
    /// A file that does not exist: an [`BorexError::Io`] of kind `NotFound`
    /// whose message is `what` ("model file not found").
    pub fn not_found(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Self::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, what.into()))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { err, .. } if err.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            Self::Io { .. } => ErrorKind::Io,
            Self::Image { .. } => ErrorKind::Image,
            Self::Model { .. } | Self::Labels { .. } | Self::ModelCall { .. } => ErrorKind::Model,
            Self::InvalidInput(_) | Self::Setting { .. } => ErrorKind::InvalidInput,
            Self::Runtime(_) | Self::Gpu(_) | Self::NoAdapter(_) => ErrorKind::Runtime,
            Self::Interrupted => ErrorKind::Interrupted,
        }
    }
}

/// How a front end spells a setting in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// The library's name: `budget 5 is …`.
    Name,
    /// A command-line flag: `--budget 5 is …` (underscores become dashes).
    Flag,
    /// A keyword argument: `budget=5 is …`.
    Keyword,
}

impl Spelling {
    /// The one-line text of a setting error in this spelling.
    pub fn render(self, name: &str, value: Option<&str>, message: &str) -> String {
        let head = match (self, value) {
            (Spelling::Name, Some(v)) => format!("{name} {v}"),
            (Spelling::Name, None) => name.to_string(),
            (Spelling::Flag, Some(v)) => format!("--{} {v}", name.replace('_', "-")),
            (Spelling::Flag, None) => format!("--{}", name.replace('_', "-")),
            (Spelling::Keyword, Some(v)) => format!("{name}={v}"),
            (Spelling::Keyword, None) => name.to_string(),
        };
        if message.is_empty() {
            head
        } else if message.starts_with([':', ',']) {
            format!("{head}{message}")
        } else {
            format!("{head} {message}")
        }
    }
}

impl BorexError {
    /// A setting's value that is out of range or does not fit: "{name} {value} {message}".
    pub fn setting(name: impl Into<String>, value: Option<String>, message: impl Into<String>) -> Self {
        Self::Setting { name: name.into(), value, message: message.into() }
    }

    /// The error's one-line message with settings spelled as `spelling` (a
    /// setting error; any other error reads as its `Display`).
    pub fn render(&self, spelling: Spelling) -> String {
        match self {
            Self::Setting { name, value, message } => {
                format!("invalid input: {}", spelling.render(name, value.as_deref(), message))
            }
            other => other.to_string(),
        }
    }

    /// A file could not be read or written.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), err: source }
    }

    /// A model file is unusable, and why.
    pub fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Model { path: path.into(), reason: reason.into() }
    }

    /// Bad input (a file, a flag, a value), in one line.
    pub fn invalid(msg: impl Into<String>) -> Self {
        // A message that quotes another invalid-input error would print its prefix twice
        // ("invalid input: frame 3: invalid input: …"): the outer one is enough.
        Self::InvalidInput(msg.into().replace("invalid input: ", ""))
    }

    /// The same error again, variant and message kept (the type is not
    /// `Clone`: io::Error is not): one failure reported for each of several
    /// inputs, such as the loops of a lockstep group.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Io { path, err } => {
                Self::Io { path: path.clone(), err: std::io::Error::new(err.kind(), err.to_string()) }
            }
            Self::Image { path, reason } => Self::Image { path: path.clone(), reason: reason.clone() },
            Self::Model { path, reason } => Self::Model { path: path.clone(), reason: reason.clone() },
            Self::Labels { path, reason } => Self::Labels { path: path.clone(), reason: reason.clone() },
            Self::Runtime(m) => Self::Runtime(m.clone()),
            Self::Gpu(m) => Self::Gpu(m.clone()),
            Self::NoAdapter(m) => Self::NoAdapter(m.clone()),
            Self::InvalidInput(m) => Self::InvalidInput(m.clone()),
            Self::Setting { name, value, message } => {
                Self::Setting { name: name.clone(), value: value.clone(), message: message.clone() }
            }
            Self::ModelCall { model, reason, cause } => {
                Self::ModelCall { model: model.clone(), reason: reason.clone(), cause: cause.clone() }
            }
            Self::Interrupted => Self::Interrupted,
        }
    }
}

impl From<ort::Error> for BorexError {
    fn from(e: ort::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::BorexError;

    #[test]
    fn a_quoted_invalid_input_error_has_one_prefix() {
        let inner = BorexError::invalid("--std values must be finite");
        let outer = BorexError::invalid(format!("frame 3: {inner}"));
        assert_eq!(outer.to_string(), "invalid input: frame 3: --std values must be finite");
    }

    #[test]
    fn a_duplicate_reads_like_the_original() {
        let errors = [
            BorexError::io("a.png", std::io::Error::new(std::io::ErrorKind::NotFound, "gone")),
            BorexError::Image { path: "b.png".into(), reason: "truncated".into() },
            BorexError::model("m.onnx", "no output"),
            BorexError::Labels { path: "l.txt".into(), reason: "empty".into() },
            BorexError::Runtime("session failed".into()),
            BorexError::Gpu("device lost".into()),
            BorexError::NoAdapter("none".into()),
            BorexError::invalid("bad --iters"),
            BorexError::setting("iters", Some("0".into()), "is out of range"),
            BorexError::ModelCall { model: "fn".into(), reason: "call 1 raised".into(), cause: None },
        ];
        for e in &errors {
            let d = e.duplicate();
            assert_eq!(d.to_string(), e.to_string());
            assert_eq!(std::mem::discriminant(&d), std::mem::discriminant(e));
        }
        let BorexError::Io { err, .. } = errors[0].duplicate() else { unreachable!() };
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_missing_file_reads_as_before_and_is_of_kind_not_found() {
        let e = BorexError::not_found("m.onnx", "model file not found");
        assert_eq!(e.to_string(), "m.onnx: model file not found");
        assert_eq!(e.kind(), super::ErrorKind::NotFound);
        assert_eq!(BorexError::model("m.onnx", "no output").kind(), super::ErrorKind::Model);
    }

    #[test]
    fn a_setting_error_is_spelled_by_each_front_end() {
        let e = BorexError::setting("refit_every", Some("0".into()), "is out of range: it must be between 1 and 2000");
        assert_eq!(e.to_string(), "invalid input: refit_every 0 is out of range: it must be between 1 and 2000");
        assert_eq!(
            e.render(super::Spelling::Flag),
            "invalid input: --refit-every 0 is out of range: it must be between 1 and 2000"
        );
        assert_eq!(
            e.render(super::Spelling::Keyword),
            "invalid input: refit_every=0 is out of range: it must be between 1 and 2000"
        );
        let bare = BorexError::setting("eps", None, "must be a finite number > 0, not -1");
        assert_eq!(bare.render(super::Spelling::Keyword), "invalid input: eps must be a finite number > 0, not -1");
    }
}
