//! A realistic Sync response for the benchmark (and the libwbxml cross-check of that input):
//! one Inbox collection with `emails` Adds, each with To/Cc/From/Subject/DateReceived/Read/Flag,
//! an HTML body of 2–4 KB with a 255-character Preview, one or two attachments, categories,
//! and OPAQUE ConversationId/ConversationIndex. Deterministic (fixed-seed xorshift).

use eas_wbxml::tags::{air_sync, air_sync_base, email, email2, tasks};
use eas_wbxml::{Document, Element};

const WORDS: &[&str] = &[
    "quarterly",
    "numbers",
    "meeting",
    "project",
    "update",
    "résumé",
    "budget",
    "review",
    "schedule",
    "team",
    "customer",
    "release",
    "deadline",
    "draft",
    "approval",
    "naïve",
    "forecast",
    "invoice",
    "roadmap",
    "café",
];

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn words(&mut self, count: usize) -> String {
        (0..count).map(|_| WORDS[self.below(WORDS.len())]).collect::<Vec<_>>().join(" ")
    }
}

/// HTML of about `target` bytes.
fn html_body(random: &mut Xorshift, target: usize) -> String {
    let mut html = String::from(
        "<html><head><meta charset=\"utf-8\"></head><body style=\"font-family:Calibri\">",
    );
    while html.len() < target {
        let words = 8 + random.below(30);
        html.push_str(&format!("<p>{} &amp; {}.</p>\r\n", random.words(words), random.words(3)));
    }
    html.push_str("</body></html>");
    html
}

fn preview(random: &mut Xorshift) -> String {
    let mut text = random.words(60);
    let cut =
        (0..=255.min(text.len())).rev().find(|&index| text.is_char_boundary(index)).unwrap_or(0);
    text.truncate(cut);
    text
}

fn email_add(random: &mut Xorshift, index: usize) -> Element {
    let size = 2048 + random.below(2048);
    let html = html_body(random, size);
    let day = 1 + index % 28;
    let mut data = Element::new(air_sync::APPLICATION_DATA)
        .text_child(email::TO, format!("\"Recipient {index}\" <user{index}@example.com>"))
        .text_child(email::CC, "\"Team\" <team@example.com>, \"Boss\" <boss@example.com>")
        .text_child(
            email::FROM,
            format!("\"Sender {}\" <sender{}@example.org>", index % 7, index % 7),
        )
        .text_child(email::SUBJECT, format!("Re: {} #{index}", random.words(5)))
        .text_child(
            email::DATE_RECEIVED,
            format!("2024-05-{day:02}T{:02}:{:02}:00.000Z", index % 24, index % 60),
        )
        .text_child(email::DISPLAY_TO, format!("Recipient {index}"))
        .text_child(email::THREAD_TOPIC, random.words(5))
        .text_child(email::IMPORTANCE, "1")
        .text_child(email::READ, if index.is_multiple_of(3) { "0" } else { "1" })
        .with_child(
            Element::new(air_sync_base::BODY)
                .text_child(air_sync_base::TYPE, "2")
                .text_child(air_sync_base::ESTIMATED_DATA_SIZE, html.len().to_string())
                .text_child(air_sync_base::TRUNCATED, "0")
                .text_child(air_sync_base::DATA, html)
                .text_child(air_sync_base::PREVIEW, preview(random)),
        );
    let mut attachments = Element::new(air_sync_base::ATTACHMENTS);
    for part in 0..1 + index % 2 {
        attachments.push(
            Element::new(air_sync_base::ATTACHMENT)
                .text_child(air_sync_base::DISPLAY_NAME, format!("report-{index}-{part}.pdf"))
                .text_child(air_sync_base::FILE_REFERENCE, format!("2:{index}:{}", part + 2))
                .text_child(air_sync_base::METHOD, "1")
                .text_child(
                    air_sync_base::ESTIMATED_DATA_SIZE,
                    (10_000 + random.below(90_000)).to_string(),
                )
                .text_child(air_sync_base::IS_INLINE, "0"),
        );
    }
    let flag = if index.is_multiple_of(4) {
        Element::new(email::FLAG)
            .text_child(email::STATUS, "2")
            .text_child(email::FLAG_TYPE, "Flag for follow up")
            .text_child(tasks::START_DATE, "2024-05-06T00:00:00.000Z")
            .text_child(tasks::UTC_START_DATE, "2024-05-06T00:00:00.000Z")
            .text_child(tasks::DUE_DATE, "2024-05-07T00:00:00.000Z")
            .text_child(tasks::UTC_DUE_DATE, "2024-05-07T00:00:00.000Z")
    } else {
        Element::new(email::FLAG)
    };
    let mut categories = Element::new(email::CATEGORIES);
    for category in 0..index % 3 {
        categories.push(Element::with_text(
            email::CATEGORY,
            ["Finance", "Important", "Travel"][category],
        ));
    }
    let conversation_id: Vec<u8> = (0..16).map(|_| random.next() as u8).collect();
    let conversation_index: Vec<u8> =
        (0..5 + 5 * (index % 2)).map(|_| random.next() as u8).collect();
    data = data
        .with_child(attachments)
        .text_child(email::MESSAGE_CLASS, "IPM.Note")
        .text_child(email::INTERNET_CPID, "65001")
        .with_child(flag)
        .text_child(email::CONTENT_CLASS, "urn:content-classes:message")
        .text_child(air_sync_base::NATIVE_BODY_TYPE, "2")
        .opaque_child(email2::CONVERSATION_ID, conversation_id)
        .opaque_child(email2::CONVERSATION_INDEX, conversation_index)
        .with_child(categories);
    Element::new(air_sync::ADD)
        .text_child(air_sync::SERVER_ID, format!("2:{index}"))
        .with_child(data)
}

/// The Sync response with `emails` new messages.
pub fn sync_response(emails: usize) -> Document {
    let mut random = Xorshift(0x9E37_79B9_7F4A_7C15);
    let commands = Element::with_children(
        air_sync::COMMANDS,
        (0..emails).map(|i| email_add(&mut random, i)).collect(),
    );
    Document::new(
        Element::new(air_sync::SYNC).with_child(
            Element::new(air_sync::COLLECTIONS).with_child(
                Element::new(air_sync::COLLECTION)
                    .text_child(air_sync::SYNC_KEY, "{9d1f3a2c-5b7e-4c8d-a1f0-3e2b6c9d8a7f}42")
                    .text_child(air_sync::COLLECTION_ID, "2")
                    .text_child(air_sync::STATUS, "1")
                    .empty_child(air_sync::MORE_AVAILABLE)
                    .with_child(commands),
            ),
        ),
    )
}
