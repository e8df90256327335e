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
    keep_freed_memory();
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

/// glibc gives large blocks back to the kernel when they are freed (mapped
/// apart, or trimmed off the heap's top), so the next batch's buffers, in
/// borex and in ONNX Runtime alike, fault in fresh zeroed pages. Keeping them
/// in the heap for reuse cut a cold refine's page faults from 124 k to 111 k
/// (docs/benchmarks.md) and holds memory at its peak until the process ends,
/// which a one-job process soon does. Not for the library: its host process decides.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; no thread has started yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
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
