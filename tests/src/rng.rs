//! A tiny deterministic pseudo-random generator (xorshift64*): test data must be the same for the
//! same seed on every machine, and needs no cryptographic quality.

#[derive(Debug, Clone)]
pub(crate) struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    pub(crate) fn new(seed: u64) -> Self {
        // xorshift never leaves 0; mix the seed so that small seeds (0, 1, 2) differ a lot
        let state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        Self { state: if state == 0 { 1 } else { state } }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough integer in `low..=high` (the modulo bias is irrelevant for test data).
    pub(crate) fn range(&mut self, low: u64, high: u64) -> u64 {
        debug_assert!(low <= high);
        low + self.next_u64() % (high - low + 1)
    }

    /// True with the given probability in percent.
    pub(crate) fn percent(&mut self, chance: u64) -> bool {
        self.range(0, 99) < chance
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let last = items.len().saturating_sub(1) as u64;
        items[self.range(0, last) as usize]
    }

    pub(crate) fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_different_seeds_differ() {
        let mut a = XorShift64::new(7);
        let mut b = XorShift64::new(7);
        let mut c = XorShift64::new(8);
        let seq_a: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let seq_b: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let seq_c: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(seq_a, seq_b);
        assert_ne!(seq_a, seq_c);
    }

    #[test]
    fn range_stays_within_bounds() {
        let mut rng = XorShift64::new(0);
        for _ in 0..1000 {
            let v = rng.range(3, 5);
            assert!((3..=5).contains(&v));
        }
    }
}
