//! Box masking on the device: images and substrates uploaded once, boxes per
//! call, every box of a call in one submission and one readback.

use super::context::{GpuContext, HostLayout, Kernel, MaskDims};
use crate::compute::{Keep, MaskStore, StoredBox};
use crate::error::{BorexError, Result};
use ndarray::{Array4, ArrayView3};
use std::sync::Arc;

/// One entry of `apply_box_masks.wgsl`'s box table.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GpuBox {
    r0: u32,
    r1: u32,
    c0: u32,
    c1: u32,
    keep_inside: u32,
    src: u32,
    sub: u32,
    _pad: u32,
}

pub(super) fn host_layouts() -> Vec<HostLayout> {
    vec![host_layout!(GpuBox, "apply_box_masks.wgsl", "BoxMask", [r0, r1, c0, c1, keep_inside, src, sub, _pad])]
}

/// Images and substrates on the device (see [`MaskStore`]).
pub struct GpuMaskStore {
    ctx: Arc<GpuContext>,
    dims: (usize, usize, usize),
    images: wgpu::Buffer,
    substrates: wgpu::Buffer,
    counts: (usize, usize),
}

/// All tensors of one C×H×W shape, back to back.
fn stack(what: &str, dims: (usize, usize, usize), tensors: &[ArrayView3<f32>]) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(tensors.len() * dims.0 * dims.1 * dims.2);
    for t in tensors {
        if t.dim() != dims {
            return Err(BorexError::invalid(format!("{what} shape {:?} differs from image shape {dims:?}", t.dim())));
        }
        out.extend(t.iter().copied());
    }
    Ok(out)
}

impl GpuMaskStore {
    /// Whether the images and substrates each fit one storage binding.
    pub fn fits(ctx: &GpuContext, dims: (usize, usize, usize), images: usize, substrates: usize) -> bool {
        let bytes = (dims.0 * dims.1 * dims.2 * 4) as u64;
        bytes * images.max(substrates) as u64 <= ctx.max_binding_bytes()
    }

    /// Upload the images and substrates once, for the life of a lockstep group.
    pub fn new(ctx: Arc<GpuContext>, images: &[ArrayView3<f32>], substrates: &[ArrayView3<f32>]) -> Result<Self> {
        let dims = images.first().ok_or_else(|| BorexError::invalid("a mask store needs an image"))?.dim();
        let image_data = stack("image", dims, images)?;
        let substrate_data = stack("baseline", dims, substrates)?;
        Ok(Self {
            images: ctx.storage("mask images", &image_data),
            substrates: ctx.storage("mask substrates", &substrate_data),
            ctx,
            dims,
            counts: (images.len(), substrates.len()),
        })
    }
}

impl MaskStore for GpuMaskStore {
    fn apply(&self, boxes: &[StoredBox]) -> Result<Array4<f32>> {
        let (c, h, w) = self.dims;
        let per_mask = c * h * w;
        let n = boxes.len();
        let mut table = Vec::with_capacity(n);
        for b in boxes {
            if b.image >= self.counts.0 || b.substrate >= self.counts.1 {
                return Err(BorexError::invalid(format!(
                    "box names image {} and substrate {} of a store with {} and {}",
                    b.image, b.substrate, self.counts.0, self.counts.1
                )));
            }
            let m = b.mask;
            table.push(GpuBox {
                r0: m.r0,
                r1: m.r1,
                c0: m.c0,
                c1: m.c1,
                keep_inside: (m.keep == Keep::Inside) as u32,
                src: b.image as u32,
                sub: b.substrate as u32,
                _pad: 0,
            });
        }
        if n == 0 {
            return Ok(Array4::zeros((0, c, h, w)));
        }
        let ctx = &self.ctx;
        // Chunks whose output fits one storage binding, all in one
        // submission and brought back by one readback.
        let chunk = ((ctx.max_binding_bytes() / (per_mask as u64 * 4)) as usize).clamp(1, n);
        let mut commands = ctx.commands();
        let mut outputs = vec![];
        for part in table.chunks(chunk) {
            let m = part.len();
            let params = ctx.uniform("mask params", &MaskDims { n: m as u32, c: c as u32, h: h as u32, w: w as u32 });
            let table = ctx.storage("boxes", part);
            let dst = ctx.output::<f32>("masked", m * per_mask);
            commands.dispatch(
                Kernel::ApplyBoxMasks,
                &[&params, &self.images, &self.substrates, &table, &dst],
                (m * per_mask) as u64,
                1,
            );
            outputs.push((dst, (m * per_mask * 4) as u64));
        }
        let reads: Vec<_> = outputs.iter().map(|(b, size)| (b, 0, *size)).collect();
        let mut out = Vec::with_capacity(n * per_mask);
        for bytes in commands.read(&reads)? {
            out.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes));
        }
        Ok(Array4::from_shape_vec((n, c, h, w), out).expect("shape matches"))
    }
}
