//! What the decoder is not told by `symphonia`: a look at the container before it is handed
//! over. WAV headers are checked (and RF64/BW64 or streamed ones made readable), MP4 edit lists
//! give the encoder priming to trim, and input no reader accepts is named.

use std::io::{self, Read, Seek, SeekFrom};

use super::AudioError;

/// Bytes replaced in the input as it is read: `(offset, bytes)`.
pub(super) type Patches = Vec<(u64, Vec<u8>)>;

/// What the pre-scan learnt.
#[derive(Debug, Default)]
pub(super) struct Prescan {
    /// Header fields to rewrite before `symphonia` reads them.
    pub patches: Patches,
    /// The MP4 sound track, if the input is MP4.
    pub mp4: Option<Mp4Audio>,
}

/// The first sound track of an MP4 file.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Mp4Audio {
    /// Major brand of `ftyp` (`3gp4`, `M4A `, `isom`…).
    pub brand: [u8; 4],
    /// Sample entry type of the track (`mp4a`, `samr`, `ac-3`…).
    pub sample_entry: Option<[u8; 4]>,
    /// First non-empty edit: media time in track ticks, length in movie ticks (0: to the end).
    pub edit: Option<Edit>,
    /// Track (`mdhd`) and movie (`mvhd`) time scales.
    pub track_scale: u32,
    pub movie_scale: u32,
}

/// One edit list entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Edit {
    pub media_time: u64,
    pub duration: u64,
}

/// Source frames to drop at the start and to keep after that (`None`: all).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Trim {
    pub skip: u64,
    pub keep: Option<u64>,
}

impl Mp4Audio {
    /// The edit list as frames at `rate`, the track's sample rate.
    pub fn trim(&self, rate: u32) -> Trim {
        let Some(edit) = self.edit else {
            return Trim::default();
        };
        let scale = |ticks: u64, per_second: u32| {
            let frames = u128::from(ticks) * u128::from(rate) / u128::from(per_second.max(1));
            u64::try_from(frames).unwrap_or(u64::MAX)
        };
        Trim {
            skip: scale(edit.media_time, self.track_scale),
            keep: (edit.duration > 0).then(|| scale(edit.duration, self.movie_scale)),
        }
    }

    /// The container's name by its brand.
    pub fn container(&self) -> &'static str {
        match &self.brand {
            [b'3', b'g', b'p' | b'2', _] => "3GP",
            b"qt  " => "QuickTime (MOV)",
            b"M4A " | b"M4B " => "M4A",
            _ => "MP4",
        }
    }

    /// The codec of the sample entry, named.
    pub fn codec(&self) -> Option<&'static str> {
        Some(match &self.sample_entry? {
            b"samr" => "AMR-NB",
            b"sawb" => "AMR-WB",
            b"sqcp" | b"Qclp" => "QCELP",
            b"sevc" => "EVRC",
            b"ac-3" => "AC-3",
            b"ec-3" => "E-AC-3",
            b"ac-4" => "AC-4",
            b"dtsc" | b"dtsh" | b"dtsl" | b"dtse" => "DTS",
            b"mp4a" => "AAC",
            b"alac" => "ALAC",
            b"Opus" => "Opus",
            b"fLaC" => "FLAC",
            b"QDM2" | b"QDMC" => "QDesign",
            b"ima4" => "IMA ADPCM",
            _ => return None,
        })
    }
}

