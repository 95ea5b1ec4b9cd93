//! Realistic SendGrid event webhook bodies, the same for the same seed.
//!
//! Events carry the fields SendGrid sends for their type (as in
//! `plugins/normalize-sendgrid-events/samples/`), a custom arg or two, and an `sg_event_id`
//! unique within a generator, so deduplication downstream never drops a generated event. A
//! chosen share of events is malformed in ways the normalization plugin refuses: a missing
//! `email` or an unknown event type.

use serde::Serialize;

/// SendGrid event types with their share of traffic in a typical sending account (per mille).
const EVENT_MIX: [(&str, u64); 11] = [
    ("processed", 260),
    ("delivered", 250),
    ("open", 200),
    ("click", 100),
    ("deferred", 50),
    ("bounce", 40),
    ("dropped", 30),
    ("unsubscribe", 20),
    ("group_unsubscribe", 30),
    ("group_resubscribe", 10),
    ("spamreport", 10),
];

/// Event types SendGrid does not send, for malformed events.
const UNKNOWN_EVENT_TYPES: [&str; 2] = ["opened", "clicked_through"];

const DOMAINS: [&str; 4] = ["example.com", "example.org", "example.net", "mail.example"];
const CATEGORIES: [&str; 4] = ["orders", "receipts", "newsletter", "password-reset"];
const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
];
const TENANTS: [&str; 3] = ["eu-1", "us-1", "ap-1"];

/// How a [`EventGenerator`] makes events.
#[derive(Debug, Clone)]
pub struct GeneratorSettings {
    /// Seeds the generator: the same seed gives the same events.
    pub seed: u64,
    /// Starts every `sg_event_id`; give each run its own so runs do not dedupe each other.
    pub id_prefix: String,
    /// Malformed events per thousand.
    pub malformed_per_mille: u64,
    /// Events are spread over the day before this Unix time.
    pub latest_timestamp: i64,
}

impl GeneratorSettings {
    /// Settings for a fresh run: an id prefix and timestamps taken from the current time.
    pub fn for_run(seed: u64, malformed_per_mille: u64) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        GeneratorSettings {
            seed,
            id_prefix: format!("bench-{now:x}-{seed:x}"),
            malformed_per_mille,
            latest_timestamp: i64::try_from(now).unwrap_or(i64::MAX),
        }
    }
}

/// Makes webhook bodies of SendGrid events.
#[derive(Debug)]
pub struct EventGenerator {
    random: SplitMix64,
    settings: GeneratorSettings,
    next_id: u64,
    malformed: u64,
}

impl EventGenerator {
    pub fn new(settings: GeneratorSettings) -> Self {
        EventGenerator { random: SplitMix64(settings.seed), settings, next_id: 0, malformed: 0 }
    }

    /// One webhook body: a JSON array of `events` events.
    pub fn body(&mut self, events: usize) -> Vec<u8> {
        let batch: Vec<WireEvent> = (0..events).map(|_| self.event()).collect();
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(&batch).unwrap_or_default()
    }

    /// Events generated so far.
    pub fn generated(&self) -> u64 {
        self.next_id
    }

    /// Malformed events generated so far.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Body number `seq` of a numbered run: a JSON array of `events` events whose ids are
    /// [`numbered_event_id`]`(id_prefix, seq, n)` for n in `0..events`, with about
    /// `malformed_per_mille` of them malformed as in [`EventGenerator::body`].
    ///
    /// It is made from the settings and `seq` alone, so the same settings and `seq` give the
    /// same bytes whenever it is made (a retry sends again exactly what the first attempt sent)
    /// and bodies can be made in any order, from any thread. The generator's own sequence of
    /// bodies and its counts are left as they are.
    pub fn numbered_body(&self, seq: u64, events: usize) -> Vec<u8> {
        let mut random = SplitMix64(self.settings.seed ^ SplitMix64(seq).next());
        let batch: Vec<WireEvent> = (0..events)
            .map(|n| {
                let id = numbered_event_id(&self.settings.id_prefix, seq, n);
                make_event(&mut random, &self.settings, id).0
            })
            .collect();
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(&batch).unwrap_or_default()
    }

    fn event(&mut self) -> WireEvent {
        let id = self.next_id;
        self.next_id += 1;
        let sg_event_id = format!("{}-{id:010}", self.settings.id_prefix);
        let (event, malformed) = make_event(&mut self.random, &self.settings, sg_event_id);
        if malformed {
            self.malformed += 1;
        }
        event
    }
}

