//! Pub/Sub: channels and patterns, who listens to what, and who gets a published message.
//!
//! Pure bookkeeping, per server process: the shell keeps one [`PubSub`] per node
//! incarnation and pushes the messages [`PubSub::publish`] returns down each subscriber's
//! connection. Like Redis, delivery is at most once and nothing is stored: a subscriber
//! that is disconnected, partitioned away or not yet subscribed misses the message, and a
//! restart forgets every subscription. That loss is the point of modelling it.
//!
//! Differences from Redis, on purpose: PUBLISH reaches the subscribers of the node it is
//! sent to only (Redis also propagates it to replicas), and PUBLISH inside MULTI or a
//! script is refused rather than queued.

use std::collections::BTreeMap;

use super::command::Reply;
use super::state::ClientId;

/// Who listens to what, in subscription order (Redis delivers in that order).
#[derive(Debug, Default)]
pub struct PubSub {
    channels: BTreeMap<String, Vec<ClientId>>,
    patterns: BTreeMap<String, Vec<ClientId>>,
    clients: BTreeMap<ClientId, Subscriptions>,
}

/// One client's subscriptions, each list in the order it subscribed.
#[derive(Debug, Default)]
struct Subscriptions {
    channels: Vec<String>,
    patterns: Vec<String>,
}

impl Subscriptions {
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// Which registry a (un)subscription is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
        }
    }
}

impl PubSub {
    /// The number of channels and patterns `client` listens to (its subscribed mode).
    pub fn count(&self, client: ClientId) -> usize {
        self.clients.get(&client).map_or(0, Subscriptions::count)
    }

    fn registry(&mut self, kind: Kind) -> &mut BTreeMap<String, Vec<ClientId>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    /// SUBSCRIBE / PSUBSCRIBE: one confirmation per name, with the running count.
    pub fn subscribe(&mut self, client: ClientId, kind: Kind, names: &[String]) -> Vec<Reply> {
        let (verb, _) = kind.verbs();
        names
            .iter()
            .map(|name| {
                let subs = self.clients.entry(client).or_default();
                let list = match kind {
                    Kind::Channel => &mut subs.channels,
                    Kind::Pattern => &mut subs.patterns,
                };
                if !list.contains(name) {
                    list.push(name.clone());
                    self.registry(kind)
                        .entry(name.clone())
                        .or_default()
                        .push(client);
                }
                confirmation(verb, Some(name), self.count(client))
            })
            .collect()
    }

    /// UNSUBSCRIBE / PUNSUBSCRIBE: the names given, or every one when none is.
    pub fn unsubscribe(&mut self, client: ClientId, kind: Kind, names: &[String]) -> Vec<Reply> {
        let (_, verb) = kind.verbs();
        let names: Vec<String> = if names.is_empty() {
            self.clients
                .get(&client)
                .map_or_else(Vec::new, |s| match kind {
                    Kind::Channel => s.channels.clone(),
                    Kind::Pattern => s.patterns.clone(),
                })
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            // Nothing to leave: Redis still answers once, with a nil name.
            return vec![confirmation(verb, None, self.count(client))];
        }
        names
            .iter()
            .map(|name| {
                if let Some(subs) = self.clients.get_mut(&client) {
                    let list = match kind {
                        Kind::Channel => &mut subs.channels,
                        Kind::Pattern => &mut subs.patterns,
                    };
                    list.retain(|n| n != name);
                    if subs.count() == 0 {
                        self.clients.remove(&client);
                    }
                }
                let registry = self.registry(kind);
                if let Some(listeners) = registry.get_mut(name) {
                    listeners.retain(|c| *c != client);
                    if listeners.is_empty() {
                        registry.remove(name);
                    }
                }
                confirmation(verb, Some(name), self.count(client))
            })
            .collect()
    }

    /// Forgets a client that disconnected.
    pub fn disconnect(&mut self, client: ClientId) {
        self.unsubscribe(client, Kind::Channel, &[]);
        self.unsubscribe(client, Kind::Pattern, &[]);
    }

    /// PUBLISH: the pushes to deliver, channel subscribers first, then pattern matches
    /// (a client subscribed both ways gets the message twice, as in Redis). The reply to
    /// the publisher is their number.
    pub fn publish(&self, channel: &str, message: &str) -> Vec<(ClientId, Reply)> {
        let mut out = Vec::new();
        for client in self.channels.get(channel).into_iter().flatten() {
            out.push((
                *client,
                Reply::bulks(["message", channel, message].map(String::from)),
            ));
        }
        for (pattern, clients) in &self.patterns {
            if glob_match(pattern.as_bytes(), channel.as_bytes(), false) {
                for client in clients {
                    out.push((
                        *client,
                        Reply::bulks(["pmessage", pattern, channel, message].map(String::from)),
                    ));
                }
            }
        }
        out
    }

    /// PUBSUB CHANNELS [pattern]: active channels (with at least one subscriber).
    pub fn active_channels(&self, pattern: Option<&str>) -> Vec<String> {
        self.channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p.as_bytes(), c.as_bytes(), false)))
            .cloned()
            .collect()
    }

    /// PUBSUB NUMSUB: subscribers per channel (patterns not counted).
    pub fn subscribers(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
    }

    /// PUBSUB NUMPAT: distinct patterns subscribed to.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }
}

