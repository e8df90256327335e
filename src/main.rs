//! The `borex` command: parse, validate into a config, call the library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Mesa's Vulkan driver probes Wayland at instance creation and prints a
    // spurious error when XDG_RUNTIME_DIR is unset; borex never presents to a
    // surface. Set before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    // Ctrl-C / SIGTERM: remove the run's staging folder and temporary files,
    // so an interrupted run leaves its output folder as it was.
    // The process ends with _exit, not exit: exit would run ONNX Runtime's
    // destructors while the main thread is still in a model call, which then
    // fails (logging its error) and could be recorded as a failed image.
    let _ = ctrlc::set_handler(|| {
        borex::output::interrupt();
        eprintln!("error: interrupted; the unfinished outputs were removed (finished frames and images of a video or many-image run are kept for a rerun)");
        // SAFETY: _exit ends the process without running any user-space code.
        unsafe { libc::_exit(130) };
    });
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`borex classify ... | head`) is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error chain as anyhow's `{:#}` prints it ("context: cause"), with the
/// library's setting errors spelled as flags (`budget` → `--budget`).
fn render(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| match c.downcast_ref::<borex::BorexError>() {
            Some(b) => b.render(borex::error::Spelling::Flag),
            None => c.to_string(),
        })
        .collect();
    parts.join(": ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
