//! RISE on the GPU: masks are generated on the device from the hash, applied
//! there, and the scores are folded into the sums there; only the masked batch
//! comes back (the model needs it) and the scores go up. Memory is bounded by
//! one batch whatever N is.

use super::context::{GpuContext, HostLayout, Kernel, MaskDims, RiseAccParams};
use crate::compute::rise_masks::{ratio, RiseParams};
use crate::compute::RiseSession;
use crate::error::{BorexError, Result};
use ndarray::{Array2, Array3, Array4, ArrayView3};
use std::sync::Arc;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MaskParams {
    count: u32,
    h: u32,
    w: u32,
    s: u32,
    cell_h: u32,
    cell_w: u32,
    start: u32,
    seed_lo: u32,
    seed_hi: u32,
    p: f32,
    ratio_h: f32,
    ratio_w: f32,
}

pub(super) fn host_layouts() -> Vec<HostLayout> {
    vec![host_layout!(
        MaskParams,
        "rise_masks.wgsl",
        "Params",
        [count, h, w, s, cell_h, cell_w, start, seed_lo, seed_hi, p, ratio_h, ratio_w]
    )]
}

/// RISE on the GPU: masks generated, applied and accumulated on the device, only the scores through the host.
pub struct GpuRiseSession {
    ctx: Arc<GpuContext>,
    params: RiseParams,
    dims: (usize, usize, usize),
    accumulators: usize,
    image: wgpu::Buffer,
    zero: wgpu::Buffer,
    /// The mask buffer and how many masks it can hold.
    masks: Option<(wgpu::Buffer, usize)>,
    /// The current batch: first mask index and count.
    batch: Option<(usize, usize)>,
    /// Most masks one dispatch handles (its masked images must fit one binding).
    max_chunk: usize,
    acc: wgpu::Buffer,
    mask_sum: wgpu::Buffer,
}

impl GpuRiseSession {
    /// Upload `image` and prepare `accumulators` weighted sums for the masks of `params`.
    pub fn new(ctx: Arc<GpuContext>, image: ArrayView3<f32>, params: &RiseParams, accumulators: usize) -> Result<Self> {
        params.validate()?;
        let (c, h, w) = image.dim();
        let data: Vec<f32> = image.as_standard_layout().iter().copied().collect();
        let acc = ctx.output::<f32>("rise accumulators", accumulators.max(1) * h * w);
        let mask_sum = ctx.output::<f32>("rise mask sum", h * w);
        ctx.write(&acc, &vec![0.0f32; accumulators.max(1) * h * w]);
        ctx.write(&mask_sum, &vec![0.0f32; h * w]);
        let max_chunk = ((ctx.max_binding_bytes() / (c * h * w * 4).max(1) as u64) as usize).max(1);
        Ok(Self {
            image: ctx.storage("image", &data),
            zero: ctx.storage("zero baseline", &vec![0.0f32; c * h * w]),
            ctx,
            params: *params,
            dims: (c, h, w),
            accumulators,
            masks: None,
            batch: None,
            max_chunk,
            acc,
            mask_sum,
        })
    }

    /// Split batches into dispatches of at most `n` masks (the default fills
    /// one storage binding; smaller values test the chunked path).
    pub fn set_max_chunk(&mut self, n: usize) {
        self.max_chunk = n.max(1);
    }

    fn current_batch(&self) -> Result<(usize, usize)> {
        self.batch.ok_or_else(|| BorexError::invalid("RISE session: no batch generated yet"))
    }

    /// The chunks of the current batch: (offset in the batch, count).
    fn chunks(&self, count: usize) -> impl Iterator<Item = (usize, usize)> {
        let step = self.max_chunk;
        (0..count).step_by(step).map(move |k| (k, step.min(count - k)))
    }

