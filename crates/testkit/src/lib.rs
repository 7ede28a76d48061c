//! Helpers for the seeded mutation batteries of the readers and parsers (a dev-dependency only).
//! It depends on nothing, so the lowest crate (scan) can use it too.
//!
//! Environment: `BRAINSSL_MUTATION_CASES=N` and `BRAINSSL_MUTATION_SEED=S` run a longer battery;
//! `BRAINSSL_MUTATION_DUMP=DIR` keeps every mutated input under DIR/KIND for `scripts/battery.sh`,
//! which runs the CLI on each under a time and memory limit.

use std::path::Path;

/// xorshift64*: each battery is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform below `n` (at least 1).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Cases (`default` unless BRAINSSL_MUTATION_CASES) and seed (BRAINSSL_MUTATION_SEED, else 1).
pub fn battery_size(default: usize) -> (usize, u64) {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    (
        var("BRAINSSL_MUTATION_CASES").map_or(default, |n| n as usize),
        var("BRAINSSL_MUTATION_SEED").unwrap_or(1),
    )
}

/// Keeps a mutated input as DIR/KIND/NAME when BRAINSSL_MUTATION_DUMP=DIR is set.
pub fn keep(kind: &str, name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("BRAINSSL_MUTATION_DUMP") {
        let d = Path::new(&dir).join(kind);
        std::fs::create_dir_all(&d).expect("create the dump folder");
        std::fs::write(d.join(name), bytes).expect("write a dumped case");
    }
}

/// This process's peak resident memory (Linux VmHWM) in MiB.
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb / 1024)
}

/// A binary file mutated `1 + below(max_rounds)` times, each time by one of `ops` (at least 4)
/// kinds drawn uniformly: a random byte anywhere (kind 0), `field` (kinds 1 to `ops - 3`: an
/// extreme value where the format keeps its numbers), truncation (`ops - 2`), or up to `max_junk`
/// random bytes appended (`ops - 1`).
pub fn mutate_bytes(
    base: &[u8],
    rng: &mut Rng,
    max_rounds: usize,
    ops: usize,
    max_junk: usize,
    mut field: impl FnMut(&mut Vec<u8>, &mut Rng),
) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(max_rounds) {
        match rng.below(ops) {
            0 => {
                let k = rng.below(b.len());
                b[k] = rng.next_u64() as u8;
            }
            k if k == ops - 2 => {
                let n = rng.below(b.len());
                b.truncate(n);
            }
            k if k == ops - 1 => {
                for _ in 0..rng.below(max_junk) {
                    b.push(rng.next_u64() as u8);
                }
            }
            _ => field(&mut b, rng),
        }
        if b.is_empty() {
            break;
        }
    }
    b
}

/// Text that breaks naive CSV and number handling.
const PIECES: [&str; 20] = [
    ",",
    "\"",
    "\n",
    "\r\n",
    "-",
    "e",
    "9",
    "0",
    ".",
    "nan",
    "inf",
    "-inf",
    "1e300",
    "-1",
    "18446744073709551616",
    "\u{0}",
    "é",
    " ",
    ",,,",
    "\"\"\"",
];

/// A CSV text mutated 1-4 times: a hostile piece inserted, a run deleted, or a line repeated.
pub fn mutate_text(base: &str, rng: &mut Rng) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(4) {
            0 | 1 => {
                let piece: Vec<char> = PIECES[rng.below(PIECES.len())].chars().collect();
                s.splice(at..at, piece);
            }
            2 => {
                let end = (at + rng.below(12)).min(s.len());
                s.drain(at..end);
            }
            _ => {
                let line: Vec<char> = base
                    .lines()
                    .nth(rng.below(base.lines().count()))
                    .unwrap_or("")
                    .chars()
                    .collect();
                s.splice(at..at, line.into_iter().chain(['\n']));
            }
        }
    }
    s.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_seeded_and_spreads() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_u64()));
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[a.below(4)] += 1;
        }
        assert!(counts.iter().all(|&c| (850..1150).contains(&c)), "{counts:?}");
        let m = mutate_text("a,b\n1,2\n", &mut a);
        assert_ne!(m, "a,b\n1,2\n");
    }
}
