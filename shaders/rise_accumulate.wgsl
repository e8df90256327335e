// RISE accumulation for one batch: for every pixel, Σ_k M_k into the mask sum
// and Σ_k w[k, j]·M_k into accumulator j (one per class of interest).
// CPU twin: compute::cpu::CpuRiseSession::accumulate.

struct Params {
    count: u32,
    j: u32,
    hw: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> masks: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;
@group(0) @binding(4) var<storage, read_write> mask_sum: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let px = gid.x + gid.y * nwg.x * 256u;
    if (px >= p.hw) {
        return;
    }
    var ms = mask_sum[px];
    for (var k = 0u; k < p.count; k++) {
        let m = masks[k * p.hw + px];
        ms += m;
        for (var j = 0u; j < p.j; j++) {
            acc[j * p.hw + px] += weights[k * p.j + j] * m;
        }
    }
    mask_sum[px] = ms;
}
