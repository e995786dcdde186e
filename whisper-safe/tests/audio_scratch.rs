use whisper_safe::audio::*;
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}
#[test]
fn scratch() {
    let mut m = std::collections::BTreeMap::<String, u32>::new();
    for len in [1000usize, 16 * 1024, 256 * 1024] {
        for seed in 1..=40 {
            let r = decode(random_bytes(len, seed), &DecodeOptions::default());
            let k = match r {
                Ok(a) => format!(
                    "OK {} {:.3}s skipped {}",
                    a.codec, a.duration_seconds, a.skipped_packets
                ),
                Err(e) => {
                    let s = format!("{e}");
                    s.chars().take(90).collect()
                }
            };
            *m.entry(k).or_default() += 1;
        }
    }
    for (k, v) in m {
        println!("{v:4} {k}");
    }
}
