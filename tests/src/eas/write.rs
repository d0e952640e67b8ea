//! The write-path requests of the test client: what a phone sends to change the mailbox
//! (Sync Change/Delete/Add ApplicationData, MoveItems, SendMail/SmartReply/SmartForward in
//! both forms, FolderCreate/FolderDelete, Search, Find), written from MS-ASCMD as summarised
//! in EAS-NOTES.md (§4.3 folder commands, §4.8 MoveItems, §4.9/§4.10 ComposeMail, §4.11
//! Search, §4.14 Find) and MS-ASEMAIL (§2.2.2.34 Flag, §3.1.5.3 drafts). The answers are read
//! in [`super::write_answer`].

use anyhow::{Context, Result};
use eas_wbxml::tags::{
    air_sync as as_, air_sync_base as asb, compose_mail as cm, email as em, email2, find as fd,
    folder_hierarchy as fh, r#move as mv, search as se,
};
use eas_wbxml::{Document, Element};

use super::write_answer::{
    ComposeOutcome, FindAnswer, FolderCreateAnswer, FolderDeleteAnswer, MoveItemsAnswer,
    SearchAnswer,
};
use super::{Device, Version, WBXML_CONTENT_TYPE, percent_encode};

/// `Content-Type` of the 12.1 ComposeMail body (MS-ASCMD §2.2.1.17.1.1).
pub const MIME_CONTENT_TYPE: &str = "message/rfc822";

/// ApplicationData of a mail Change (MS-ASCMD §2.2.3.24.2): only the fields sent change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailChange {
    pub read: Option<bool>,
    /// `Some(true)` flags for follow-up (Status 2), `Some(false)` clears it (an empty Flag).
    pub flagged: Option<bool>,
}

impl EmailChange {
    pub fn application_data(&self) -> Element {
        let mut data = Element::new(as_::APPLICATION_DATA);
        if let Some(read) = self.read {
            data = data.text_child(em::READ, if read { "1" } else { "0" });
        }
        match self.flagged {
            // MS-ASEMAIL §2.2.2.34: Status 2 active, with a FlagType as phones send it
            Some(true) => {
                data = data.with_child(
                    Element::new(em::FLAG)
                        .text_child(em::STATUS, "2")
                        .text_child(em::FLAG_TYPE, "for Follow Up"),
                )
            }
            // an empty Flag clears the flag (§2.2.2.34)
            Some(false) => data = data.empty_child(em::FLAG),
            None => {}
        }
        data
    }
}

/// A draft's fields as a 16.x device writes them in the Drafts collection (MS-ASEMAIL
/// §3.1.5.3): To, Subject, a plain-text Body, and `email2:Send` to send it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftFields {
    pub to: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub send: bool,
}

impl DraftFields {
    pub fn application_data(&self) -> Element {
        let mut data = Element::new(as_::APPLICATION_DATA);
        if let Some(to) = &self.to {
            data = data.text_child(em::TO, to.as_str());
        }
        if let Some(subject) = &self.subject {
            data = data.text_child(em::SUBJECT, subject.as_str());
        }
        if let Some(body) = &self.body {
            data = data.with_child(
                Element::new(asb::BODY)
                    .text_child(asb::TYPE, "1")
                    .text_child(asb::DATA, body.as_str()),
            );
        }
        if self.send {
            data = data.empty_child(email2::SEND);
        }
        data
    }
}

/// One `MoveItems > Move` (MS-ASCMD §2.2.1.12): SrcMsgId, SrcFldId, DstFldId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveRequest {
    pub src_msg_id: String,
    pub src_fld_id: String,
    pub dst_fld_id: String,
}

pub fn move_items(moves: &[MoveRequest]) -> Document {
    Document::new(Element::with_children(
        mv::MOVE_ITEMS,
        moves
            .iter()
            .map(|m| {
                Element::new(mv::MOVE)
                    .text_child(mv::SRC_MSG_ID, m.src_msg_id.as_str())
                    .text_child(mv::SRC_FLD_ID, m.src_fld_id.as_str())
                    .text_child(mv::DST_FLD_ID, m.dst_fld_id.as_str())
            })
            .collect(),
    ))
}

/// Which ComposeMail command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComposeKind {
    SendMail,
    SmartReply,
    SmartForward,
}

impl ComposeKind {
    pub fn command(self) -> &'static str {
        match self {
            ComposeKind::SendMail => "SendMail",
            ComposeKind::SmartReply => "SmartReply",
            ComposeKind::SmartForward => "SmartForward",
        }
    }
}

