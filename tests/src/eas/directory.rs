//! Finding people: ResolveRecipients (MS-ASCMD §2.2.1.15, EAS-NOTES §4.12) and the GAL store
//! of Search (§2.2.1.16: `Store > Name GAL, Query, Options > Range`), written from the
//! protocol documents, and their answers read into plain structs.

use anyhow::{Context, Result, bail};
use eas_wbxml::tags::{gal, resolve_recipients as rr, search as se};
use eas_wbxml::{Document, Element};

use super::Device;
use super::answer::{parse_u32, xml_excerpt};
use super::write_answer::SearchAnswer;

/// One person as the gateway names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub display_name: Option<String>,
    pub email_address: Option<String>,
}

/// `ResolveRecipients > Response`: one per `To` sent, in order.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub to: String,
    pub status: Option<u32>,
    pub recipient_count: Option<u32>,
    /// `Recipient > Type` of each recipient (1 GAL, 2 contact), in order.
    pub types: Vec<Option<u32>>,
    pub recipients: Vec<Person>,
}

/// `ResolveRecipients > Status, Response*`.
#[derive(Debug, Clone)]
pub struct ResolveRecipientsAnswer {
    pub status: Option<u32>,
    pub responses: Vec<Resolution>,
    pub root: Element,
}

impl ResolveRecipientsAnswer {
    pub fn parse(root: Element) -> Result<ResolveRecipientsAnswer> {
        if root.tag != rr::RESOLVE_RECIPIENTS {
            bail!("expected a ResolveRecipients response, got:\n{}", xml_excerpt(&root, 4000));
        }
        let mut responses = Vec::new();
        for response in root.children(rr::RESPONSE) {
            let recipients: Vec<&Element> = response.children(rr::RECIPIENT).collect();
            responses.push(Resolution {
                to: response.text_of(rr::TO).unwrap_or_default().to_string(),
                status: parse_u32(response, rr::STATUS)?,
                recipient_count: parse_u32(response, rr::RECIPIENT_COUNT)?,
                types: recipients
                    .iter()
                    .map(|recipient| parse_u32(recipient, rr::TYPE))
                    .collect::<Result<_>>()?,
                recipients: recipients
                    .iter()
                    .map(|recipient| Person {
                        display_name: recipient.text_of(rr::DISPLAY_NAME).map(str::to_string),
                        email_address: recipient.text_of(rr::EMAIL_ADDRESS).map(str::to_string),
                    })
                    .collect(),
            });
        }
        Ok(ResolveRecipientsAnswer { status: parse_u32(&root, rr::STATUS)?, responses, root })
    }

    pub fn xml(&self) -> String {
        xml_excerpt(&self.root, 6000)
    }
}

/// `ResolveRecipients > To+` with no Options.
pub fn resolve_recipients(names: &[&str]) -> Document {
    let mut root = Element::new(rr::RESOLVE_RECIPIENTS);
    for name in names {
        root = root.text_child(rr::TO, *name);
    }
    Document::new(root)
}

/// A GAL Search for `query`, results `first`..=`last`.
pub fn gal_search(query: &str, (first, last): (u32, u32)) -> Document {
    let store = Element::new(se::STORE)
        .text_child(se::NAME, "GAL")
        .text_child(se::QUERY, query)
        .with_child(Element::new(se::OPTIONS).text_child(se::RANGE, format!("{first}-{last}")));
    Document::new(Element::new(se::SEARCH).with_child(store))
}

impl SearchAnswer {
    /// The people of a GAL Search: `Result > Properties > gal:DisplayName, gal:EmailAddress`.
    pub fn people(&self) -> Vec<Person> {
        self.results
            .iter()
            .filter_map(|result| result.properties.as_ref())
            .map(|properties| Person {
                display_name: properties.text_of(gal::DISPLAY_NAME).map(str::to_string),
                email_address: properties.text_of(gal::EMAIL_ADDRESS).map(str::to_string),
            })
            .collect()
    }
}

impl Device {
    pub fn resolve_recipients(&mut self, names: &[&str]) -> Result<ResolveRecipientsAnswer> {
        let exchange = self.exchange("ResolveRecipients", &resolve_recipients(names))?;
        ResolveRecipientsAnswer::parse(
            exchange.root.context("ResolveRecipients: HTTP 200 with no body")?,
        )
    }

    pub fn search_gal(&mut self, query: &str, range: (u32, u32)) -> Result<SearchAnswer> {
        let exchange = self.exchange("Search", &gal_search(query, range))?;
        SearchAnswer::parse(exchange.root.context("Search GAL: HTTP 200 with no body")?)
    }
}
