// Q4_0 weights, included by matmul.wgsl and embedding.wgsl (they declare `p.units`).
// ggml's 18-byte blocks (f16 scale d + 16 bytes; byte j holds element j in its low nibble
// and element j+16 in its high nibble; value (nibble - 8)·d) are repacked at upload into the
// scales, two f16 per u32, and the quants, one u32 (4 bytes) per unit. Unit k of a block
// (k = 0..3) holds elements 4k..4k+3 (low nibbles) and 16+4k..16+4k+3 (high nibbles).
@group(0) @binding(3) var<storage, read> q: array<u32>; // (rows, units) of 4 bytes
@group(0) @binding(4) var<storage, read> d: array<u32>; // (rows · blocks) f16 scales, 2 per word

const UNIT: u32 = 8u;
const UNIT_X4: u32 = 2u;

struct WUnit { scale: f32, lo: vec4<f32>, hi: vec4<f32> }

fn scale_of(block: u32) -> f32 {
  return unpack2x16float(d[block / 2u])[block % 2u];
}

fn nibbles(v: u32, shift: u32) -> vec4<f32> {
  let n = (vec4<u32>(v) >> vec4<u32>(shift, shift + 8u, shift + 16u, shift + 24u)) & vec4<u32>(15u);
  return vec4<f32>(n) - vec4<f32>(8.0);
}

fn load_unit(r: u32, u: u32) -> WUnit {
  let v = q[r * p.units + u];
  return WUnit(scale_of(r * (p.units / 4u) + u / 4u), nibbles(v, 0u), nibbles(v, 4u));
}

fn unit_x_offset(u: u32, k: u32) -> u32 {
  return (u / 4u) * 32u + (u % 4u) * 4u + k * 16u;
}

fn unit_dot(a: WUnit, xs: array<vec4<f32>, UNIT_X4>) -> vec4<f32> {
  return a.scale * (a.lo * xs[0] + a.hi * xs[1]);
}

fn load_elem(r: u32, j: u32) -> f32 {
  let k = j % 32u;              // element within the block
  let byte = k % 16u;           // byte within the block's 16 quant bytes
  let v = q[r * p.units + (j / 32u) * 4u + byte / 4u];
  let nib = (v >> ((byte % 4u) * 8u + select(0u, 4u, k >= 16u))) & 15u;
  return scale_of(r * (p.units / 4u) + j / 32u) * (f32(nib) - 8.0);
}
