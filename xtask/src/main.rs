//! Developer and CI tasks: `cargo xtask test | ci | bench`.
fn main() {}
