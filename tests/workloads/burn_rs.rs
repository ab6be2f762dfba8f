//! CPU burner in Rust with a known call chain: main -> outer -> inner.
//! Built with `-C force-frame-pointers=yes`. Prints "ready" once running.

use std::hint::black_box;
use std::io::Write;

#[inline(never)]
fn inner(seed: u64) -> u64 {
    let mut x = seed;
    for i in 0..200_000u64 {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

#[inline(never)]
fn outer(seed: u64) -> u64 {
    let mut acc = seed;
    for _ in 0..10 {
        acc = inner(acc);
    }
    acc
}

fn main() {
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut x = 1;
    loop {
        x = black_box(outer(x));
    }
}
