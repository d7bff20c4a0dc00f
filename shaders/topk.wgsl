// Top-k of one row of logits, in the order the CPU sampler sorts them: larger value first,
// lower index first among equal values (so k = 1 is argmax with llama2.c's tie rule).
//   x (offset + len) f32; out (k) of (index, value bits).
// One workgroup; round r picks the best (value, index) that comes strictly after round
// r-1's pick in that order: a strided scan, then a shared-memory tree of log2 WG steps.
struct Params {
  len: u32,
  k: u32,
  offset: u32, // first logit of the row
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;                // (offset + len)
@group(0) @binding(2) var<storage, read_write> out: array<vec2<u32>>; // (k) of (index, bitcast value)

override WG: u32 = 256u; // a power of two
const NONE: u32 = 0xffffffffu;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

/** (va, ia) ranks before (vb, ib); NONE ranks last. */
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia == NONE) { return false; }
  if (ib == NONE) { return true; }
  return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var prev_v = 0.0;
  var prev_i = NONE; // nothing picked yet
  for (var r = 0u; r < p.k; r++) {
    var bv = 0.0;
    var bi = NONE;
    for (var i = lid; i < p.len; i += WG) {
      let v = x[p.offset + i];
      if ((prev_i == NONE || before(prev_v, prev_i, v, i)) && before(v, i, bv, bi)) {
        bv = v;
        bi = i;
      }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s && before(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
        best_v[lid] = best_v[lid + s];
        best_i[lid] = best_i[lid + s];
      }
      workgroupBarrier();
    }
    prev_v = best_v[0];
    prev_i = best_i[0];
    if (lid == 0u) { out[r] = vec2<u32>(prev_i, bitcast<u32>(prev_v)); }
    workgroupBarrier(); // everyone has read round r's pick before the next round writes
  }
}