/// The original a SmartReply/SmartForward answers: `Source > FolderId, ItemId` (14.0+) or the
/// `CollectionId` and `ItemId` query parameters (12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSource {
    pub folder_id: String,
    pub item_id: String,
}

/// A SendMail/SmartReply/SmartForward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeRequest {
    pub kind: ComposeKind,
    /// 14.0+ only (12.1 has no ClientId).
    pub client_id: Option<String>,
    pub save_in_sent: bool,
    pub source: Option<ComposeSource>,
    pub mime: Vec<u8>,
}

impl ComposeRequest {
    /// ComposeMail WBXML (14.0+, MS-ASCMD §2.2.1.17.1): ClientId, SaveInSentItems, Source,
    /// Mime (opaque, as phones send it).
    pub fn document(&self) -> Document {
        let root_tag = match self.kind {
            ComposeKind::SendMail => cm::SEND_MAIL,
            ComposeKind::SmartReply => cm::SMART_REPLY,
            ComposeKind::SmartForward => cm::SMART_FORWARD,
        };
        let mut root = Element::new(root_tag);
        if let Some(id) = &self.client_id {
            root = root.text_child(cm::CLIENT_ID, id.as_str());
        }
        if self.save_in_sent {
            root = root.empty_child(cm::SAVE_IN_SENT_ITEMS);
        }
        if let Some(source) = &self.source {
            root = root.with_child(
                Element::new(cm::SOURCE)
                    .text_child(cm::FOLDER_ID, source.folder_id.as_str())
                    .text_child(cm::ITEM_ID, source.item_id.as_str()),
            );
        }
        Document::new(root.opaque_child(cm::MIME, self.mime.clone()))
    }

    /// The 12.1 query parameters (MS-ASHTTP §2.2.1.1.1.1): SaveInSent=T, ItemId, CollectionId.
    pub fn query(&self) -> String {
        let mut query = String::new();
        if let Some(source) = &self.source {
            query.push_str(&format!(
                "&ItemId={}&CollectionId={}",
                percent_encode(&source.item_id),
                percent_encode(&source.folder_id)
            ));
        }
        if self.save_in_sent {
            query.push_str("&SaveInSent=T");
        }
        query
    }
}

/// `FolderCreate > SyncKey, ParentId, DisplayName, Type` (MS-ASCMD §2.2.1.3); Type 12 is a
/// user-created mail folder.
pub fn folder_create(sync_key: &str, parent_id: &str, name: &str) -> Document {
    Document::new(
        Element::new(fh::FOLDER_CREATE)
            .text_child(fh::SYNC_KEY, sync_key)
            .text_child(fh::PARENT_ID, parent_id)
            .text_child(fh::DISPLAY_NAME, name)
            .text_child(fh::TYPE, "12"),
    )
}

/// `FolderDelete > SyncKey, ServerId` (MS-ASCMD §2.2.1.4).
pub fn folder_delete(sync_key: &str, server_id: &str) -> Document {
    Document::new(
        Element::new(fh::FOLDER_DELETE)
            .text_child(fh::SYNC_KEY, sync_key)
            .text_child(fh::SERVER_ID, server_id),
    )
}

/// A Mailbox Search (MS-ASCMD §2.2.1.16): `Store > Name Mailbox, Query > And > Class Email,
/// CollectionId?, FreeText?, ConversationId?; Options > Range, DeepTraversal?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxQuery {
    /// Left out of the request when empty.
    pub free_text: String,
    pub collection_id: Option<String>,
    /// The thread's `email2:ConversationId` as a Sync gave it, sent as OPAQUE (as iOS does).
    pub conversation_id: Option<Vec<u8>>,
    pub range: Option<(u32, u32)>,
    pub deep_traversal: bool,
}

impl MailboxQuery {
    pub fn new(free_text: &str) -> MailboxQuery {
        MailboxQuery {
            free_text: free_text.to_string(),
            collection_id: None,
            conversation_id: None,
            range: None,
            deep_traversal: false,
        }
    }

