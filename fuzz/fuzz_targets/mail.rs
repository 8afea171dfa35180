//! A raw RFC 822 mail → mail-parser → what the email channel reads from it:
//! sender, thread, the trust and loop screen, the new text and the question
//! (commands or a question, read in its conversation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use policybot::conversation;
use policybot::email::{mail::Mail, screen, text};

fuzz_target!(|data: &[u8]| {
    let rules = screen::Rules {
        own_address: "policybot@oakfield.example".into(),
        trusted_authserv_id: Some("mail.oakfield.example".into()),
    };
    // The email channel reads only the headers of a mail too large to fetch.
    let header_end = data.windows(4).position(|w| w == b"\r\n\r\n").map_or(data.len(), |p| p + 4);
    if let Some(mail) = Mail::parse_headers(&data[..header_end], data.len()) {
        let _ = screen::screen(&mail, &rules);
    }
    let Some(mail) = Mail::parse(data) else {
        return;
    };
    let _ = mail.reference();
    let _ = mail.thread_root();
    let _ = screen::screen(&mail, &rules);
    let question = mail.question();
    let _ = text::bare_subject(&mail.subject);
    let _ = conversation::request(&question);
    let _ = conversation::in_context(&question, Some("Can I use WhatsApp with parents?"));
});