fn confirmation(verb: &str, name: Option<&String>, count: usize) -> Reply {
    Reply::Array(vec![
        Reply::bulk(verb),
        name.map_or(Reply::Nil, |n| Reply::bulk(n.clone())),
        Reply::from_len(count),
    ])
}

/// Redis's glob-style matching (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and
/// `\` to escape.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0, 0);
    while p < pattern.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return true;
                }
                for start in i..=s.len() {
                    if glob_match(&pattern[p + 1..], &s[start..], nocase) {
                        return true;
                    }
                }
                return false;
            }
            b'?' => {
                if i >= s.len() {
                    return false;
                }
                i += 1;
            }
            b'[' => {
                if i >= s.len() {
                    return false;
                }
                p += 1;
                let negate = pattern.get(p) == Some(&b'^');
                if negate {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    match pattern.get(p) {
                        None => {
                            // An unclosed class: Redis treats the end as closing it.
                            p -= 1;
                            break;
                        }
                        Some(b']') => break,
                        Some(b'\\') if p + 1 < pattern.len() => {
                            p += 1;
                            if eq(pattern[p], s[i]) {
                                matched = true;
                            }
                        }
                        Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                            let hi = pattern[p + 2];
                            let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                            let c = if nocase {
                                s[i].to_ascii_lowercase()
                            } else {
                                s[i]
                            };
                            let (lo, hi) = if nocase {
                                (lo.to_ascii_lowercase(), hi.to_ascii_lowercase())
                            } else {
                                (lo, hi)
                            };
                            if (lo..=hi).contains(&c) {
                                matched = true;
                            }
                            p += 2;
                        }
                        Some(&c) => {
                            if eq(c, s[i]) {
                                matched = true;
                            }
                        }
                    }
                    p += 1;
                }
                if matched == negate {
                    return false;
                }
                i += 1;
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 1;
                if i >= s.len() || !eq(pattern[p], s[i]) {
                    return false;
                }
                i += 1;
            }
            c => {
                if i >= s.len() || !eq(c, s[i]) {
                    return false;
                }
                i += 1;
            }
        }
        p += 1;
    }
    i == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs_match_as_redis_matches_them() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("news.*", "news.sport"));
        assert!(!m("news.*", "new.sport"));
        assert!(m("h?llo", "hello") && !m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
        assert!(m("h[a-c]llo", "hbllo") && !m("h[a-c]llo", "hdllo"));
        assert!(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
        assert!(m("*", "") && m("**x", "abx"));
        assert!(glob_match(b"NEWS.*", b"news.x", true));
    }

    #[test]
    fn a_message_reaches_channel_then_pattern_subscribers() {
        let mut ps = PubSub::default();
        let (a, b) = (ClientId(1), ClientId(2));
        let confirmed = ps.subscribe(a, Kind::Channel, &names(&["news", "news"]));
        assert_eq!(
            confirmed[1],
            Reply::Array(vec![
                Reply::bulk("subscribe"),
                Reply::bulk("news"),
                Reply::Int(1)
            ]),
            "a second subscription to the same channel changes nothing"
        );
        ps.subscribe(b, Kind::Pattern, &names(&["n*"]));
        ps.subscribe(a, Kind::Pattern, &names(&["*s"]));
        let out = ps.publish("news", "hi");
        let to: Vec<ClientId> = out.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            to,
            vec![a, a, b],
            "channel first, then patterns (in pattern order)"
        );
        assert_eq!(
            out[2].1,
            Reply::bulks(["pmessage", "n*", "news", "hi"].map(String::from))
        );
        assert_eq!(ps.count(a), 2);
        assert_eq!(ps.active_channels(Some("n*")), names(&["news"]));
        assert_eq!(ps.subscribers("news"), 1);
        assert_eq!(ps.pattern_count(), 2);
    }

    #[test]
    fn unsubscribing_from_everything_leaves_subscribed_mode() {
        let mut ps = PubSub::default();
        let a = ClientId(1);
        ps.subscribe(a, Kind::Channel, &names(&["x", "y"]));
        let left = ps.unsubscribe(a, Kind::Channel, &[]);
        assert_eq!(left.len(), 2);
        assert_eq!(
            left[1],
            Reply::Array(vec![
                Reply::bulk("unsubscribe"),
                Reply::bulk("y"),
                Reply::Int(0)
            ])
        );
        assert_eq!(ps.count(a), 0);
        assert!(
            ps.publish("x", "lost").is_empty(),
            "nobody listens: the message is gone"
        );
        assert_eq!(
            ps.unsubscribe(a, Kind::Pattern, &[]),
            vec![Reply::Array(vec![
                Reply::bulk("punsubscribe"),
                Reply::Nil,
                Reply::Int(0)
            ])]
        );
        ps.subscribe(a, Kind::Channel, &names(&["z"]));
        ps.disconnect(a);
        assert!(ps.active_channels(None).is_empty());
    }
}
