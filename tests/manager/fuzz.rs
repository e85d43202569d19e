//! The server's frame decoder and handshake fed random and mutated bytes: no
//! panic, no hang, no allocation beyond the frame limit (a frame announcing more is
//! refused from its header). A seeded xorshift drives it; the seed is printed on
//! failure. `MPROC_FUZZ_ITERS` raises the count (the long run used 1,000,000).

use mproc::manager::fuzz::{
    decode_request, decode_stream, sample_stream, serve_stream, server_handshake,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn iterations() -> usize {
    std::env::var("MPROC_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.truncate(i);
            }
            _ => {
                let n = rng.below(16);
                v.extend((0..n).map(|_| rng.next() as u8));
            }
        }
    }
    v
}

#[test]
fn the_frame_decoder_survives_random_and_mutated_input() {
    let seed_stream = sample_stream();
    let n = iterations();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut frames, mut requests, mut refused, mut served) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..n {
        let input = if i % 4 == 0 {
            let len = rng.below(512);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &seed_stream)
        };
        let piece = 1 + rng.below(64);
        let d = std::panic::catch_unwind(|| decode_stream(&input, piece, 1 << 16))
            .unwrap_or_else(|_| panic!("decoder panicked on input #{i}: {input:02x?}"));
        frames += d.frames;
        requests += d.requests;
        refused += d.refused as usize;
        // Requests straight from the bytes, unframed.
        let _ = decode_request(&input);
        // And what decodes, served (a fresh server each time, so that ids from the
        // seed stream name its objects).
        if i % 8 == 1 {
            served += std::panic::catch_unwind(|| serve_stream(&input, 1 << 16))
                .unwrap_or_else(|_| panic!("the server panicked on input #{i}: {input:02x?}"));
        }
    }
    // The mutated streams still carry many whole, valid requests: the test reaches
    // past the frame layer.
    assert!(
        requests > n,
        "only {requests} requests decoded in {n} inputs"
    );
    assert!(frames >= requests && refused > 0 && served > 0);
    println!(
        "{n} inputs: {frames} frames, {requests} requests decoded, {served} served, {refused} streams refused"
    );
}

#[test]
fn the_handshake_refuses_random_answers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..iterations() / 10 {
        let len = rng.below(120);
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(!server_handshake(&input, b"key"));
    }
}
