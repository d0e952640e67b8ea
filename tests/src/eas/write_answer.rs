//! Answers to the write-path requests of [`super::write`], read into typed structs like
//! [`super::answer`] does: lenient about optional elements, strict about the root element.

use anyhow::{Context, Result, bail};
use eas_wbxml::Element;
use eas_wbxml::tags::{
    air_sync as as_, find as fd, folder_hierarchy as fh, r#move as mv, search as se,
};

use super::answer::{parse_u32, xml, xml_excerpt};
use super::email::Email;
use super::{ANSWER_LIMITS, describe_body};
use crate::http::Reply;

/// One `MoveItems > Response` (MS-ASCMD §2.2.3.177.10: 1 invalid source, 2 invalid
/// destination, 3 success, 4 same folder, 5 failure, 7 locked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveResponse {
    pub src_msg_id: Option<String>,
    pub status: Option<u32>,
    pub dst_msg_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MoveItemsAnswer {
    /// A top-level Status (a common status 1xx for the whole request), if any.
    pub status: Option<u32>,
    pub responses: Vec<MoveResponse>,
    pub root: Element,
}

impl MoveItemsAnswer {
    pub fn parse(root: Element) -> Result<MoveItemsAnswer> {
        if root.tag != mv::MOVE_ITEMS {
            bail!("expected a MoveItems response, got:\n{}", xml_excerpt(&root, 4000));
        }
        let responses = root
            .children(mv::RESPONSE)
            .map(|response| {
                Ok(MoveResponse {
                    src_msg_id: response.text_of(mv::SRC_MSG_ID).map(str::to_string),
                    status: parse_u32(response, mv::STATUS)?,
                    dst_msg_id: response.text_of(mv::DST_MSG_ID).map(str::to_string),
                })
            })
            .collect::<Result<_>>()?;
        Ok(MoveItemsAnswer { status: parse_u32(&root, mv::STATUS)?, responses, root })
    }

    pub fn xml(&self) -> String {
        xml(&self.root)
    }
}

#[derive(Debug, Clone)]
pub struct FolderCreateAnswer {
    pub status: u32,
    pub sync_key: Option<String>,
    pub server_id: Option<String>,
    pub root: Element,
}

impl FolderCreateAnswer {
    pub fn parse(root: Element) -> Result<FolderCreateAnswer> {
        if root.tag != fh::FOLDER_CREATE {
            bail!("expected a FolderCreate response, got:\n{}", xml(&root));
        }
        Ok(FolderCreateAnswer {
            status: parse_u32(&root, fh::STATUS)?
                .with_context(|| format!("FolderCreate without Status:\n{}", xml(&root)))?,
            sync_key: root.text_of(fh::SYNC_KEY).map(str::to_string),
            server_id: root.text_of(fh::SERVER_ID).map(str::to_string),
            root,
        })
    }
}

#[derive(Debug, Clone)]
pub struct FolderDeleteAnswer {
    pub status: u32,
    pub sync_key: Option<String>,
    pub root: Element,
}

impl FolderDeleteAnswer {
    pub fn parse(root: Element) -> Result<FolderDeleteAnswer> {
        if root.tag != fh::FOLDER_DELETE {
            bail!("expected a FolderDelete response, got:\n{}", xml(&root));
        }
        Ok(FolderDeleteAnswer {
            status: parse_u32(&root, fh::STATUS)?
                .with_context(|| format!("FolderDelete without Status:\n{}", xml(&root)))?,
            sync_key: root.text_of(fh::SYNC_KEY).map(str::to_string),
            root,
        })
    }
}

/// One result of Search (`LongId`) or Find (`airsync:ServerId`), with its Properties read as
/// an email.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub id: Option<String>,
    pub collection_id: Option<String>,
    pub properties: Option<Element>,
}

impl SearchResult {
    pub fn email(&self) -> Result<Email> {
        Email::parse(self.properties.as_ref().context("result without Properties")?)
    }

    pub fn subject(&self) -> Option<String> {
        self.email().ok().and_then(|email| email.subject)
    }

    /// Find's `Properties > find:Preview`.
    pub fn preview(&self) -> Option<&str> {
        self.properties.as_ref()?.text_of(fd::PREVIEW)
    }
}

/// Search or Find: the top status, the store's status, the results, Range and Total.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    pub status: Option<u32>,
    pub store_status: Option<u32>,
    pub results: Vec<SearchResult>,
    pub range: Option<String>,
    pub total: Option<u32>,
    pub root: Element,
}

