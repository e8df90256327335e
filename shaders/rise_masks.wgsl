// RISE masks start..start+count, count×H×W: a hashed binary s×s grid per mask,
// upsampled bilinearly (half-pixel centres, mirrored edges) and shifted by a
// hashed crop offset. CPU twin: compute::rise_masks::masks (same hash, same f32 steps).

struct Params {
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

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read_write> masks: array<f32>;

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn hash(mask: u32, slot: u32) -> u32 {
    return pcg(slot ^ pcg(mask ^ pcg(prm.seed_lo ^ pcg(prm.seed_hi))));
}

fn cell(mask: u32, gy: u32, gx: u32) -> f32 {
    let u = f32(hash(mask, gy * prm.s + gx) >> 8u) * 5.9604645e-8;
    return select(0.0, 1.0, u < prm.p);
}

fn mirror(i: i32) -> u32 {
    let n = i32(prm.s);
    if (i < 0) {
        return u32(-i);
    }
    if (i >= n) {
        return u32(2 * (n - 1) - i);
    }
    return u32(i);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let hw = prm.h * prm.w;
    if (i >= prm.count * hw) {
        return;
    }
    let m = prm.start + i / hw;
    let y = (i % hw) / prm.w;
    let x = i % prm.w;
    let dy = hash(m, prm.s * prm.s) % prm.cell_h;
    let dx = hash(m, prm.s * prm.s + 1u) % prm.cell_w;
    let sy = (f32(y + dy) + 0.5) * prm.ratio_h - 0.5;
    let sx = (f32(x + dx) + 0.5) * prm.ratio_w - 0.5;
    let fy = floor(sy);
    let fx = floor(sx);
    let y0 = mirror(i32(fy));
    let y1 = mirror(i32(fy) + 1);
    let x0 = mirror(i32(fx));
    let x1 = mirror(i32(fx) + 1);
    let ty = sy - fy;
    let tx = sx - fx;
    let top = cell(m, y0, x0) * (1.0 - tx) + cell(m, y0, x1) * tx;
    let bottom = cell(m, y1, x0) * (1.0 - tx) + cell(m, y1, x1) * tx;
    masks[i] = top * (1.0 - ty) + bottom * ty;
}
