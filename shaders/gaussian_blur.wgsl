// Separable Gaussian blur of a C×H×W tensor with zero padding (as the RISE
// reference's conv2d(padding=klen//2)), evaluated as the full 2-D sum
// Σ_i Σ_j k[i] k[j] x[c, y+i-r, x+j-r]. CPU twin: compute::cpu::gaussian_blur.

struct Params {
    c: u32,
    h: u32,
    w: u32,
    radius: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let hw = p.h * p.w;
    if (i >= p.c * hw) {
        return;
    }
    let c = i / hw;
    let y = i32((i % hw) / p.w);
    let x = i32(i % p.w);
    let r = i32(p.radius);
    var acc = 0.0;
    for (var di = -r; di <= r; di++) {
        let yy = y + di;
        if (yy < 0 || yy >= i32(p.h)) {
            continue;
        }
        var row = 0.0;
        for (var dj = -r; dj <= r; dj++) {
            let xx = x + dj;
            if (xx < 0 || xx >= i32(p.w)) {
                continue;
            }
            row += weights[u32(dj + r)] * image[c * hw + u32(yy) * p.w + u32(xx)];
        }
        acc += weights[u32(di + r)] * row;
    }
    out[i] = acc;
}
