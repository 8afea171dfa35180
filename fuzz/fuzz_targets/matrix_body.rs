//! A Matrix message's content (JSON), or its `body` and `formatted_body`, →
//! what the Matrix channel reads from it: the text typed (reply fallbacks and
//! edits), is the bot addressed, the text without its name, an
//! acknowledgement, a command or a question read in its conversation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policybot::matrix::message::question_text;
use policybot::matrix::routing::Names;
use policybot::{conversation, nudge};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A whole event content as JSON (rich replies, edits, formatted bodies),
    // read as the channel reads it.
    let _ = question_text(&text);
    // body ⏎ NUL ⏎ formatted_body, as two fields of one event.
    let (body, formatted) = match text.split_once('\0') {
        Some((b, f)) => (b, Some(f)),
        None => (text.as_ref(), None),
    };
    let names = Names::new(
        "@policybot:oakfield.example",
        Some("Policy Bot"),
        &["policy bot".to_owned(), "pb".to_owned()],
    );
    let _ = names.mentioned_in(body, formatted);
    let stripped = names.strip_address(body);
    let _ = nudge::is_acknowledgement(stripped);
    let _ = conversation::request(stripped);
    let _ = conversation::in_context(stripped, Some("Can I use WhatsApp with parents?"));
});