/// Reads what the decoder needs to know before `symphonia` opens `r`, whose length is `len`.
///
/// # Errors
/// [`AudioError::Corrupt`] for a WAV header whose format fields cannot describe audio.
pub(super) fn prescan<R: Read + Seek>(r: &mut R, len: u64) -> Result<Prescan, AudioError> {
    let mut head = [0u8; 12];
    r.rewind()?;
    let n = read_up_to(r, &mut head)?;
    let head = &head[..n];
    let mut prescan = Prescan::default();
    match (head.get(..4), head.get(4..8), head.get(8..12)) {
        (Some(b"RIFF" | b"RF64" | b"BW64"), _, Some(b"WAVE")) => {
            prescan.patches = wav_patches(r, len)?;
        }
        (_, Some(b"ftyp"), _) => {
            // A read error or an atom cut short ends the scan; decoding reports it.
            prescan.mp4 = mp4_audio(r, len).ok();
        }
        _ => {}
    }
    r.rewind()?;
    Ok(prescan)
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn corrupt_wav(detail: String) -> AudioError {
    AudioError::Corrupt {
        codec: "WAV".to_owned(),
        detail,
    }
}

/// Checks the `fmt ` chunk of a WAV (RIFF, RF64 or BW64) file and returns the header rewrites
/// that make it readable as RIFF: the RF64/BW64 marker becomes RIFF (the `ds64` chunk is then
/// skipped as unknown, its sizes stand in for the 32-bit ones), and a RIFF or data size of 0
/// left by a writer that streamed the file becomes "unknown" (read to the end).
fn wav_patches<R: Read + Seek>(r: &mut R, len: u64) -> Result<Patches, AudioError> {
    let mut patches = Patches::new();
    r.seek(SeekFrom::Start(0))?;
    let mut riff = [0u8; 12];
    r.read_exact(&mut riff)?;
    let is_64 = &riff[..4] != b"RIFF";
    if is_64 {
        patches.push((0, b"RIFF".to_vec()));
    }
    let riff_size = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);
    if riff_size == 0 || is_64 {
        patches.push((4, u32::MAX.to_le_bytes().to_vec()));
    }
    let mut data_size_64 = None;
    let mut format_seen = false;
    let mut pos = 12u64;
    while pos + 8 <= len {
        let mut header = [0u8; 8];
        r.seek(SeekFrom::Start(pos))?;
        if read_up_to(r, &mut header)? < 8 {
            break;
        }
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        match &header[..4] {
            b"ds64" if size >= 16 => {
                let mut sizes = [0u8; 16];
                r.read_exact(&mut sizes)?;
                let data = u64::from_le_bytes(sizes[8..16].try_into().unwrap_or_default());
                data_size_64 = Some(data);
            }
            b"fmt " => {
                check_wav_format(r, size)?;
                format_seen = true;
            }
            b"data" => {
                let available = len - (pos + 8);
                let declared = match size {
                    0 => available,
                    u32::MAX if is_64 => data_size_64.filter(|&s| s > 0).unwrap_or(available),
                    _ => break,
                };
                // u32::MAX means "unknown": read to the end.
                let field = u32::try_from(declared.min(available))
                    .ok()
                    .filter(|&s| s < u32::MAX)
                    .unwrap_or(u32::MAX);
                if field != size {
                    log::debug!("WAV data size {size} read as {field} ({available} bytes follow)");
                    patches.push((pos + 4, field.to_le_bytes().to_vec()));
                }
                break;
            }
            _ => {}
        }
        pos = pos.saturating_add(8 + u64::from(size) + u64::from(size % 2));
    }
    if !format_seen && pos + 8 <= len {
        return Err(corrupt_wav("the header has no `fmt ` chunk".to_owned()));
    }
    Ok(patches)
}

/// Refuses format fields that cannot describe audio: 0 channels, 0 samples per second, a
/// 0-byte block, 0 bits per sample for PCM.
fn check_wav_format<R: Read>(r: &mut R, size: u32) -> Result<(), AudioError> {
    if size < 16 {
        return Err(corrupt_wav(format!(
            "the `fmt ` chunk is {size} bytes, less than the 16 every format needs"
        )));
    }
    let mut fmt = [0u8; 16];
    r.read_exact(&mut fmt)?;
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let (tag, channels, rate) = (
        u16_at(0),
        u16_at(2),
        u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]),
    );
    let (block_align, bits) = (u16_at(12), u16_at(14));
    let problem = if channels == 0 {
        "0 channels"
    } else if rate == 0 {
        "0 samples per second"
    } else if block_align == 0 {
        "0 bytes per sample frame"
    } else if bits == 0 && matches!(tag, 1 | 3 | 0xFFFE) {
        "0 bits per sample"
    } else {
        return Ok(());
    };
    Err(corrupt_wav(format!("the header declares {problem}")))
}

/// One MP4 atom: type, start of its body, end.
struct Atom {
    kind: [u8; 4],
    body: u64,
    end: u64,
}