impl SearchAnswer {
    /// `Search > Status, Response > Store > Status, Result*, Range?, Total?` (§2.2.1.16.2).
    pub fn parse(root: Element) -> Result<SearchAnswer> {
        if root.tag != se::SEARCH {
            bail!("expected a Search response, got:\n{}", xml_excerpt(&root, 4000));
        }
        let store = root.child(se::RESPONSE).and_then(|response| response.child(se::STORE));
        let mut answer = SearchAnswer {
            status: parse_u32(&root, se::STATUS)?,
            store_status: None,
            results: Vec::new(),
            range: None,
            total: None,
            root: Element::new(se::SEARCH),
        };
        if let Some(store) = store {
            answer.store_status = parse_u32(store, se::STATUS)?;
            answer.range = store.text_of(se::RANGE).map(str::to_string);
            answer.total = parse_u32(store, se::TOTAL)?;
            // an empty Result stands for "no matches" (§2.2.3.156.2)
            answer.results = store
                .children(se::RESULT)
                .filter(|result| !result.child_elements().is_empty())
                .map(|result| SearchResult {
                    id: result.text_of(se::LONG_ID).map(str::to_string),
                    collection_id: result.text_of(as_::COLLECTION_ID).map(str::to_string),
                    properties: result.child(se::PROPERTIES).cloned(),
                })
                .collect();
        }
        answer.root = root;
        Ok(answer)
    }

    pub fn subjects(&self) -> Vec<String> {
        let mut subjects: Vec<String> =
            self.results.iter().map(|r| r.subject().unwrap_or_default()).collect();
        subjects.sort();
        subjects
    }

    pub fn xml(&self) -> String {
        xml_excerpt(&self.root, 6000)
    }
}

/// Find answers have Search's shape on the Find page (`Response > itemoperations:Store, Status,
/// Result*, Range?, Total?`, MS-ASCMD §2.2.1.2.2).
pub type FindAnswer = SearchAnswer;

impl SearchAnswer {
    fn parse_find(root: Element) -> Result<SearchAnswer> {
        let response = root.child(fd::RESPONSE);
        let mut answer = SearchAnswer {
            status: parse_u32(&root, fd::STATUS)?,
            store_status: None,
            results: Vec::new(),
            range: None,
            total: None,
            root: Element::new(fd::FIND),
        };
        if let Some(response) = response {
            answer.store_status = parse_u32(response, fd::STATUS)?;
            answer.range = response.text_of(fd::RANGE).map(str::to_string);
            answer.total = parse_u32(response, fd::TOTAL)?;
            answer.results = response
                .children(fd::RESULT)
                .map(|result| SearchResult {
                    id: result.text_of(as_::SERVER_ID).map(str::to_string),
                    collection_id: result.text_of(as_::COLLECTION_ID).map(str::to_string),
                    properties: result.child(fd::PROPERTIES).cloned(),
                })
                .collect();
        }
        answer.root = root;
        Ok(answer)
    }
}

/// Reads a Find response.
pub fn parse_find(root: Element) -> Result<FindAnswer> {
    if root.tag != fd::FIND {
        bail!("expected a Find response, got:\n{}", xml_excerpt(&root, 4000));
    }
    SearchAnswer::parse_find(root)
}

/// What a SendMail/SmartReply/SmartForward got: success is an empty 200 (MS-ASCMD
/// §2.2.1.17.2); a failure is `<Command><Status>` (14.0+) or an HTTP error code (12.1).
#[derive(Debug, Clone)]
pub struct ComposeOutcome {
    pub http_status: u16,
    pub status: Option<u32>,
    pub body: Vec<u8>,
}

impl ComposeOutcome {
    pub fn read(command: &str, reply: Reply) -> Result<ComposeOutcome> {
        let status = if reply.status == 200 && !reply.body.is_empty() {
            let document = eas_wbxml::decode(&reply.body, &ANSWER_LIMITS).with_context(|| {
                format!("{command}: the answer is not WBXML: {}", describe_body(&reply.body))
            })?;
            super::answer::top_level_status(&document.root)
        } else {
            None
        };
        Ok(ComposeOutcome { http_status: reply.status, status, body: reply.body })
    }

    pub fn is_success(&self) -> bool {
        self.http_status == 200 && self.body.is_empty()
    }

    pub fn describe(&self) -> String {
        format!(
            "HTTP {}, Status {:?}, body {}",
            self.http_status,
            self.status,
            describe_body(&self.body)
        )
    }
}