/// The `sg_event_id` of event `n` of body `seq` in [`EventGenerator::numbered_body`]:
/// `{prefix}-{seq:09}-{n:03}`, so a checker can tell which body and place an event came from.
pub fn numbered_event_id(prefix: &str, seq: u64, n: usize) -> String {
    format!("{prefix}-{seq:09}-{n:03}")
}

/// One event drawn from `random`, with the id `sg_event_id`, and whether it is malformed.
fn make_event(
    random: &mut SplitMix64,
    settings: &GeneratorSettings,
    sg_event_id: String,
) -> (WireEvent, bool) {
    let kind = pick_weighted(random, &EVENT_MIX);
    let user = random.below(50_000);
    let message = random.below(1 << 40);
    let mut event = WireEvent {
        email: Some(format!("user{user}@{}", pick(random, &DOMAINS))),
        timestamp: settings.latest_timestamp - i64::try_from(random.below(86_400)).unwrap_or(0),
        event: kind,
        sg_event_id,
        sg_message_id: Some(format!("{message:010x}.filterdrecv-{}", random.below(100))),
        mail_id: Some(format!("mail-{message:010x}")),
        tenant: (random.below(4) == 0).then(|| pick(random, &TENANTS)),
        ..WireEvent::default()
    };
    match kind {
        "processed" => {
            event.smtp_id = Some(format!("<{message:x}.{user}@ismtpd-{}>", random.below(1000)));
            event.category = Some(Category::One(pick(random, &CATEGORIES)));
        }
        "delivered" => {
            event.smtp_id = Some(format!("<{message:x}.{user}@ismtpd-{}>", random.below(1000)));
            event.category = Some(Category::Many(vec![pick(random, &CATEGORIES), "transactional"]));
            event.response = Some("250 2.0.0 OK  1717200005 d9443c01a7336-1f6321e0bb4si");
            event.tls = Some(1);
            event.ip = Some(format!("198.51.100.{}", random.below(256)));
            event.pool = Some(Pool { name: "transactional", id: 210 });
        }
        "deferred" => {
            event.response = Some("400 4.2.2 mailbox full, try again later");
            event.attempt = Some(format!("{}", 1 + random.below(10)));
        }
        "bounce" => {
            let blocked = random.below(2) == 0;
            event.reason = Some(if blocked {
                "550 5.7.1 Message rejected due to local policy"
            } else {
                "550 5.1.1 The email account that you tried to reach does not exist"
            });
            event.status = Some(if blocked { "5.7.1" } else { "5.1.1" });
            event.bounce_type = Some(if blocked { "blocked" } else { "bounce" });
            event.bounce_classification = Some(if blocked { "Reputation" } else { "Invalid Address" });
            event.tls = Some(0);
        }
        "dropped" => {
            event.reason = Some("Bounced Address");
            event.status = Some("5.0.0");
        }
        "open" => {
            event.useragent = Some(pick(random, &USER_AGENTS));
            event.ip = Some(format!("203.0.113.{}", random.below(256)));
            event.sg_machine_open = Some(random.below(5) == 0);
            event.category = Some(Category::Many(vec![pick(random, &CATEGORIES)]));
        }
        "click" => {
            event.useragent = Some(pick(random, &USER_AGENTS));
            event.ip = Some(format!("203.0.113.{}", random.below(256)));
            event.url = Some(format!("https://shop.example/orders/{}", random.below(1_000_000)));
            event.url_offset = Some(UrlOffset { index: random.below(4), kind: "html" });
        }
        "group_unsubscribe" | "group_resubscribe" => {
            event.asm_group_id = Some(40 + random.below(5));
            event.marketing_campaign_id = Some(9000 + random.below(100));
            event.marketing_campaign_name = Some("Spring sale");
        }
        _ => {}
    }
    let malformed = random.below(1000) < settings.malformed_per_mille;
    if malformed {
        if random.below(2) == 0 {
            event.email = None;
        } else {
            event.event = pick(random, &UNKNOWN_EVENT_TYPES);
        }
    }
    (event, malformed)
}

/// One event as SendGrid posts it; absent fields are left out, as SendGrid does.
#[derive(Debug, Default, Serialize)]
struct WireEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    timestamp: i64,
    #[serde(rename = "smtp-id", skip_serializing_if = "Option::is_none")]
    smtp_id: Option<String>,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<Category>,
    sg_event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sg_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    bounce_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bounce_classification: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<Pool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    useragent: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sg_machine_open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url_offset: Option<UrlOffset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asm_group_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marketing_campaign_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marketing_campaign_name: Option<&'static str>,
    /// Custom args: SendGrid flattens the sender's `custom_args` into the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    mail_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'static str>,
}

