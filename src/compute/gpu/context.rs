//! One wgpu context per process: device, queue and a pipeline cache keyed by
//! kernel, built once and reused by every GPU stage.

use crate::error::{BorexError, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use wgpu::util::DeviceExt;

/// Every compute kernel borex ships, one WGSL file each in `shaders/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `apply_dense_masks.wgsl`: dense masks over an image and its baseline.
    ApplyDenseMasks,
    /// `apply_box_masks.wgsl`: box masks over stored images and substrates.
    ApplyBoxMasks,
    /// `gaussian_blur.wgsl`: the separable blur of the insertion metric.
    GaussianBlur,
    /// `gp_posterior.wgsl`: μ and σ at every candidate.
    GpPosterior,
    /// `argmax.wgsl`: the UCB maximum.
    Argmax,
    /// `window_rows.wgsl`: the map's window average along rows.
    WindowRows,
    /// `window_cols.wgsl`: the same along columns.
    WindowCols,
    /// `gp_mean_grid.wgsl`: the posterior mean on an arbitrary grid (full resolution).
    GpMeanGrid,
    /// `rise_masks.wgsl`: RISE masks generated on the device.
    RiseMasks,
    /// `rise_accumulate.wgsl`: RISE's score-weighted sums of the masks.
    RiseAccumulate,
}

impl Kernel {
    fn source(self) -> &'static str {
        match self {
            Kernel::ApplyDenseMasks => include_str!("../../../shaders/apply_dense_masks.wgsl"),
            Kernel::ApplyBoxMasks => include_str!("../../../shaders/apply_box_masks.wgsl"),
            Kernel::GaussianBlur => include_str!("../../../shaders/gaussian_blur.wgsl"),
            Kernel::GpPosterior => include_str!("../../../shaders/gp_posterior.wgsl"),
            Kernel::Argmax => include_str!("../../../shaders/argmax.wgsl"),
            Kernel::WindowRows => include_str!("../../../shaders/window_rows.wgsl"),
            Kernel::WindowCols => include_str!("../../../shaders/window_cols.wgsl"),
            Kernel::GpMeanGrid => include_str!("../../../shaders/gp_mean_grid.wgsl"),
            Kernel::RiseMasks => include_str!("../../../shaders/rise_masks.wgsl"),
            Kernel::RiseAccumulate => include_str!("../../../shaders/rise_accumulate.wgsl"),
        }
    }
}

/// `Params` of apply_dense_masks.wgsl and apply_box_masks.wgsl: masks, then the image's C×H×W.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MaskDims {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
}

/// `Params` of gaussian_blur.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BlurParams {
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub radius: u32,
}

/// `Params` of argmax.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ArgmaxParams {
    pub len: u32,
    pub identity: u32,
    pub mapped: u32,
    pub _pad1: u32,
}

/// `Params` of window_rows.wgsl and window_cols.wgsl (the rows pass ignores `per_plane`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct WindowParams {
    pub h: u32,
    pub w: u32,
    pub n_sizes: u32,
    pub per_plane: u32,
}

/// `Params` of rise_accumulate.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RiseAccParams {
    pub count: u32,
    pub j: u32,
    pub hw: u32,
    pub _pad: u32,
}

/// One host `#[repr(C)]` twin of a shader struct: its size and the offsets of
/// its fields, for tests/shader_layout.rs (which reads the shader side with naga).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct HostLayout {
    /// The shader file in `shaders/`.
    pub shader: &'static str,
    /// The struct's name in that file.
    pub wgsl_struct: &'static str,
    /// The struct's size in bytes.
    pub size: usize,
    /// Field name and byte offset, in declaration order.
    pub fields: Vec<(&'static str, usize)>,
}

