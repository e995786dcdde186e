//! Opus packets from `symphonia`'s Ogg and Matroska/WebM demuxers, decoded by the system
//! libopus (through the `opus` crate) at 48 kHz, its native rate.
//!
//! The encoder's pre-skip (312 frames at 48 kHz from libopus) is dropped once: the Ogg demuxer
//! trims it through the packets (and says so with the track's delay); elsewhere it is read from
//! the `OpusHead` in the codec's extra data.

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
    /// Pre-skip frames still to drop (when the demuxer does not trim them).
    skip: usize,
    pcm: Vec<f32>,
}

impl OpusTrack {
    /// Opens a decoder for mono or stereo Opus; `demuxer_trims` when the demuxer already
    /// trims the pre-skip through the packets.
    pub fn new(params: &AudioCodecParameters, demuxer_trims: bool) -> Result<Self, AudioError> {
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
        let skip = if demuxer_trims {
            0
        } else {
            params.extra_data.as_deref().and_then(pre_skip).unwrap_or(0)
        };
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
        let skip = self.skip.min(frames);
        self.skip -= skip;
        let trim_start = usize::try_from(packet.trim_start.get()).unwrap_or(usize::MAX);
        let trim_end = usize::try_from(packet.trim_end.get()).unwrap_or(usize::MAX);
        let end = frames.saturating_sub(trim_end);
        let start = skip.saturating_add(trim_start).min(end);
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