    /// Generate masks `start..start+count` into the mask buffer.
    fn generate(&mut self, start: usize, count: usize) -> Result<()> {
        let (_, h, w) = self.dims;
        let s = self.params.s;
        let (cell_h, cell_w) = (h.div_ceil(s), w.div_ceil(s));
        let params = self.ctx.uniform(
            "rise mask params",
            &MaskParams {
                count: count as u32,
                h: h as u32,
                w: w as u32,
                s: s as u32,
                cell_h: cell_h as u32,
                cell_w: cell_w as u32,
                start: start as u32,
                seed_lo: self.params.seed as u32,
                seed_hi: (self.params.seed >> 32) as u32,
                p: self.params.p,
                ratio_h: ratio(s, (s + 1) * cell_h),
                ratio_w: ratio(s, (s + 1) * cell_w),
            },
        );
        // Reuse the mask buffer while it is large enough.
        if self.masks.as_ref().is_none_or(|(_, cap)| *cap < count) {
            self.masks = Some((self.ctx.output::<f32>("rise masks", count * h * w), count));
        }
        let masks = &self.masks.as_ref().expect("just set").0;
        self.ctx.dispatch(Kernel::RiseMasks, &[&params, masks], (count * h * w) as u64);
        Ok(())
    }

    /// Bring the masks of chunk `(k, m)` of the current batch into the mask
    /// buffer: already there when the batch is one chunk, else regenerated
    /// (masks are a pure function of their index).
    fn ensure_chunk(&mut self, k: usize, m: usize) -> Result<()> {
        let (start, count) = self.current_batch()?;
        if count > self.max_chunk {
            self.generate(start + k, m)?;
        }
        Ok(())
    }
}

impl RiseSession for GpuRiseSession {
    fn masked(&mut self, start: usize, count: usize) -> Result<Array4<f32>> {
        let (c, h, w) = self.dims;
        let mut data = Vec::with_capacity(count * c * h * w);
        let chunks: Vec<_> = self.chunks(count).collect();
        for (k, m) in chunks {
            self.generate(start + k, m)?;
            let ctx = &self.ctx;
            let masks = &self.masks.as_ref().expect("generated").0;
            let dims = ctx.uniform("mask params", &MaskDims { n: m as u32, c: c as u32, h: h as u32, w: w as u32 });
            let out = ctx.output::<f32>("masked", m * c * h * w);
            ctx.dispatch(
                Kernel::ApplyDenseMasks,
                &[&dims, &self.image, &self.zero, masks, &out],
                (m * c * h * w) as u64,
            );
            data.extend(ctx.read::<f32>(&out, m * c * h * w)?);
        }
        self.batch = Some((start, count));
        Ok(Array4::from_shape_vec((count, c, h, w), data).expect("shape"))
    }

    fn accumulate(&mut self, weights: &[f32]) -> Result<()> {
        let (_, h, w) = self.dims;
        let (_, count) = self.current_batch()?;
        let j = self.accumulators;
        if weights.len() != count * j {
            return Err(BorexError::invalid("RISE weights do not match the batch"));
        }
        let chunks: Vec<_> = self.chunks(count).collect();
        for (k, m) in chunks {
            self.ensure_chunk(k, m)?;
            let masks = &self.masks.as_ref().expect("generated").0;
            let params = self.ctx.uniform(
                "rise acc params",
                &RiseAccParams { count: m as u32, j: j as u32, hw: (h * w) as u32, _pad: 0 },
            );
            let wbuf = self.ctx.storage("rise weights", &weights[k * j..(k + m) * j]);
            self.ctx.dispatch(
                Kernel::RiseAccumulate,
                &[&params, masks, &wbuf, &self.acc, &self.mask_sum],
                (h * w) as u64,
            );
        }
        Ok(())
    }

    fn last_masks(&mut self) -> Result<Array3<f32>> {
        let (_, h, w) = self.dims;
        let (_, count) = self.current_batch()?;
        let mut data = Vec::with_capacity(count * h * w);
        let chunks: Vec<_> = self.chunks(count).collect();
        for (k, m) in chunks {
            self.ensure_chunk(k, m)?;
            data.extend(self.ctx.read::<f32>(&self.masks.as_ref().expect("generated").0, m * h * w)?);
        }
        Ok(Array3::from_shape_vec((count, h, w), data).expect("shape"))
    }

    fn finish(&mut self) -> Result<(Vec<Array2<f32>>, Array2<f32>)> {
        let (_, h, w) = self.dims;
        let acc = self.ctx.read::<f32>(&self.acc, self.accumulators * h * w)?;
        let sums = acc.chunks(h * w).map(|c| Array2::from_shape_vec((h, w), c.to_vec()).expect("shape")).collect();
        let ms = self.ctx.read::<f32>(&self.mask_sum, h * w)?;
        Ok((sums, Array2::from_shape_vec((h, w), ms).expect("shape")))
    }
}