pub(super) fn host_layouts() -> Vec<HostLayout> {
    vec![
        host_layout!(MaskDims, "apply_dense_masks.wgsl", "Params", [n, c, h, w]),
        host_layout!(MaskDims, "apply_box_masks.wgsl", "Params", [n, c, h, w]),
        host_layout!(BlurParams, "gaussian_blur.wgsl", "Params", [c, h, w, radius]),
        host_layout!(ArgmaxParams, "argmax.wgsl", "Params", [len, identity, mapped, _pad1]),
        // The rows pass has padding where the columns pass reads `per_plane`.
        host_layout!(WindowParams, "window_rows.wgsl", "Params", [h, w, n_sizes]),
        host_layout!(WindowParams, "window_cols.wgsl", "Params", [h, w, n_sizes, per_plane]),
        host_layout!(RiseAccParams, "rise_accumulate.wgsl", "Params", [count, j, hw, _pad]),
    ]
}

/// Threads per workgroup of every 1-D kernel (matches `@workgroup_size` in the shaders).
pub const WORKGROUP: u32 = 256;

/// One wgpu device and queue with borex's compiled pipelines, shared by every kernel.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
    /// The first device error (validation, out of memory, device lost) since
    /// the last readback. wgpu reports them asynchronously and would panic
    /// without a handler; they surface as `BorexError::Gpu` at the next read.
    error: Arc<Mutex<Option<String>>>,
    submits: AtomicU64,
    readbacks: AtomicU64,
}

/// The process-wide context, or why there is none (kept as the error's parts: BorexError is not Clone).
static SHARED: OnceLock<std::result::Result<Arc<GpuContext>, (bool, String)>> = OnceLock::new();

