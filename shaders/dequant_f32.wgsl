// F32 weights, included by matmul.wgsl and embedding.wgsl (they declare `p.units`).
// A unit is 4 consecutive elements; rows are zero-padded to a multiple of 4.
@group(0) @binding(3) var<storage, read> w: array<vec4<f32>>; // (rows, units)

const UNIT: u32 = 4u;    // elements per unit
const UNIT_X4: u32 = 1u; // x vec4s a unit multiplies

struct WUnit { v: vec4<f32> }

fn load_unit(r: u32, u: u32) -> WUnit {
  return WUnit(w[r * p.units + u]);
}

/** Element offset (in the x row) of the k-th x vec4 of unit u. */
fn unit_x_offset(u: u32, k: u32) -> u32 {
  return u * 4u;
}

fn unit_dot(a: WUnit, xs: array<vec4<f32>, UNIT_X4>) -> vec4<f32> {
  return a.v * xs[0];
}

fn load_elem(r: u32, j: u32) -> f32 {
  return w[r * p.units + j / 4u][j % 4u];
}