    pub fn search_document(&self) -> Document {
        let mut and = Element::new(se::AND).text_child(as_::CLASS, "Email");
        if let Some(id) = &self.collection_id {
            and = and.text_child(as_::COLLECTION_ID, id.as_str());
        }
        if !self.free_text.is_empty() {
            and = and.text_child(se::FREE_TEXT, self.free_text.as_str());
        }
        if let Some(id) = &self.conversation_id {
            and = and.with_child(Element::with_opaque(se::CONVERSATION_ID, id.clone()));
        }
        let mut options = Element::new(se::OPTIONS);
        if let Some((first, last)) = self.range {
            options = options.text_child(se::RANGE, format!("{first}-{last}"));
        }
        if self.deep_traversal {
            options = options.empty_child(se::DEEP_TRAVERSAL);
        }
        let store = Element::new(se::STORE)
            .text_child(se::NAME, "Mailbox")
            .with_child(Element::new(se::QUERY).with_child(and))
            .with_child(options);
        Document::new(Element::new(se::SEARCH).with_child(store))
    }

    /// Find (16.1, MS-ASCMD §2.2.1.2): `SearchId, ExecuteSearch > MailBoxSearchCriterion >
    /// Query > Class, CollectionId?, FreeText; Options > Range, DeepTraversal?`.
    pub fn find_document(&self, search_id: &str) -> Document {
        let mut query = Element::new(fd::QUERY).text_child(as_::CLASS, "Email");
        if let Some(id) = &self.collection_id {
            query = query.text_child(as_::COLLECTION_ID, id.as_str());
        }
        query = query.text_child(fd::FREE_TEXT, self.free_text.as_str());
        let mut options = Element::new(fd::OPTIONS);
        if let Some((first, last)) = self.range {
            options = options.text_child(fd::RANGE, format!("{first}-{last}"));
        }
        if self.deep_traversal {
            options = options.empty_child(fd::DEEP_TRAVERSAL);
        }
        let criterion =
            Element::new(fd::MAIL_BOX_SEARCH_CRITERION).with_child(query).with_child(options);
        Document::new(
            Element::new(fd::FIND)
                .text_child(fd::SEARCH_ID, search_id)
                .with_child(Element::new(fd::EXECUTE_SEARCH).with_child(criterion)),
        )
    }
}

impl Device {
    pub fn move_items(&mut self, moves: &[MoveRequest]) -> Result<MoveItemsAnswer> {
        let exchange = self.exchange("MoveItems", &move_items(moves))?;
        MoveItemsAnswer::parse(exchange.root.context("MoveItems: HTTP 200 with no body")?)
    }

    pub fn folder_create(
        &mut self,
        sync_key: &str,
        parent_id: &str,
        name: &str,
    ) -> Result<FolderCreateAnswer> {
        let exchange = self.exchange("FolderCreate", &folder_create(sync_key, parent_id, name))?;
        FolderCreateAnswer::parse(exchange.root.context("FolderCreate: HTTP 200 with no body")?)
    }

    pub fn folder_delete(&mut self, sync_key: &str, server_id: &str) -> Result<FolderDeleteAnswer> {
        let exchange = self.exchange("FolderDelete", &folder_delete(sync_key, server_id))?;
        FolderDeleteAnswer::parse(exchange.root.context("FolderDelete: HTTP 200 with no body")?)
    }

    pub fn search(&mut self, query: &MailboxQuery) -> Result<SearchAnswer> {
        let exchange = self.exchange("Search", &query.search_document())?;
        SearchAnswer::parse(exchange.root.context("Search: HTTP 200 with no body")?)
    }

    pub fn find(&mut self, search_id: &str, query: &MailboxQuery) -> Result<FindAnswer> {
        let exchange = self.exchange("Find", &query.find_document(search_id))?;
        super::write_answer::parse_find(exchange.root.context("Find: HTTP 200 with no body")?)
    }

    /// Sends a ComposeMail command in this version's form: the raw message with the query
    /// parameters for 12.1, ComposeMail WBXML for 14.0+. The outcome keeps the HTTP status and
    /// any Status, to be judged by the test (success is an empty 200, MS-ASCMD §2.2.1.17.2).
    pub fn compose(&mut self, request: &ComposeRequest) -> Result<ComposeOutcome> {
        let command = request.kind.command();
        let reply = if self.version < Version::V14_0 {
            let url = format!("{}{}", self.command_url(command), request.query());
            self.post_to(&url, command, Some(MIME_CONTENT_TYPE), &request.mime)?
        } else {
            let body = eas_wbxml::encode(&request.document())
                .with_context(|| format!("encoding the {command} request"))?;
            self.post(command, Some(WBXML_CONTENT_TYPE), &body)?
        };
        ComposeOutcome::read(command, reply)
    }
}
