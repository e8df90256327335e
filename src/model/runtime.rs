//! Loading ONNX Runtime at run time and choosing execution providers.

use crate::error::{BorexError, Result};
use ort::environment::Environment;
use ort::ep::{ExecutionProvider as _, CPU, CUDA};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Which ONNX Runtime execution provider scores images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// NVIDIA CUDA (needs the onnxruntime-gpu library).
    Cuda,
}

named_enum!(ExecutionProvider, "execution provider", { Cpu => "cpu", Cuda => "cuda" });

/// A weight replaced when the session is built (e.g. randomised for a sanity check).
#[derive(Debug, Clone, PartialEq)]
pub struct InitializerOverride {
    /// The initializer's name in the graph.
    pub name: String,
    /// Its shape.
    pub dims: Vec<i64>,
    /// Its values, row-major (as many as the shape holds).
    pub data: Vec<f32>,
}

static ENV: OnceLock<(Environment, PathBuf)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Load the ONNX Runtime library once per process. A second call with another
/// path is an error: one process holds one runtime.
pub fn runtime(lib: &Path) -> Result<&'static Environment> {
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((env, loaded)) = ENV.get() {
        if loaded != lib {
            return Err(BorexError::Runtime(format!(
                "already loaded from {}, cannot also load {}",
                loaded.display(),
                lib.display()
            )));
        }
        return Ok(env);
    }
    if !lib.exists() {
        return Err(BorexError::Runtime(crate::paths::missing_ort_message(lib)));
    }
    // The loader would block on a FIFO and map whatever a device gives: a regular file only.
    crate::limits::check_readable(lib, crate::limits::MAX_MODEL_BYTES, "ONNX Runtime library")
        .map_err(|e| BorexError::Runtime(e.to_string().replace("invalid input: ", "")))?;
    too_old(lib)?;
    let builder = ort::init_from(lib).map_err(|e| {
        BorexError::Runtime(format!(
            "cannot load {}: {}",
            lib.display(),
            loader_reason(lib).unwrap_or_else(|| e.to_string())
        ))
    })?;
    let env = builder.with_name("borex").build()?;
    Ok(&ENV.get_or_init(|| (env, lib.to_path_buf())).0)
}

/// An ONNX Runtime older than the C API `ort` was built for (1.31) loads, then
/// fails at the first call that is newer: refuse it by its versioned file name
/// first, with the fix.
fn too_old(lib: &Path) -> Result<()> {
    let name = std::fs::canonicalize(lib).ok().and_then(|p| Some(p.file_name()?.to_str()?.to_string()));
    let Some(v) = name.as_deref().and_then(|n| n.strip_prefix("libonnxruntime.so.")) else { return Ok(()) };
    let mut parts = v.split('.').map(|x| x.parse::<u32>().ok());
    if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
        if major == 1 && minor < ort::MINOR_VERSION {
            return Err(BorexError::Runtime(format!(
                "ONNX Runtime {v} at {} is too old: borex needs 1.{} or newer: pip install '{}', or point ORT_DYLIB_PATH at a newer libonnxruntime.so",
                lib.display(),
                ort::MINOR_VERSION,
                crate::paths::ORT_REQUIREMENT
            )));
        }
    }
    Ok(())
}

/// Why the dynamic loader refuses `lib` (not an ELF file, wrong architecture,
/// a missing dependency), or `None` if it loads.
fn loader_reason(lib: &Path) -> Option<String> {
    let mut magic = [0u8; 4];
    let is_elf = std::fs::File::open(lib).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
        && magic == *b"\x7fELF";
    if cfg!(target_os = "linux") && !is_elf {
        return Some(
            "not a shared library (no ELF header); point --ort-lib / ORT_DYLIB_PATH at libonnxruntime.so".into(),
        );
    }
    // SAFETY: loading the library runs its initialisers, exactly as ort's own attempt just did.
    match unsafe { libloading::Library::new(lib) } {
        Ok(_) => None,
        Err(e) => Some(format!("the dynamic loader says: {e}")),
    }
}

/// Execution providers compiled into the loaded library (ONNX Runtime's own names).
pub fn available_providers() -> Vec<&'static str> {
    let mut out = vec![];
    if CPU::is_available().unwrap_or(false) {
        out.push(CPU::NAME);
    }
    if CUDA::is_available().unwrap_or(false) {
        out.push(CUDA::NAME);
    }
    out
}

/// The ONNX Runtime version of a library, read from its versioned file name
/// (`libonnxruntime.so.1.31.1`), else the build string the library reports.
pub fn version(lib: &Path) -> String {
    std::fs::canonicalize(lib)
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.strip_prefix("libonnxruntime.so.").map(str::to_string))
        .unwrap_or_else(|| ort::info().to_string())
}

/// Build a session on the requested provider; CUDA fails loudly rather than
/// silently falling back to the CPU.
pub(crate) fn session(
    env: &Environment,
    model: &Path,
    ep: ExecutionProvider,
    overrides: &[InitializerOverride],
) -> Result<ort::session::Session> {
    let rt = |e: ort::Error<ort::session::builder::SessionBuilder>| BorexError::Runtime(e.to_string());
    // No spin-waiting by default: BOREx alternates model calls with GP work on
    // the same cores, and spinning ORT threads would steal them (on a loaded
    // 2-core machine spinning made batch-2 calls slower, docs/benchmarks.md).
    // BOREX_ORT_SPIN=1 spins within a run and stops as each run returns, for
    // measuring the choice on a quiet machine (python/bench/cold_refine.py).
    let spin = std::env::var("BOREX_ORT_SPIN").is_ok_and(|v| v == "1");
    let mut builder = ort::session::Session::builder(env)?
        .with_intra_op_spinning(spin)
        .map_err(rt)?
        .with_inter_op_spinning(false)
        .map_err(rt)?;
    if spin {
        builder = builder.with_config_entry("session.force_spinning_stop", "1").map_err(rt)?;
    }
    if ep == ExecutionProvider::Cuda {
        if !CUDA::is_available().unwrap_or(false) {
            // An installed wheel loads the onnxruntime package's library: swapping the package is the fix.
            let fix = if crate::paths::package().is_some() {
                "pip uninstall onnxruntime && pip install onnxruntime-gpu (the same module, with the CUDA provider), or point ORT_DYLIB_PATH at its libonnxruntime.so"
            } else {
                "point --ort-lib / ORT_DYLIB_PATH at the libonnxruntime.so of the onnxruntime-gpu wheel, with libonnxruntime_providers_cuda.so and the CUDA 13 libraries beside it"
            };
            return Err(BorexError::Runtime(format!(
                "--ep cuda: the loaded ONNX Runtime library has no CUDA execution provider; {fix}"
            )));
        }
        builder = builder.with_execution_providers([CUDA::default().build().error_on_failure()]).map_err(rt)?;
    }
    for o in overrides {
        let tensor = ort::value::Tensor::from_array((o.dims.clone(), o.data.clone()))?;
        builder = builder.with_initializer(&o.name, std::sync::Arc::new(tensor.into_dyn())).map_err(rt)?;
    }
    let bytes = crate::limits::read_bounded(model, crate::limits::MAX_MODEL_BYTES, "model")?;
    builder.commit_from_memory(&bytes).map_err(|e| BorexError::model(model, format!("not a loadable ONNX model: {e}")))
}