impl GpuContext {
    /// Open the best adapter (a discrete GPU over a software one).
    pub fn new() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::VULKAN,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| BorexError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        // Take the adapter's own limits: large storage buffers matter for batched masks.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("borex"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| BorexError::Gpu(format!("cannot open {}: {e}", info.name)))?;
        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&sink, e.to_string())));
        let sink = error.clone();
        device.set_device_lost_callback(move |reason, msg| record(&sink, format!("device lost ({reason:?}): {msg}")));
        Ok(Self {
            device,
            queue,
            info,
            limits,
            pipelines: Mutex::new(HashMap::new()),
            error,
            submits: AtomicU64::new(0),
            readbacks: AtomicU64::new(0),
        })
    }

    /// The process-wide context, created on first use.
    pub fn shared() -> Result<Arc<Self>> {
        SHARED
            .get_or_init(|| {
                Self::new().map(Arc::new).map_err(|e| match e {
                    BorexError::NoAdapter(reason) => (true, reason),
                    other => (false, other.to_string()),
                })
            })
            .clone()
            .map_err(|(no_adapter, msg)| if no_adapter { BorexError::NoAdapter(msg) } else { BorexError::Gpu(msg) })
    }

    /// The adapter's name, backend and type.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// True for a software rasteriser such as Mesa's llvmpipe.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The adapter in words (name, backend, type, software or not), for reports.
    pub fn describe(&self) -> String {
        format!(
            "{} [{:?}, {:?}{}]",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            if self.is_software() { ", software" } else { "" }
        )
    }

    /// Largest storage buffer one binding may see.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Ask the device itself for a storage buffer of `bytes` (no size check of
    /// ours) and read one element back: how a wgpu validation or out-of-memory
    /// error surfaces, as `BorexError::Gpu`, never a panic. For tests.
    #[doc(hidden)]
    pub fn probe_allocation(&self, bytes: u64) -> Result<()> {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("probe"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.read::<f32>(&buffer, 1).map(|_| ())
    }

    /// Largest uniform buffer one binding may see.
    pub fn max_uniform_bytes(&self) -> u64 {
        self.limits.max_uniform_buffer_binding_size
    }

    pub(crate) fn pipeline(&self, kernel: Kernel) -> Arc<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(kernel)
            .or_insert_with(|| {
                let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&format!("{kernel:?}")),
                    source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
                });
                Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("{kernel:?}")),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                }))
            })
            .clone()
    }

    /// Whether a buffer of `bytes` fits the device; if not, the error is
    /// recorded (and reported at the next read) and the caller gets a
    /// placeholder, so an oversized request never reaches wgpu.
    fn fits(&self, label: &str, bytes: u64) -> bool {
        let limit = self.max_binding_bytes();
        if bytes > limit {
            record(
                &self.error,
                format!(
                    "buffer '{label}' needs {} MiB, more than the {} MiB one binding of {} holds",
                    bytes >> 20,
                    limit >> 20,
                    self.info.name
                ),
            );
            return false;
        }
        true
    }

    /// The first device error since the last call, as a `BorexError`.
    pub(crate) fn take_error(&self) -> Result<()> {
        match self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(BorexError::Gpu(e)),
            None => Ok(()),
        }
    }

    /// A read-only storage buffer holding `data`.
    pub(crate) fn storage<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        // wgpu rejects zero-sized bindings; keep one dummy element.
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let bytes = if self.fits(label, bytes.len() as u64) { bytes } else { &[] };
        let zero = [0u8; 4];
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: if bytes.is_empty() { &zero } else { bytes },
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    pub(crate) fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// A writable storage buffer of `len` elements of `T`.
    pub(crate) fn output<T>(&self, label: &str, len: usize) -> wgpu::Buffer {
        let size = (len as u64).saturating_mul(std::mem::size_of::<T>() as u64);
        let size = if self.fits(label, size) { size } else { 0 };
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Overwrite the start of `buffer` with `data`.
    pub(crate) fn write<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, data: &[T]) {
        if !data.is_empty() {
            self.queue.write_buffer(buffer, 0, bytemuck::cast_slice(data));
        }
    }

    /// A uniform buffer holding `data`.
    pub(crate) fn uniform_slice<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// Run `kernel` over `threads` invocations with `bindings` at 0, 1, 2, …
    pub(crate) fn dispatch(&self, kernel: Kernel, bindings: &[&wgpu::Buffer], threads: u64) {
        let mut c = self.commands();
        c.dispatch(kernel, bindings, threads, 1);
        c.submit();
    }

    /// Copy `len` elements of `buffer` back to the host.
    pub(crate) fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<T>> {
        let size = (len * std::mem::size_of::<T>()) as u64;
        let mut out = self.commands().read(&[(buffer, 0, size)])?;
        // The bytes come back unaligned for T: copy, not cast.
        Ok(bytemuck::pod_collect_to_vec(&out.pop().expect("one buffer read")))
    }

    /// An empty command recording: dispatches and copies go into one encoder
    /// and reach the queue in one submission.
    pub(crate) fn commands(&self) -> Commands<'_> {
        Commands { ctx: self, encoder: self.device.create_command_encoder(&Default::default()) }
    }

    /// Queue submissions and blocking readbacks since the context was made.
    pub fn counters(&self) -> GpuCounters {
        GpuCounters { submits: self.submits.load(Ordering::Relaxed), readbacks: self.readbacks.load(Ordering::Relaxed) }
    }
}

/// How often the host went to the device: each submission and each blocking
/// readback is a round of driver overhead (and a host–device sync for a readback).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuCounters {
    /// Command submissions.
    pub submits: u64,
    /// Blocking readbacks to the host.
    pub readbacks: u64,
}

impl std::ops::Sub for GpuCounters {
    type Output = GpuCounters;
    fn sub(self, o: GpuCounters) -> GpuCounters {
        GpuCounters { submits: self.submits - o.submits, readbacks: self.readbacks - o.readbacks }
    }
}

/// Work recorded into one command encoder, submitted once (see [`GpuContext::commands`]).
pub(crate) struct Commands<'a> {
    ctx: &'a GpuContext,
    encoder: wgpu::CommandEncoder,
}

