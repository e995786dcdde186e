use whisper_safe::audio::*;
#[test]
fn scratch() {
    for (channels, mask) in [(40u16, 0u32), (33, 0), (33, u32::MAX), (6, 0), (2, 0x3)] {
    let mut h = Vec::new();
    let block_align = channels * 2;
    let data_len: u32 = u32::from(block_align) * 16000;
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(data_len + 60).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&40u32.to_le_bytes());
    h.extend_from_slice(&0xFFFEu16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&16000u32.to_le_bytes());
    h.extend_from_slice(&(16000 * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(&22u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(&mask.to_le_bytes());
    h.extend_from_slice(&[0x01, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h.extend(std::iter::repeat_n(0x10u8, data_len as usize));
    let r = decode(h, &DecodeOptions::default());
    println!("{channels} {mask:x}: {:?}", r.map(|a| (a.source_channels, a.duration_seconds, a.samples[100])));
    }
}
