//! The text fields of a transcription request (`server::request::parse`), then
//! the range checks and decoding parameters they lead to.
//!
//! Input: byte 0 picks the endpoint; the rest is UTF-8 (lossy) lines of
//! `name=value`, one form field each (a line without `=` is a field with an
//! empty value). Readable seeds and a dictionary of field names steer it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stt_server::server::form::Form;
use stt_server::server::formats::ResponseFormat;
use stt_server::server::request::{parse, Endpoint};
use whisper_safe::AudioContext;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let endpoint = [
        Endpoint::Transcriptions,
        Endpoint::Translations,
        Endpoint::Inference,
    ][usize::from(selector % 3)];
    let fields = String::from_utf8_lossy(text)
        .split('\n')
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let form = Form { file: None, fields };
    let Ok(request) = parse(endpoint, &form) else {
        return;
    };
    if request.stream {
        assert!(
            matches!(request.format, ResponseFormat::Json | ResponseFormat::Text),
            "{request:?}"
        );
    }
    if request.granularities.word && endpoint != Endpoint::Inference {
        assert_eq!(request.format, ResponseFormat::VerboseJson, "{request:?}");
    }
    match endpoint {
        Endpoint::Transcriptions => assert!(!request.options.translate, "{request:?}"),
        Endpoint::Translations => assert!(request.options.translate, "{request:?}"),
        Endpoint::Inference => {}
    }
    let options = &request.options;
    if options.check_ranges().is_ok() {
        if let Some(t) = options.temperature {
            assert!((0.0..=1.0).contains(&t), "{request:?}");
        }
        let _ = options.params(options.language.as_deref(), 1, AudioContext::Full);
    }
});
