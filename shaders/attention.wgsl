// Attention with grouped-query heads: query head h reads kv head h / (n_heads / n_kv_heads).
// Causal over the KV cache, decode (n = 1) and prefill (n > 1), when keys = 0:
//   q (n, n_heads, head_dim) for positions start..start+n-1; k, v (positions, kv_dim);
//   out (n, n_heads, head_dim). Position start+t attends to keys 0..start+t.
// Unmasked when keys > 0 (an encoder's bidirectional self-attention, a decoder's
// cross-attention over the encoder output): every query row attends to keys 0..keys-1 and
// start is unused. Only the last key a row sees differs; the loop is the same.
// One workgroup per (head, position). Keys go in blocks of WG: invocation i scores key
// b+i against the query (held in workgroup memory); then each invocation owns head
// dimensions d ≡ lid (mod WG) and folds the block into its running output with an online
// softmax (running max m, running sum l, rescaled when m grows). Two barriers per block.
// Specialization: override WG; preprocessor HEAD_DIM, DPT = ceil(HEAD_DIM / WG).
struct Params {
  n: u32,
  start: u32,
  n_heads: u32,
  group: u32,   // query heads per kv head
  head_dim: u32,
  kv_dim: u32,  // n_kv_heads · head_dim
  scale: f32,   // 1 / sqrt(head_dim)
  keys: u32,    // 0: causal; else every row attends to keys 0..keys-1
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;         // (n, n_heads, head_dim)
@group(0) @binding(2) var<storage, read> k: array<f32>;         // (positions, kv_dim)
@group(0) @binding(3) var<storage, read> v: array<f32>;         // (positions, kv_dim)
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (n, n_heads, head_dim)

override WG: u32 = 64u;
const HEAD_DIM: u32 = {{HEAD_DIM}}u;
const DPT: u32 = {{DPT}}u;       // head dimensions per invocation
const LOWEST: f32 = -3.4028234e38; // stands for -infinity (WGSL constants must be finite)

var<workgroup> qs: array<f32, HEAD_DIM>; // the query
var<workgroup> sc: array<f32, WG>;       // scores of the current block

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let t = wid.y;
  let qo = (t * p.n_heads + h) * p.head_dim;
  let kvo = (h / p.group) * p.head_dim;
  for (var d = lid; d < p.head_dim; d += WG) { qs[d] = q[qo + d]; }
  workgroupBarrier();
  let last = select(p.start + t, p.keys - 1u, p.keys > 0u); // the last key this row sees
  var m = LOWEST;
  var l = 0.0;
  var acc: array<f32, DPT>;
  for (var b = 0u; b <= last; b += WG) {
    let key = b + lid;
    var s = LOWEST;
    if (key <= last) {
      let ko = key * p.kv_dim + kvo;
      var dot = 0.0;
      for (var d = 0u; d < p.head_dim; d++) { dot += qs[d] * k[ko + d]; }
      s = dot * p.scale;
    }
    sc[lid] = s;
    workgroupBarrier();
    let count = min(WG, last + 1u - b);
    var mb = m;
    for (var i = 0u; i < count; i++) { mb = max(mb, sc[i]); }
    let alpha = select(exp(m - mb), 0.0, b == 0u);
    l *= alpha;
    for (var j = 0u; j < DPT; j++) { acc[j] *= alpha; }
    for (var i = 0u; i < count; i++) {
      let e = exp(sc[i] - mb);
      l += e;
      let vo = (b + i) * p.kv_dim + kvo;
      for (var j = 0u; j < DPT; j++) {
        let d = lid + j * WG;
        if (d < p.head_dim) { acc[j] += e * v[vo + d]; }
      }
    }
    m = mb;
    workgroupBarrier(); // sc is rewritten by the next block
  }
  for (var j = 0u; j < DPT; j++) {
    let d = lid + j * WG;
    if (d < p.head_dim) { out[qo + d] = acc[j] / l; }
  }
}
