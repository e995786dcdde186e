//! Opus packets from `symphonia`'s Ogg and Matroska/WebM demuxers, decoded by the system
//! libopus (through the `opus` crate) at 48 kHz, its native rate.
//!
//! The encoder's pre-skip (312 frames at 48 kHz from libopus) is dropped at the start: the
//! track's delay where the demuxer reads it (Ogg), else the `OpusHead` in the codec's extra data
//! (Matroska/WebM). A demuxer's own start trim counts towards it, so nothing is dropped twice;
//! MP4 states the pre-skip in its edit list instead, applied with the other MP4 edits.

use symphonia::core::codecs::audio::AudioCodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::packet::Packet;

use super::AudioError;

/// libopus decodes at 48 kHz here, whatever the rate the encoder was given.
pub(super) const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES_PER_PACKET: usize = 5_760;

/// An Opus track's decoder.
pub(super) struct OpusTrack {
    decoder: opus::Decoder,
    channels: usize,
    /// Pre-skip frames still to drop.
    skip: usize,
    pcm: Vec<f32>,
}

impl OpusTrack {
    /// Opens a decoder for mono or stereo Opus; `delay` is the pre-skip the demuxer read.
    pub fn new(params: &AudioCodecParameters, delay: Option<u32>) -> Result<Self, AudioError> {
        let count = params.channels.as_ref().map_or(0, |c| c.count());
        let channels = match count {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            n => {
                return Err(AudioError::UnsupportedFormat {
                    detail: format!(
                        "Opus with {n} channels (only mono and stereo Opus is decoded)"
                    ),
                })
            }
        };
        let decoder = opus::Decoder::new(OPUS_RATE, channels).map_err(|e| AudioError::Corrupt {
            codec: "Opus".to_owned(),
            detail: format!("libopus refused the stream: {e}"),
        })?;
        let skip = delay
            .and_then(|d| usize::try_from(d).ok())
            .or_else(|| params.extra_data.as_deref().and_then(pre_skip))
            .unwrap_or(0);
        Ok(Self {
            decoder,
            channels: count,
            skip,
            pcm: vec![0.0; MAX_FRAMES_PER_PACKET * count],
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one packet to interleaved samples in `out`, less the frames to trim.
    pub fn decode(&mut self, packet: &Packet, out: &mut Vec<f32>) -> Result<(), SymphoniaError> {
        let frames = self
            .decoder
            .decode_float(&packet.data, &mut self.pcm, false)
            .map_err(|e| {
                log::debug!("libopus rejected a packet: {e}");
                SymphoniaError::DecodeError("libopus rejected the packet")
            })?;
        let trim_start = usize::try_from(packet.trim_start.get()).unwrap_or(usize::MAX);
        let trim_end = usize::try_from(packet.trim_end.get()).unwrap_or(usize::MAX);
        let start = self.skip.max(trim_start).min(frames);
        self.skip -= self.skip.min(start);
        let end = frames.saturating_sub(trim_end).max(start);
        out.clear();
        out.extend_from_slice(&self.pcm[start * self.channels..end * self.channels]);
        Ok(())
    }
}

/// The pre-skip of an `OpusHead` header (RFC 7845 §5.1), in 48 kHz frames.
fn pre_skip(head: &[u8]) -> Option<usize> {
    match head {
        [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', _, _, low, high, ..] => {
            Some(usize::from(u16::from_le_bytes([*low, *high])))
        }
        _ => None,
    }
}