/// SendGrid sends one category as a string and several as an array.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Category {
    One(&'static str),
    Many(Vec<&'static str>),
}

#[derive(Debug, Serialize)]
struct Pool {
    name: &'static str,
    id: u32,
}

#[derive(Debug, Serialize)]
struct UrlOffset {
    index: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64); the benchmarks need
/// reproducible variety, not cryptographic randomness.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0; the modulo bias is irrelevant here).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn pick<T: Copy>(random: &mut SplitMix64, items: &[T]) -> T {
    items[usize::try_from(random.below(items.len() as u64)).unwrap_or(0)]
}

/// One of `choices`, each as likely as its weight out of the weights' sum.
fn pick_weighted(random: &mut SplitMix64, choices: &[(&'static str, u64)]) -> &'static str {
    let total: u64 = choices.iter().map(|(_, weight)| weight).sum();
    let mut roll = random.below(total);
    for (choice, weight) in choices {
        if roll < *weight {
            return choice;
        }
        roll -= weight;
    }
    choices[0].0
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use normalize_sendgrid_events::transform_batch;
    use sluice_plugin_sdk::RecordIn;

    use super::*;

    fn generator(malformed_per_mille: u64) -> EventGenerator {
        EventGenerator::new(GeneratorSettings {
            seed: 7,
            id_prefix: "test".into(),
            malformed_per_mille,
            latest_timestamp: 1_717_300_000,
        })
    }

    #[test]
    fn bodies_are_json_arrays_with_unique_event_ids() {
        let mut events = generator(10);
        let mut ids = HashSet::new();
        for _ in 0..20 {
            let body: Vec<serde_json::Value> = serde_json::from_slice(&events.body(100)).unwrap();
            assert_eq!(body.len(), 100);
            for event in body {
                assert!(ids.insert(event["sg_event_id"].as_str().unwrap().to_owned()));
            }
        }
        assert_eq!(events.generated(), 2000);
    }

    #[test]
    fn the_plugin_keeps_every_event_but_the_malformed_ones() {
        let mut events = generator(10);
        let batch: Vec<RecordIn> = (0..50).map(|_| RecordIn::from_value(events.body(100))).collect();
        let result = transform_batch(&batch);
        let malformed = usize::try_from(events.malformed()).unwrap();
        assert!((20..=90).contains(&malformed), "about 1% of 5000 events, got {malformed}");
        assert_eq!(result.failures.len(), malformed);
        let rows: usize = result.outputs.iter().map(|rows| rows.inputs.len()).sum();
        assert_eq!(rows, 5000 - malformed);
    }

    #[test]
    fn the_same_seed_gives_the_same_bodies() {
        assert_eq!(generator(10).body(50), generator(10).body(50));
    }

    #[test]
    fn a_numbered_body_is_the_same_bytes_every_time_with_ids_naming_body_and_place() {
        let mut events = generator(10);
        let first = events.numbered_body(42, 100);
        events.body(30);
        assert_eq!(events.numbered_body(42, 100), first, "the generator's own bodies change nothing");
        assert_eq!(generator(10).numbered_body(42, 100), first);
        assert_eq!(events.generated(), 30, "numbered bodies are not counted");
        assert_ne!(events.numbered_body(43, 100), first);
        let body: Vec<serde_json::Value> = serde_json::from_slice(&first).unwrap();
        assert_eq!(body.len(), 100);
        for (n, event) in body.iter().enumerate() {
            let expected = format!("test-000000042-{n:03}");
            assert_eq!(event["sg_event_id"].as_str(), Some(expected.as_str()));
            assert_eq!(numbered_event_id("test", 42, n), expected);
        }
        assert_eq!(numbered_event_id("soak-1", 123_456_789, 7), "soak-1-123456789-007");
    }

    #[test]
    fn numbered_bodies_carry_malformed_events_at_the_chosen_share() {
        let events = generator(10);
        let batch: Vec<RecordIn> =
            (0..50).map(|seq| RecordIn::from_value(events.numbered_body(seq, 100))).collect();
        let result = transform_batch(&batch);
        assert!(
            (20..=90).contains(&result.failures.len()),
            "about 1% of 5000, got {}",
            result.failures.len()
        );
        let rows: usize = result.outputs.iter().map(|rows| rows.inputs.len()).sum();
        assert_eq!(rows + result.failures.len(), 5000);
        assert!(generator(0).numbered_body(3, 100).len() > 100 * 300, "realistic events, not stubs");
    }
}