impl Commands<'_> {
    /// `kernel` over `threads` invocations per slot, `slots` along the grid's z axis.
    pub fn dispatch(&mut self, kernel: Kernel, bindings: &[&wgpu::Buffer], threads: u64, slots: u32) {
        let (x, y) = workgroups(threads, self.ctx.limits.max_compute_workgroups_per_dimension);
        self.dispatch_groups(kernel, bindings, (x, y, slots));
    }

    /// `kernel` on an explicit (x, y, z) grid of workgroups.
    pub fn dispatch_groups(&mut self, kernel: Kernel, bindings: &[&wgpu::Buffer], (x, y, z): (u32, u32, u32)) {
        let ctx = self.ctx;
        let pipeline = ctx.pipeline(kernel);
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<_> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{kernel:?}")),
            layout: &layout,
            entries: &entries,
        });
        // One pass per dispatch: wgpu orders passes, so a kernel sees the previous one's writes.
        let mut pass = self.encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// Copy the first `bytes` of `src` to the start of `dst`.
    pub fn copy(&mut self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        self.encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
    }

    /// Submit the recorded passes (counted in [`GpuCounters::submits`]).
    pub fn submit(self) {
        self.ctx.submits.fetch_add(1, Ordering::Relaxed);
        self.ctx.queue.submit([self.encoder.finish()]);
    }

    /// Submit, then bring back `bytes` bytes from `offset` of every buffer
    /// through one staging buffer: one submission, one wait. Offsets and
    /// sizes are multiples of 4.
    pub fn read(mut self, buffers: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<Vec<u8>>> {
        let ctx = self.ctx;
        // Errors of the work before this read (a placeholder buffer among them) come out here.
        ctx.take_error()?;
        for (buffer, offset, size) in buffers {
            if offset + size > buffer.size() {
                return Err(BorexError::Gpu(format!(
                    "readback of {size} bytes at {offset} from a {}-byte buffer",
                    buffer.size()
                )));
            }
        }
        let starts: Vec<u64> =
            buffers.iter().scan(0u64, |at, (_, _, size)| Some(std::mem::replace(at, *at + size))).collect();
        let total: u64 = buffers.iter().map(|(_, _, s)| s).sum();
        if total == 0 {
            self.submit();
            return Ok(buffers.iter().map(|_| vec![]).collect());
        }
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        for ((buffer, offset, size), at) in buffers.iter().zip(&starts) {
            if *size > 0 {
                self.encoder.copy_buffer_to_buffer(buffer, *offset, &staging, *at, *size);
            }
        }
        self.submit();
        ctx.readbacks.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| BorexError::Gpu(format!("device lost while waiting: {e}")))?;
        rx.recv()
            .map_err(|_| BorexError::Gpu("readback callback dropped".into()))?
            .map_err(|e| BorexError::Gpu(format!("cannot map readback buffer: {e}")))?;
        let view =
            staging.get_mapped_range(..).map_err(|e| BorexError::Gpu(format!("cannot read mapped buffer: {e}")))?;
        let out = buffers
            .iter()
            .zip(&starts)
            .map(|((_, _, size), at)| view[*at as usize..(at + size) as usize].to_vec())
            .collect();
        drop(view);
        staging.unmap();
        ctx.take_error()?;
        Ok(out)
    }
}

/// Keep the first error until it is reported.
fn record(slot: &Mutex<Option<String>>, msg: String) {
    slot.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(msg);
}

/// Split `threads` into a 2-D grid of workgroups (one axis holds at most `max_dim`).
fn workgroups(threads: u64, max_dim: u32) -> (u32, u32) {
    let groups = threads.div_ceil(WORKGROUP as u64).max(1);
    let x = groups.min(max_dim as u64);
    let y = groups.div_ceil(x);
    (x as u32, y as u32)
}

#[cfg(test)]
mod tests {
    use super::workgroups;

    #[test]
    fn grid_covers_all_threads() {
        assert_eq!(workgroups(1, 65535), (1, 1));
        assert_eq!(workgroups(256 * 65535, 65535), (65535, 1));
        assert_eq!(workgroups(256 * 65535 + 1, 65535), (65535, 2));
    }
}
