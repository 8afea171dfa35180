//! Which Matrix messages are for the bot and which rooms it may be in: pure
//! decisions, kept apart from the Matrix client so they can be tested without
//! a server. What a message asks is read by [`crate::conversation`].

/// How the bot is addressed in a group room: its user id, its display name,
/// and any configured names.
#[derive(Debug, Clone)]
pub struct Names {
    pub user_id: String,
    /// Lower-case names the bot answers to ("policybot", "policy bot").
    pub names: Vec<String>,
}

impl Names {
    pub fn new(user_id: &str, display_name: Option<&str>, configured: &[String]) -> Names {
        let localpart = user_id.trim_start_matches('@').split(':').next().unwrap_or_default();
        let mut names: Vec<String> = [Some(localpart), display_name]
            .into_iter()
            .flatten()
            .chain(configured.iter().map(String::as_str))
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        // Longest first, so "policy bot" is stripped whole rather than "policy".
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        names.dedup();
        Names {
            user_id: user_id.to_owned(),
            names,
        }
    }

    /// Whether `body` (or its HTML) names the bot: its user id, a matrix.to
    /// pill, or one of its names as a whole word.
    pub fn mentioned_in(&self, body: &str, formatted: Option<&str>) -> bool {
        if body.contains(&self.user_id) || formatted.is_some_and(|f| f.contains(&self.user_id)) {
            return true;
        }
        let lower = body.to_lowercase();
        self.names.iter().any(|n| find_word(&lower, n).is_some())
    }

    /// The message with the bot's name taken off the front ("policybot: can
    /// I…", "@policybot can I…", "Policy Bot, can I…").
    pub fn strip_address<'a>(&self, body: &'a str) -> &'a str {
        let trimmed = body.trim_start();
        let lower = trimmed.to_lowercase();
        let candidates = std::iter::once(self.user_id.to_lowercase())
            .chain(self.names.iter().map(|n| format!("@{n}")))
            .chain(self.names.iter().cloned());
        for name in candidates {
            if lower.starts_with(&name) && lower.len() >= name.len() && trimmed.is_char_boundary(name.len()) {
                let rest = &trimmed[name.len()..];
                if rest.chars().next().is_none_or(|c| !c.is_alphanumeric()) {
                    return rest.trim_start_matches([':', ',', ' ', '-', '—']).trim();
                }
            }
        }
        body.trim()
    }
}

/// Where the bot may be: rooms listed by id, rooms on listed servers (the
/// room's own server, else the inviter's: newer room ids name no server);
/// with no lists, rooms on the bot's own server only.
#[derive(Debug, Clone)]
pub struct AllowList {
    pub rooms: Vec<String>,
    pub servers: Vec<String>,
    pub own_server: String,
}

impl AllowList {
    pub fn allows(&self, room: &str, room_server: Option<&str>, inviter_server: Option<&str>) -> bool {
        if self.rooms.iter().any(|r| r == room) {
            return true;
        }
        let Some(server) = room_server.or(inviter_server) else {
            return false;
        };
        if self.rooms.is_empty() && self.servers.is_empty() {
            return server == self.own_server;
        }
        self.servers.iter().any(|s| s == server)
    }
}

/// Byte offset of `word` in `text` as a whole word (both already lower-case).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word).map(|p| p + from) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new("@policybot:oakfield.example", Some("Policy Bot"), &[])
    }

    #[test]
    fn mentions_are_the_user_id_a_pill_or_a_name_as_a_word() {
        let n = names();
        assert!(n.mentioned_in("@policybot:oakfield.example can I…", None));
        assert!(n.mentioned_in(
            "Policy Bot: can I…",
            Some("<a href=\"https://matrix.to/#/@policybot:oakfield.example\">Policy Bot</a>: can I…")
        ));
        assert!(n.mentioned_in("hey policybot, can I use WhatsApp?", None));
        assert!(!n.mentioned_in("the policybots are coming", None));
        assert!(!n.mentioned_in("can I use WhatsApp on the trip?", None));
    }

    #[test]
    fn the_address_comes_off_the_front() {
        let n = names();
        assert_eq!(n.strip_address("policybot: can I use WhatsApp?"), "can I use WhatsApp?");
        assert_eq!(n.strip_address("Policy Bot, can I?"), "can I?");
        assert_eq!(n.strip_address("@policybot:oakfield.example can I?"), "can I?");
        assert_eq!(n.strip_address("can policybot tell me?"), "can policybot tell me?");
        assert_eq!(n.strip_address("policybots?"), "policybots?");
    }

    #[test]
    fn rooms_are_allowed_by_id_or_server_else_the_bots_own_server() {
        let own_only = AllowList {
            rooms: vec![],
            servers: vec![],
            own_server: "oakfield.example".into(),
        };
        assert!(own_only.allows("!a:oakfield.example", Some("oakfield.example"), None));
        assert!(!own_only.allows("!a:evil.example", Some("evil.example"), Some("oakfield.example")));
        assert!(own_only.allows("!v12room", None, Some("oakfield.example")));
        assert!(!own_only.allows("!v12room", None, None), "nothing to judge by: refused");
        let listed = AllowList {
            rooms: vec!["!staff:partner.example".into()],
            servers: vec!["trust.example".into()],
            own_server: "oakfield.example".into(),
        };
        assert!(listed.allows("!staff:partner.example", Some("partner.example"), None));
        assert!(listed.allows("!x:trust.example", Some("trust.example"), None));
        assert!(
            !listed.allows("!x:oakfield.example", Some("oakfield.example"), None),
            "with lists, only what they name"
        );
    }
}