/// The atoms directly inside `start..end`.
fn atoms<R: Read + Seek>(r: &mut R, start: u64, end: u64) -> io::Result<Vec<Atom>> {
    let mut found = Vec::new();
    let mut pos = start;
    while pos.saturating_add(8) <= end {
        let mut header = [0u8; 16];
        r.seek(SeekFrom::Start(pos))?;
        r.read_exact(&mut header[..8])?;
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let (size, body) = match size {
            0 => (end - pos, pos + 8),
            1 => {
                r.read_exact(&mut header[8..16])?;
                let large = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
                (large, pos + 16)
            }
            n => (u64::from(n), pos + 8),
        };
        if size < body - pos {
            break;
        }
        let atom_end = pos.saturating_add(size).min(end);
        found.push(Atom {
            kind,
            body,
            end: atom_end,
        });
        pos = atom_end;
    }
    Ok(found)
}

fn child<'a>(atoms: &'a [Atom], kind: &[u8; 4]) -> Option<&'a Atom> {
    atoms.iter().find(|a| &a.kind == kind)
}

fn read_at<R: Read + Seek, const N: usize>(r: &mut R, at: u64) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// The time scale of an `mvhd` or `mdhd` atom.
fn time_scale<R: Read + Seek>(r: &mut R, atom: &Atom) -> io::Result<u32> {
    let [version] = read_at::<_, 1>(r, atom.body)?;
    let offset = if version == 1 { 20 } else { 12 };
    Ok(u32::from_be_bytes(read_at(r, atom.body + offset)?))
}

/// The first edit that maps media (empty edits, media time −1, only delay the start).
fn first_edit<R: Read + Seek>(r: &mut R, elst: &Atom) -> io::Result<Option<Edit>> {
    let [version, ..] = read_at::<_, 4>(r, elst.body)?;
    let count = u32::from_be_bytes(read_at(r, elst.body + 4)?);
    let entry = if version == 1 { 20 } else { 12 };
    for i in 0..u64::from(count.min(16)) {
        let at = elst.body + 8 + i * entry;
        let (duration, media_time) = if version == 1 {
            let e: [u8; 16] = read_at(r, at)?;
            let duration = u64::from_be_bytes(e[..8].try_into().unwrap_or_default());
            (
                duration,
                i64::from_be_bytes(e[8..].try_into().unwrap_or_default()),
            )
        } else {
            let e: [u8; 8] = read_at(r, at)?;
            let duration = u64::from(u32::from_be_bytes([e[0], e[1], e[2], e[3]]));
            (
                duration,
                i64::from(i32::from_be_bytes([e[4], e[5], e[6], e[7]])),
            )
        };
        if let Ok(media_time) = u64::try_from(media_time) {
            return Ok(Some(Edit {
                media_time,
                duration,
            }));
        }
    }
    Ok(None)
}

/// The brand, the first sound track's sample entry, edit list and time scales.
fn mp4_audio<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<Mp4Audio> {
    let top = atoms(r, 0, len)?;
    let mut audio = Mp4Audio::default();
    if let Some(ftyp) = child(&top, b"ftyp") {
        audio.brand = read_at(r, ftyp.body)?;
    }
    let Some(moov) = child(&top, b"moov") else {
        return Ok(audio);
    };
    let moov = atoms(r, moov.body, moov.end)?;
    if let Some(mvhd) = child(&moov, b"mvhd") {
        audio.movie_scale = time_scale(r, mvhd)?;
    }
    for trak in moov.iter().filter(|a| &a.kind == b"trak") {
        let trak = atoms(r, trak.body, trak.end)?;
        let Some(mdia) = child(&trak, b"mdia") else {
            continue;
        };
        let mdia = atoms(r, mdia.body, mdia.end)?;
        let Some(hdlr) = child(&mdia, b"hdlr") else {
            continue;
        };
        if &read_at::<_, 4>(r, hdlr.body + 8)? != b"soun" {
            continue;
        }
        if let Some(mdhd) = child(&mdia, b"mdhd") {
            audio.track_scale = time_scale(r, mdhd)?;
        }
        let stsd = child(&mdia, b"minf")
            .map(|minf| atoms(r, minf.body, minf.end))
            .transpose()?
            .and_then(|minf| child(&minf, b"stbl").map(|s| (s.body, s.end)))
            .map(|(body, end)| atoms(r, body, end))
            .transpose()?
            .and_then(|stbl| child(&stbl, b"stsd").map(|s| s.body));
        if let Some(stsd) = stsd {
            audio.sample_entry = Some(read_at(r, stsd + 12)?);
        }
        let elst = child(&trak, b"edts")
            .map(|edts| atoms(r, edts.body, edts.end))
            .transpose()?
            .and_then(|edts| child(&edts, b"elst").map(|e| Atom { ..*e }));
        if let Some(elst) = elst {
            audio.edit = first_edit(r, &elst)?;
        }
        break;
    }
    Ok(audio)
}

