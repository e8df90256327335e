//! The wgpu path: WGSL kernels behind the same trait as their CPU twins.

/// A [`context::HostLayout`] of `$ty` with the listed fields (each checked by `offset_of!`).
macro_rules! host_layout {
    ($ty:ty, $shader:literal, $name:literal, [$($field:ident),* $(,)?]) => {
        $crate::compute::gpu::HostLayout {
            shader: $shader,
            wgsl_struct: $name,
            size: std::mem::size_of::<$ty>(),
            fields: vec![$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
        }
    };
}

mod context;
mod gp;
mod mask;
mod rise;

pub use context::GpuCounters;
use context::{BlurParams, MaskDims};
pub use context::{GpuContext, HostLayout, Kernel};
pub use gp::{GpuGpBatch, GpuGpSession};
pub use mask::GpuMaskStore;
pub use rise::GpuRiseSession;

/// Every host twin of a shader uniform or storage struct (tests/shader_layout.rs).
#[doc(hidden)]
pub fn host_layouts() -> Vec<HostLayout> {
    let mut all = context::host_layouts();
    all.extend(gp::host_layouts());
    all.extend(mask::host_layouts());
    all.extend(rise::host_layouts());
    all
}

use super::{
    check_masks, GpBatch, GpKernels, GpSession, ImageKernels, MapGrid, MaskStore, Masks, RiseParams, RiseSession,
    StoredBox,
};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use ndarray::{Array3, Array4, ArrayView3};
use std::sync::Arc;

/// The wgpu implementation of every kernel, on one shared context.
#[derive(Clone)]
pub struct GpuKernels {
    ctx: Arc<GpuContext>,
}

impl GpuKernels {
    /// Kernels on the context `ctx`.
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        Self { ctx }
    }

    /// The context the kernels run on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }
}

fn contiguous(a: &ArrayView3<f32>) -> Vec<f32> {
    a.as_standard_layout().iter().copied().collect()
}

impl ImageKernels for GpuKernels {
    fn rise_session(
        &self,
        image: ArrayView3<f32>,
        params: &RiseParams,
        accumulators: usize,
    ) -> Result<Box<dyn RiseSession>> {
        Ok(Box::new(GpuRiseSession::new(self.ctx.clone(), image, params, accumulators)?))
    }

    fn gaussian_blur(&self, image: ArrayView3<f32>, weights: &[f32]) -> Result<Array3<f32>> {
        if weights.len().is_multiple_of(2) {
            return Err(BorexError::invalid("blur kernel length must be odd"));
        }
        let (c, h, w) = image.dim();
        let ctx = &self.ctx;
        let params = ctx.uniform(
            "blur params",
            &BlurParams { c: c as u32, h: h as u32, w: w as u32, radius: (weights.len() / 2) as u32 },
        );
        let input = ctx.storage("blur input", &contiguous(&image));
        let k = ctx.storage("blur weights", weights);
        let out = ctx.output::<f32>("blur output", c * h * w);
        ctx.dispatch(Kernel::GaussianBlur, &[&params, &input, &k, &out], (c * h * w) as u64);
        let data = ctx.read::<f32>(&out, c * h * w)?;
        Ok(Array3::from_shape_vec((c, h, w), data).expect("shape matches"))
    }

    fn apply_masks(&self, image: ArrayView3<f32>, baseline: ArrayView3<f32>, masks: Masks) -> Result<Array4<f32>> {
        check_masks(&image, &baseline, &masks)?;
        let d = match masks {
            // Boxes: a store of one image and one substrate.
            Masks::Boxes(b) => {
                let boxes: Vec<StoredBox> = b.iter().map(|&mask| StoredBox { image: 0, substrate: 0, mask }).collect();
                return GpuMaskStore::new(self.ctx.clone(), &[image], &[baseline])?.apply(&boxes);
            }
            Masks::Dense(d) => d,
        };
        let (c, h, w) = image.dim();
        let n = d.dim().0;
        let per_mask = c * h * w;
        let ctx = &self.ctx;
        let img = ctx.storage("image", &contiguous(&image));
        let base = ctx.storage("baseline", &contiguous(&baseline));
        // Masks are processed in chunks whose output fits one storage binding.
        let chunk = ((ctx.max_binding_bytes() / (per_mask as u64 * 4)) as usize).clamp(1, n.max(1));
        let mut out = Vec::with_capacity(n * per_mask);
        for start in (0..n).step_by(chunk) {
            let m = chunk.min(n - start);
            let params = ctx.uniform("mask params", &MaskDims { n: m as u32, c: c as u32, h: h as u32, w: w as u32 });
            let slab = d.slice(ndarray::s![start..start + m, .., ..]);
            let data: Vec<f32> = slab.as_standard_layout().iter().copied().collect();
            let mask_buf = ctx.storage("masks", &data);
            let dst = ctx.output::<f32>("masked", m * per_mask);
            ctx.dispatch(Kernel::ApplyDenseMasks, &[&params, &img, &base, &mask_buf, &dst], (m * per_mask) as u64);
            out.extend(ctx.read::<f32>(&dst, m * per_mask)?);
        }
        Ok(Array4::from_shape_vec((n, c, h, w), out).expect("shape matches"))
    }

    fn mask_store(
        &self,
        images: &[ArrayView3<f32>],
        substrates: &[ArrayView3<f32>],
    ) -> Result<Option<Box<dyn MaskStore>>> {
        let Some(first) = images.first() else { return Ok(None) };
        if !GpuMaskStore::fits(&self.ctx, first.dim(), images.len(), substrates.len()) {
            return Ok(None);
        }
        Ok(Some(Box::new(GpuMaskStore::new(self.ctx.clone(), images, substrates)?)))
    }
}

impl GpKernels for GpuKernels {
    fn session(&self, grid: &CandidateGrid, prior: &[f32]) -> Result<Box<dyn GpSession>> {
        Ok(Box::new(GpuGpSession::new(self.ctx.clone(), grid, prior)?))
    }

    fn map_on_grid(&self, grid: &MapGrid, gp: &PosteriorInputs) -> Result<Vec<f32>> {
        gp::map_on_grid(&self.ctx, grid, gp)
    }

    fn batch_capacity(&self, grid: &CandidateGrid) -> usize {
        GpuGpBatch::capacity(&self.ctx, grid)
    }

    fn batch(&self, grid: &CandidateGrid, priors: &[&[f32]], rows: usize) -> Result<Box<dyn GpBatch>> {
        Ok(Box::new(GpuGpBatch::new(self.ctx.clone(), grid, priors)?.with_rows(rows)))
    }
}
