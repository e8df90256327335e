// Parallel argmax: each workgroup reduces a grid-strided share of the input to
// one (value, index) pair; run again on the partials to finish. Larger value
// wins, ties go to the smaller index. CPU twin: compute::cpu (first_max).
// Row y of the workgroup grid reduces its own segment of `len` values (one BO
// loop of a lockstep batch): segment `segs[y]` of the input on the first pass
// (`mapped` = 1), segment y on the second; its partials go to row y's block of
// the output. Indices are positions within the segment.

struct Params {
    len: u32,
    // 1: indices are positions in vals_in (first pass); 0: read them from idx_in.
    identity: u32,
    // 1: row y reads segment segs[y]; 0: segment y.
    mapped: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> vals_in: array<f32>;
@group(0) @binding(2) var<storage, read> idx_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> vals_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> idx_out: array<u32>;
@group(0) @binding(5) var<storage, read> segs: array<u32>;

var<workgroup> sv: array<f32, 256>;
var<workgroup> si: array<u32, 256>;

fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    var bv = -3.4028235e38;
    var bi = 0xffffffffu;
    let stride = nwg.x * 256u;
    let base = select(wid.y, segs[wid.y], p.mapped == 1u) * p.len;
    for (var i = wid.x * 256u + lid.x; i < p.len; i += stride) {
        let v = vals_in[base + i];
        let idx = select(idx_in[base + i], i, p.identity == 1u);
        if (better(v, idx, bv, bi)) {
            bv = v;
            bi = idx;
        }
    }
    sv[lid.x] = bv;
    si[lid.x] = bi;
    workgroupBarrier();
    for (var off = 128u; off > 0u; off >>= 1u) {
        if (lid.x < off && better(sv[lid.x + off], si[lid.x + off], sv[lid.x], si[lid.x])) {
            sv[lid.x] = sv[lid.x + off];
            si[lid.x] = si[lid.x + off];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        vals_out[wid.y * nwg.x + wid.x] = sv[0];
        idx_out[wid.y * nwg.x + wid.x] = si[0];
    }
}