/// The container a reader failed on, by its signature.
pub(super) fn signature(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..).is_some_and(|h| h.starts_with(magic));
    Some(match head.get(..4)? {
        b"RIFF" | b"RF64" | b"BW64" if at(8, b"WAVE") => "WAV",
        b"FORM" => "AIFF",
        b"caff" => "CAF",
        b"fLaC" => "FLAC",
        b"OggS" => "Ogg",
        [0x1A, 0x45, 0xDF, 0xA3] => "Matroska/WebM",
        [b'I', b'D', b'3', _] => "MP3",
        _ if at(4, b"ftyp") => "MP4",
        _ => return None,
    })
}

/// Content no reader accepts, by the bytes it starts with (the first match wins).
const PREFIXES: &[(&[u8], &str)] = &[
    (b"#!AMR-WB", "AMR-WB audio (.awb)"),
    (b"#!AMR", "AMR-NB audio (.amr)"),
    (
        &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11],
        "a Windows Media file (ASF: WMA or WMV)",
    ),
    (b"MThd", "a MIDI file (notes, not recorded sound)"),
    (b"wvpk", "WavPack audio"),
    (b"MAC ", "Monkey's Audio (APE)"),
    (b"TTA1", "TTA audio"),
    (b".ra\xfd", "a RealMedia file"),
    (b".RMF", "a RealMedia file"),
    (&[0x0B, 0x77], "an AC-3 bitstream"),
    (&[0x7F, 0xFE, 0x80, 0x01], "a DTS bitstream"),
    (b"\x89PNG", "a PNG image"),
    (&[0xFF, 0xD8, 0xFF], "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (&[0x1F, 0x8B], "a gzip archive"),
];

/// Names content that no reader accepted, from its first bytes.
pub(super) fn describe(head: &[u8]) -> String {
    let starts = |magic: &[u8]| head.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| head.get(offset..).is_some_and(|h| h.starts_with(magic));
    // Containers that also carry audio we decode, told apart by a second mark.
    let named = if starts(b"RIFF") && at(8, b"AVI ") {
        "an AVI video file"
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        "a WebP image"
    } else if starts(b"OggS") && contains(head, b"Speex   ") {
        "Speex in Ogg"
    } else if starts(b"OggS") && contains(head, b"\x80theora") {
        "an Ogg video file (Theora) without an audio track"
    } else if let Some((_, name)) = PREFIXES.iter().find(|(magic, _)| starts(magic)) {
        name
    } else if is_text(head) {
        "a text file"
    } else {
        "data in no audio format recognised"
    };
    named.to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Valid UTF-8 (a character cut at the end allowed) without control characters but whitespace.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_named() {
        assert_eq!(describe(b"And so, my fellow Americans\n"), "a text file");
        assert_eq!(describe("naïve café\r\n".as_bytes()), "a text file");
        assert_eq!(describe(b"#!AMR\n\x3c"), "AMR-NB audio (.amr)");
        assert_eq!(describe(b"\x89PNG\r\n\x1a\n"), "a PNG image");
        assert_eq!(
            describe(&[0, 1, 2, 3, 0xFF]),
            "data in no audio format recognised"
        );
    }

    #[test]
    fn edit_list_becomes_frames() {
        let audio = Mp4Audio {
            edit: Some(Edit {
                media_time: 1024,
                duration: 11_000,
            }),
            track_scale: 16_000,
            movie_scale: 1_000,
            ..Mp4Audio::default()
        };
        assert_eq!(
            audio.trim(16_000),
            Trim {
                skip: 1024,
                keep: Some(176_000)
            }
        );
    }
}
